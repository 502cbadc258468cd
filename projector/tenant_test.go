package projector

import (
	"encoding/json"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"cellos-allinone/eventlog"
	"cellos-allinone/projection"
	"cellos-allinone/store"
	"cellos-allinone/testutil"
)

// Over real JetStream, events of both subject forms with tenants that
// collide (testutil.RandomLog) are served as a fold of the stream folds
// them — entities and counters, rejected and untenantedOfTenant among
// them — during the replay, live and after a restart; the state's derived
// data agrees with its records; and each rejected event is logged once,
// naming its sequence, id and rule.
func TestProjectorFoldsTenants(t *testing.T) {
	dir := t.TempDir()
	_, nc := testutil.MustStartNATS(t, dir)
	l := openLog(t, nc)
	var events []testutil.Event
	for _, m := range testutil.RandomLog(rand.New(rand.NewPCG(3, 3)), 3000) {
		events = append(events, testutil.Event{Subject: m.Subject, Payload: m.Payload})
	}
	testutil.MustPublish(t, nc, events[:1500]...)

	var logs testutil.Buffer
	cfg := Config{Logger: slog.New(slog.NewJSONHandler(&logs, nil)), CheckpointEvents: 97}
	r := startProjector(t, dir, nc, cfg) // replays 1..1500
	testutil.MustPublish(t, nc, events[1500:2200]...)
	r.assertEqualsFold() // live
	r.assertChecked()
	r.stop()
	testutil.MustPublish(t, nc, events[2200:]...)
	r = startProjector(t, dir, nc, cfg) // replays what followed the checkpoint
	r.assertEqualsFold()
	r.assertChecked()

	// /v1/status says the same in its events object.
	st, err := r.p.Status(testutil.Ctx(t, 5*time.Second), "test")
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Events struct {
			Rejected           *uint64           `json:"rejected"`
			UntenantedOfTenant map[string]uint64 `json:"untenantedOfTenant"`
		} `json:"events"`
	}
	raw, _ := json.Marshal(st)
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatal(err)
	}
	if fold := foldStream(t, l).Counters(); body.Events.Rejected == nil || *body.Events.Rejected != fold.Rejected ||
		len(body.Events.UntenantedOfTenant) == 0 || !maps.Equal(body.Events.UntenantedOfTenant, fold.UntenantedOfTenant) {
		t.Errorf("/v1/status events = rejected %v, untenantedOfTenant %v; want %d, %v", body.Events.Rejected, body.Events.UntenantedOfTenant, fold.Rejected, fold.UntenantedOfTenant)
	}

	want := rejections(t, l)
	if len(want) < 100 {
		t.Fatalf("the log has %d rejected events; want a log that exercises the tenant rules", len(want))
	}
	got := map[uint64]string{}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec struct {
			Msg, ID, Rule string
			Seq           uint64
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if !strings.HasPrefix(rec.Msg, "event rejected") {
			continue
		}
		if _, twice := got[rec.Seq]; twice {
			t.Errorf("event %d logged as rejected twice", rec.Seq)
		}
		got[rec.Seq] = rec.ID + " " + rec.Rule
	}
	if len(got) != len(want) {
		t.Errorf("%d rejected events logged, want %d", len(got), len(want))
	}
	for _, seq := range slices.Sorted(maps.Keys(want)) {
		if got[seq] != want[seq] {
			t.Errorf("rejected event %d logged as %q, want %q", seq, got[seq], want[seq])
		}
	}
}

// rejections folds the whole stream and returns, by sequence, the
// CloudEvent id and the rule of each rejected event.
func rejections(t *testing.T, l *eventlog.Stream) map[uint64]string {
	t.Helper()
	p := projection.New()
	var dec projection.Decoder
	out := map[uint64]string{}
	err := l.FoldUpTo(testutil.Ctx(t, 60*time.Second), math.MaxUint64, func(d eventlog.Delivery) {
		dd := dec.Decode(projection.Message{Seq: d.Seq, Subject: d.Subject, Time: d.Time, Payload: d.Payload})
		if o, why := projection.Apply(p, dd); o == projection.Rejected {
			out[d.Seq] = dd.ID + " " + string(why)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// assertChecked fails unless the served state's indexes, counts and
// aggregates agree with its records, and it holds nothing the retention
// rule removes.
func (r *rig) assertChecked() {
	r.t.Helper()
	var diffs []string
	if err := r.p.Read(func(v View) { diffs = v.Reader.(*store.View).Check(10) }); err != nil {
		r.t.Fatal(err)
	}
	if len(diffs) != 0 {
		r.t.Fatalf("Check() of the served state = %q, want nothing", diffs)
	}
}

// Before any event of a tenant, /v1/status says so with an empty object,
// never null.
func TestStatusUntenantedEmpty(t *testing.T) {
	dir, nc, _ := startNATS(t, 0)
	r := startProjector(t, dir, nc, Config{})
	st, err := r.p.Status(testutil.Ctx(t, 5*time.Second), "test")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(st.Events)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"applied":0,"ignored":0,"malformed":0,"rejected":0,"untenantedOfTenant":{}}`; string(raw) != want {
		t.Errorf("/v1/status events = %s, want %s", raw, want)
	}
}
