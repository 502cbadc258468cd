package projector

import (
	"strings"
	"testing"
	"time"

	"cellos-allinone/testutil"
)

// The stream is deleted and created again while the projector runs: it must
// notice the new incarnation, rebuild from it, and say so.
func TestStreamRecreatedWhileRunning(t *testing.T) {
	r, oldEpoch := removeStreamUnder(t, 300)
	nc := r.nc
	openLog(t, nc)
	testutil.MustPublish(t, nc, testutil.Workload(40)...)
	testutil.WaitFor(t, 30*time.Second, "the projector to notice the new stream incarnation", func() bool { return r.p.Epoch() != oldEpoch })
	st, err := r.p.Status(testutil.Ctx(t, 5*time.Second), "test")
	if err != nil {
		t.Fatal(err)
	}
	if st.Rebuild == nil || !strings.HasPrefix(st.Rebuild.Reason, RebuildEpoch) || st.Rebuild.Epoch != r.p.Epoch() {
		t.Fatalf("Status().Rebuild = %+v, want %s for epoch %s", st.Rebuild, RebuildEpoch, r.p.Epoch())
	}
	r.log = openLog(t, nc)
	r.assertEqualsFold()
}

// The stream is deleted and nobody creates it: the projector creates it
// again (with the configuration it was opened with) and goes on.
func TestStreamDeletedWhileRunningIsRecreated(t *testing.T) {
	r, oldEpoch := removeStreamUnder(t, 100)
	nc := r.nc
	testutil.WaitFor(t, 30*time.Second, "the projector to recreate the stream", func() bool { return r.p.Epoch() != oldEpoch })
	testutil.MustPublish(t, nc, testutil.Workload(25)...)
	r.assertEqualsFold()
	var formations int
	r.p.Read(func(p View) { formations, _ = p.Size() })
	if formations != 1 {
		t.Fatalf("%d formations after the rebuild, want only the 1 of the new stream", formations)
	}
}

// removeStreamUnder runs a projector over n events and deletes the stream
// under it; it returns the projector and the epoch it had.
func removeStreamUnder(t *testing.T, n int) (*rig, string) {
	t.Helper()
	dir, nc, l := startNATS(t, n)
	r := startProjector(t, dir, nc, Config{CheckpointInterval: 200 * time.Millisecond})
	epoch := r.p.Epoch()
	testutil.RemoveStream(t, l)
	return r, epoch
}
