package demo

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"cellos-allinone/event"
	"cellos-allinone/projection"
)

func generate(o Options, n int) [][]byte {
	g := New(o)
	out := make([][]byte, n)
	for i := range out {
		out[i] = g.Next().JSON()
	}
	return out
}

func TestSameSeedSameBytes(t *testing.T) {
	o := Options{Seed: 42, Start: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC), Step: 100 * time.Millisecond}
	a, b := generate(o, 3000), generate(o, 3000)
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			t.Fatalf("event %d differs between two runs of seed 42:\n%s\n%s", i, a[i], b[i])
		}
	}
}

func TestDifferentSeedDifferentEvents(t *testing.T) {
	a, b := generate(Options{Seed: 1}, 50), generate(Options{Seed: 2}, 50)
	same := 0
	for i := range a {
		if bytes.Equal(a[i], b[i]) {
			same++
		}
	}
	if same != 0 {
		t.Errorf("seeds 1 and 2 share %d of 50 events, want none (ids carry the seed)", same)
	}
}

func TestTimesFollowStartAndStep(t *testing.T) {
	start := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	g := New(Options{Seed: 7, Start: start, Step: 250 * time.Millisecond})
	for i := range 10 {
		ev := g.Next()
		want := start.Add(time.Duration(i) * 250 * time.Millisecond).Format("2006-01-02T15:04:05.000Z07:00")
		if ev.Time != want {
			t.Fatalf("event %d time = %q, want %q", i, ev.Time, want)
		}
	}
}

// TestTrafficIsValidAndComplete folds a long run into the real projection:
// nothing is malformed, every lifecycle step of the contract occurs, and
// unknown types are only the deliberate ones.
func TestTrafficIsValidAndComplete(t *testing.T) {
	g := New(Options{Seed: 3})
	p := projection.New()
	seen := map[string]int{}
	ids := map[string]bool{}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const n = 5000
	for i := range n {
		ev := g.Next()
		raw := ev.JSON()
		if ids[ev.ID] {
			t.Fatalf("event id %q repeated", ev.ID)
		}
		ids[ev.ID] = true
		env, err := event.Decode(raw)
		if err != nil {
			t.Fatalf("event %d is not a valid CloudEvent: %v\n%s", i, err, raw)
		}
		subject, _, err := event.Route(raw)
		if err != nil {
			t.Fatalf("event %d cannot be routed to a subject: %v\n%s", i, err, raw)
		}
		var keys map[string]json.RawMessage
		if err := json.Unmarshal(raw, &keys); err != nil || keys["datacontenttype"] == nil || keys["time"] == nil {
			t.Fatalf("event %d lacks time or datacontenttype: %s", i, raw)
		}
		seen[strings.TrimPrefix(env.Type, "dev.cellos.events.")]++
		out := p.Apply(projection.Message{Seq: uint64(i + 1), Subject: subject, Time: base, Payload: raw})
		_, _, known := event.Classify(env.Type)
		if _, err := event.Check(raw); known && err != nil {
			t.Fatalf("event %d of a known type fails the API's check: %v\n%s", i, err, raw)
		}
		switch {
		case out == projection.Malformed:
			t.Fatalf("event %d folded as malformed: %s", i, raw)
		case known && out != projection.Applied:
			t.Fatalf("event %d of a known type folded as %v: %s", i, out, raw)
		case !known && env.Type != "dev.cellos.events.cell.telemetry.v1.sample":
			t.Fatalf("event %d has an unexpected unknown type %q", i, env.Type)
		}
	}
	for _, typ := range []string{
		"formation.lifecycle.v1.created", "formation.lifecycle.v1.launching",
		"formation.lifecycle.v1.running", "formation.lifecycle.v1.degraded",
		"formation.lifecycle.v1.completed", "formation.lifecycle.v1.failed",
		"formation.lifecycle.v1.cancelled", "formation.lifecycle.v1.deleted",
		"cell.lifecycle.v1.admitted", "cell.lifecycle.v1.started",
		"cell.lifecycle.v1.completed", "cell.lifecycle.v1.failed",
		"cell.lifecycle.v1.destroyed", "cell.compliance.v1.summary",
		"cell.telemetry.v1.sample",
	} {
		if seen[typ] == 0 {
			t.Errorf("no %s event in %d events (seen: %v)", typ, n, seen)
		}
	}
	if c := p.Counters(); c.Ignored == 0 || c.Ignored > n/20 {
		t.Errorf("ignored = %d of %d, want a few (about 1 in 100)", c.Ignored, n)
	}
	tenants := map[string]bool{}
	fs, _ := p.Formations(projection.FormationFilter{}, projection.Page{Limit: projection.MaxLimit})
	for _, f := range fs {
		tenants[f.TenantID] = true
	}
	if len(tenants) < 3 {
		t.Errorf("formations span tenants %v, want several", tenants)
	}
	cells, _ := p.Cells(projection.CellFilter{}, projection.Page{Limit: projection.MaxLimit})
	for _, c := range cells {
		if c.TenantID == "" || c.FormationID == "" {
			t.Errorf("cell %s has tenant %q, formation %q; want both", c.ID, c.TenantID, c.FormationID)
		}
	}
}
