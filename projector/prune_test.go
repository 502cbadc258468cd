package projector

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"cellos-allinone/projection"
	"cellos-allinone/testutil"
)

// When events expire while serving, the next commit prunes what the
// retention rule removes at the new floor (docs/design.md §3) — also with
// nothing else to commit — and the status and the metrics say so.
func TestPruneFollowsTheFloor(t *testing.T) {
	dir, nc, l := startNATS(t, 3000)
	reg := prometheus.NewRegistry()
	r := startProjector(t, dir, nc, Config{Registerer: reg})
	r.waitCursor(3000)
	want := foldStream(t, l)
	// 1..1500 expire: the floor is 1501.
	if err := l.Handle().Purge(testutil.Ctx(t, 5*time.Second), jetstream.WithPurgeSequence(1501)); err != nil {
		t.Fatal(err)
	}
	want.Prune(1501)
	if pr := want.Pruned(); pr.Formations == 0 || pr.Cells == 0 {
		t.Fatalf("the fold pruned at 1501 prunes %+v: want formations and cells", pr)
	}
	testutil.WaitFor(t, 10*time.Second, "the state to be pruned at the floor 1501", func() bool {
		var pr projection.Pruned
		r.p.Read(func(v View) { pr = v.Pruned() })
		return pr.Floor >= 1501
	})
	r.assertEquals(want, "a fold of the stream pruned at its floor")
	r.assertChecked()

	st, err := r.p.Status(testutil.Ctx(t, 5*time.Second), "test")
	if err != nil {
		t.Fatal(err)
	}
	if st.Registry.Pruned != want.Pruned() {
		t.Errorf("Status().Registry.Pruned = %+v, want %+v", st.Registry.Pruned, want.Pruned())
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		if m := f.GetMetric(); len(m) == 1 && m[0].GetCounter() != nil {
			got[f.GetName()] = m[0].GetCounter().GetValue()
		}
	}
	for name, n := range map[string]uint64{"cellos_pruned_formations_total": want.Pruned().Formations, "cellos_pruned_cells_total": want.Pruned().Cells} {
		if got[name] != float64(n) {
			t.Errorf("%s = %v, want %d", name, got[name], n)
		}
	}
}

// A checkpoint whose stream expired events while the server was stopped
// is pruned by the boot's first commit: the first answer is already
// bounded by the retention.
func TestPruneAtBoot(t *testing.T) {
	dir, nc, l := startNATS(t, 2000)
	checkpointAtEnd(t, dir, nc)
	want := foldStream(t, l)
	if err := l.Handle().Purge(testutil.Ctx(t, 5*time.Second), jetstream.WithPurgeSequence(1001)); err != nil {
		t.Fatal(err)
	}
	want.Prune(1001)
	r := startProjector(t, dir, nc, Config{})
	var pr projection.Pruned
	r.p.Read(func(v View) { pr = v.Pruned() })
	if pr != want.Pruned() {
		t.Fatalf("Pruned() of the first answer = %+v, want %+v", pr, want.Pruned())
	}
	r.assertEquals(want, "the checkpointed fold pruned at the floor")
	r.assertChecked()
}
