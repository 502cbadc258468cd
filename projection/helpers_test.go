package projection

import (
	"encoding/json"
	"fmt"
	"maps"
	"sync/atomic"
	"testing"
	"time"
)

// Full CloudEvent types of the v1 contract.
const (
	tFormation = "dev.cellos.events.formation.lifecycle.v1."
	tCell      = "dev.cellos.events.cell.lifecycle.v1."
	tSummary   = "dev.cellos.events.cell.compliance.v1.summary"
)

// base is the message-time origin: message n is stored at base + n seconds.
var base = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// msgTime is the JetStream storage time the helpers give sequence seq.
func msgTime(seq uint64) time.Time { return base.Add(time.Duration(seq) * time.Second) }

var evCounter atomic.Uint64

// obj is the data object (or any JSON object) of a test event.
type obj = map[string]any

// ce encodes a CloudEvents 1.0 event with a fresh id. at is the CloudEvent
// time ("" leaves it out); data is left out when nil.
func ce(typ, at string, data any) []byte {
	e := obj{
		"specversion": "1.0",
		"id":          fmt.Sprintf("evt-%d", evCounter.Add(1)),
		"source":      "/test/supervisor",
		"type":        typ,
	}
	if at != "" {
		e["time"] = at
	}
	if data != nil {
		e["data"] = data
	}
	b, err := json.Marshal(e)
	if err != nil {
		panic(err)
	}
	return b
}

// cellEv is a cell lifecycle event (phase "summary" gives a compliance
// summary) for cell id, with extra data fields merged in.
func cellEv(phase, id string, extra obj) []byte {
	d := obj{"cellId": id}
	maps.Copy(d, extra)
	if phase == "summary" {
		return ce(tSummary, "", d)
	}
	return ce(tCell+phase, "", d)
}

// formEv is a formation lifecycle event for formation id.
func formEv(phase, id string, extra obj) []byte {
	d := obj{"formationId": id}
	maps.Copy(d, extra)
	return ce(tFormation+phase, "", d)
}

// fold applies payloads as sequences 1..n, stored at msgTime(seq).
func fold(t testing.TB, payloads ...[]byte) *Projection {
	t.Helper()
	p := New()
	for i, pl := range payloads {
		seq := uint64(i + 1)
		if out := p.Apply(Message{Seq: seq, Time: msgTime(seq), Payload: pl}); out == Stale {
			t.Fatalf("Apply(seq %d) = %v on a fresh fold", seq, out)
		}
	}
	return p
}

func mustCell(t testing.TB, p *Projection, id string) Cell {
	t.Helper()
	c, ok := p.Cell(id)
	if !ok {
		t.Fatalf("Cell(%q) not found; dump %s", id, p.Dump())
	}
	return c
}

func mustFormation(t testing.TB, p *Projection, id string) (Formation, []Cell) {
	t.Helper()
	f, cells, ok := p.Formation(id)
	if !ok {
		t.Fatalf("Formation(%q) not found; dump %s", id, p.Dump())
	}
	return f, cells
}

// exitStr renders an exit code pointer for messages and comparisons.
func exitStr(p *int64) string {
	if p == nil {
		return "null"
	}
	return fmt.Sprint(*p)
}

func i64(n int64) *int64 { return &n }

// jsonStr is the JSON encoding of v, for comparisons of whole values.
func jsonStr(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "!" + err.Error()
	}
	return string(b)
}

// store is a fake checkpoint: what a projector would have written from
// successive change sets.
type store struct {
	meta       Meta
	formations map[string][]byte
	cells      map[string][]byte
}

func newStore() *store {
	return &store{formations: map[string][]byte{}, cells: map[string][]byte{}}
}

// write applies one change set the way the bbolt checkpoint does.
func (s *store) write(ch Changes) {
	if ch.Reset {
		clear(s.formations)
		clear(s.cells)
	}
	maps.Copy(s.formations, ch.Formations)
	maps.Copy(s.cells, ch.Cells)
	s.meta = ch.Meta
}

func iterRecords(m map[string][]byte) func(yield func(id string, rec []byte) error) error {
	return func(yield func(id string, rec []byte) error) error {
		for id, rec := range m {
			if err := yield(id, rec); err != nil {
				return err
			}
		}
		return nil
	}
}

func (s *store) restore(t testing.TB) *Projection {
	t.Helper()
	p, err := Restore(s.meta, iterRecords(s.formations), iterRecords(s.cells))
	if err != nil {
		t.Fatalf("Restore() error = %v", err)
	}
	return p
}

// sameState fails unless a and b serve the same registry and position.
func sameState(t testing.TB, what string, got, want *Projection) {
	t.Helper()
	if g, w := string(got.Dump()), string(want.Dump()); g != w {
		t.Fatalf("%s: Dump() = %s\nwant %s", what, g, w)
	}
	if g, w := got.Counters(), want.Counters(); g != w {
		t.Fatalf("%s: Counters() = %+v, want %+v", what, g, w)
	}
	if g, w := got.Cursor(), want.Cursor(); g != w {
		t.Fatalf("%s: Cursor() = %d, want %d", what, g, w)
	}
	if g, w := got.CursorID(), want.CursorID(); g != w {
		t.Fatalf("%s: CursorID() = %q, want %q", what, g, w)
	}
	if g, w := jsonStr(got.Gaps()), jsonStr(want.Gaps()); g != w {
		t.Fatalf("%s: Gaps() = %s, want %s", what, g, w)
	}
	// Derived membership is not in Dump: compare every formation's cells.
	wantF, _ := want.Formations(FormationFilter{}, Page{Limit: MaxLimit})
	for _, f := range wantF {
		_, gc, _ := got.Formation(f.ID)
		_, wc, _ := want.Formation(f.ID)
		if g, w := jsonStr(gc), jsonStr(wc); g != w {
			t.Fatalf("%s: Formation(%q) cells = %s, want %s", what, f.ID, g, w)
		}
	}
}
