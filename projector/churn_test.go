package projector

import (
	"sync/atomic"
	"testing"
	"time"

	"cellos-allinone/testutil"
)

// The events after the checkpoint were deleted (nats stream rmm of the
// tail): the stream's last sequence stays above the cursor, but there is
// nothing left to read, so the projector must become ready without
// waiting for a new event.
func TestBootReadyWhenTheTailAfterTheCheckpointWasDeleted(t *testing.T) {
	dir, nc, l := startNATS(t, 50)
	checkpointAtEnd(t, dir, nc)
	seqs := testutil.MustPublish(t, nc, testutil.Workload(60)[50:]...)
	for _, s := range seqs {
		if err := l.Handle().DeleteMsg(testutil.Ctx(t, 5*time.Second), s); err != nil {
			t.Fatal(err)
		}
	}
	r := launchProjector(t, dir, nc, Config{})
	if err := r.p.WaitReady(testutil.Ctx(t, 10*time.Second)); err != nil {
		t.Fatalf("not ready 10s after boot with nothing left to read (checkpoint 50, last sequence 60, 51..60 deleted): %v", err)
	}
	r.assertEqualsFold()
}

// While the projector rebuilds a new incarnation of the stream, every
// answer is one consistent view: the old incarnation's last state with
// its epoch, or the new incarnation caught up with the new epoch — never
// a half-rebuilt projection, never one epoch with the other's cursor.
func TestRebuildWhileRunningNeverServesAHalfView(t *testing.T) {
	dir, nc, l := startNATS(t, 3000)
	// While the gate is shut the projector applies nothing.
	var gate atomic.Pointer[chan struct{}]
	open := make(chan struct{})
	close(open)
	gate.Store(&open)
	shut := func() { ch := make(chan struct{}); gate.Store(&ch) }
	reopen := func() { close(*gate.Load()) }
	r := startProjector(t, dir, nc, Config{beforeApply: func() { <-*gate.Load() }})
	r.waitCursor(3000)
	oldEpoch := r.p.Epoch()
	oldDump := r.dump()

	// A new incarnation that holds 20,000 events before the rebuild can
	// apply any. Should the projector see it while it is still empty, it
	// rightly serves it at once (nothing to rebuild): try again.
	const newLast = 20000
	for attempt := 1; ; attempt++ {
		shut()
		testutil.RemoveStream(t, l)
		openLog(t, nc)
		testutil.MustPublish(t, nc, testutil.Workload(newLast)...)
		testutil.WaitFor(t, 10*time.Second, "the projector to notice the new incarnation", func() bool {
			return r.p.rebuilding.Load() || r.p.Epoch() != oldEpoch
		})
		if r.p.rebuilding.Load() {
			break
		}
		reopen()
		if attempt == 3 {
			t.Fatal("the projector took the new incarnation while it was empty, three times")
		}
		r.waitCursor(newLast)
		oldEpoch, oldDump = r.p.Epoch(), r.dump()
	}
	st, err := r.p.Status(testutil.Ctx(t, 5*time.Second), "test")
	if err != nil || !st.Stale || st.Epoch != oldEpoch || st.Rebuild == nil || st.Rebuild.FinishedAt != nil {
		t.Fatalf("status during the rebuild: stale %v, epoch %s, rebuild %+v (err %v); want stale, the old epoch %s, a rebuild under way",
			st.Stale, st.Epoch, st.Rebuild, err, oldEpoch)
	}
	reopen()

	// Every answer while the rebuild runs is the old view or the whole new
	// one, never a half-rebuilt one.
	if !testutil.Poll(60*time.Second, time.Millisecond, func() bool { // sampling answers during the rebuild
		var v view
		r.p.Read(func(pv View) { v = view{Epoch: pv.Epoch, Cursor: pv.Cursor(), Dump: string(pv.Dump())} })
		switch {
		case v.Epoch == oldEpoch:
			if v.Dump != oldDump {
				t.Fatalf("answer with the old epoch %s has cursor %d and another state than the old view", oldEpoch, v.Cursor)
			}
			return false
		case v.Cursor != newLast:
			t.Fatalf("answer with the new epoch %s has cursor %d: a half-rebuilt view (the new incarnation holds %d)", v.Epoch, v.Cursor, newLast)
		}
		return true
	}) {
		t.Fatal("the projector did not move to the new incarnation within 60s")
	}
	st, err = r.p.Status(testutil.Ctx(t, 5*time.Second), "test")
	if err != nil || st.Stale || st.Rebuild == nil || st.Rebuild.FinishedAt == nil {
		t.Fatalf("status after the rebuild: stale %v, rebuild %+v (err %v); want not stale and the rebuild finished", st.Stale, st.Rebuild, err)
	}
	r.assertEqualsFold()
}

// view is one answer's worth of the projector's state, taken at once.
type view struct {
	Epoch  string
	Cursor uint64
	Dump   string
}
