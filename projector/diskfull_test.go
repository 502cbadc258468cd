package projector

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"cellos-allinone/store"
	"cellos-allinone/testutil"
)

// bigCells are n cells whose summaries carry 4 kB each: a commit of them
// needs pages a full disk does not have (the file's free pages hold far
// less).
func bigCells(prefix string, n int) []testutil.Event {
	big := strings.Repeat("x", 4000)
	var events []testutil.Event
	for i := range n {
		events = append(events, testutil.Cell(fmt.Sprintf("%s-%03d", prefix, i), "summary", map[string]any{"blob": big}))
	}
	return events
}

// waitFailing waits until a commit keeps failing for lack of space and
// returns it.
func (r *rig) waitFailing() *CommitFailure {
	r.t.Helper()
	var f *CommitFailure
	testutil.WaitFor(r.t, 30*time.Second, "a commit to fail", func() bool {
		f = r.p.CommitFailing()
		return f != nil
	})
	if !strings.Contains(f.Error, "no space left") || f.Attempts == 0 || f.Since.IsZero() || !f.NextAttemptAt.After(f.Since) {
		r.t.Fatalf("CommitFailing() = %+v, want the full disk, attempts, since when and the next attempt", f)
	}
	return f
}

// assertStopped checks that while the commit fails, the fold takes
// nothing more: events published now are not applied however many
// retries pass, and reads serve the last commit, at least at cursor from
// and short of what the failing commit holds.
func (r *rig) assertStopped(from uint64) {
	r.t.Helper()
	f := r.waitFailing()
	committed := r.cursor()
	if committed < from || committed >= f.Cursor {
		r.t.Fatalf("served cursor %d while the commit of %d fails, want the last commit (at least %d)", committed, f.Cursor, from)
	}
	seqs := testutil.MustPublish(r.t, r.nc, testutil.Workload(3)...)
	testutil.WaitFor(r.t, 30*time.Second, "two more failed attempts", func() bool {
		g := r.p.CommitFailing()
		return g != nil && g.Attempts >= f.Attempts+2
	})
	if seen := r.p.lastSeen.Load(); seen >= seqs[0] {
		r.t.Fatalf("the fold applied %d while its commit was failing (published from %d on)", seen, seqs[0])
	}
	if err := r.p.Checkpoint(); !errors.Is(err, errCommitFailing) {
		r.t.Fatalf("Checkpoint() while failing = %v, want %v", err, errCommitFailing)
	}
	st, err := r.p.Status(testutil.Ctx(r.t, 5*time.Second), "test")
	if err != nil {
		r.t.Fatal(err)
	}
	if st.Cursor != committed || st.Checkpoint.Cursor != committed || st.Checkpoint.Failing == nil ||
		st.Checkpoint.Failing.Attempts < f.Attempts+2 || !st.Checkpoint.Failing.Since.Equal(f.Since) ||
		!strings.Contains(st.Checkpoint.LastError, "no space left") || st.Checkpoint.Failures < st.Checkpoint.Failing.Attempts {
		r.t.Fatalf("status while failing: cursor %d, checkpoint %+v, failing %+v; want the last commit %d and the failure since %s",
			st.Cursor, st.Checkpoint, st.Checkpoint.Failing, committed, f.Since)
	}
}

// assertResumed checks that once the disk has room the commit succeeds,
// the fold takes up the stream where it stopped and serves exactly a
// fold of it: every event applied once.
func (r *rig) assertResumed() {
	r.t.Helper()
	testutil.WaitFor(r.t, 40*time.Second, "a commit to succeed again", func() bool { return r.p.CommitFailing() == nil })
	r.waitReady()
	r.assertEqualsFold()
	st, err := r.p.Status(testutil.Ctx(r.t, 5*time.Second), "test")
	if err != nil {
		r.t.Fatal(err)
	}
	if st.Checkpoint.Failing != nil || st.Checkpoint.LastError != "" || st.Stale {
		r.t.Fatalf("status after the disk has room: checkpoint %+v, stale %v", st.Checkpoint, st.Stale)
	}
}

// A commit that fails for a full disk (a real one: a small tmpfs holds the
// state file) stops the fold, whether it is live, replaying at boot, or
// rebuilding beside the served state; reads go on from the last commit;
// once there is room again it goes on, and nothing is lost or applied
// twice.
func TestFullDiskStopsTheFold(t *testing.T) {
	t.Run("live", func(t *testing.T) {
		cpDir := testutil.SmallDisk(t, "", "8m")
		dir, nc, _ := startNATS(t, 0)
		st, _, err := store.Open(filepath.Join(cpDir, "checkpoint.db"))
		if err != nil {
			t.Fatal(err)
		}
		r := runProjector(t, dir, nc, st, Config{CheckpointInterval: 50 * time.Millisecond})
		r.waitReady()
		testutil.MustPublish(t, nc, testutil.Workload(40)...)
		r.waitCursor(40)

		free := testutil.FillDisk(t, cpDir)
		testutil.MustPublish(t, nc, bigCells("big", 200)...)
		r.assertStopped(40)
		free()
		r.assertResumed()
	})

	t.Run("boot replay", func(t *testing.T) {
		cpDir := testutil.SmallDisk(t, "", "8m")
		dir, nc, _ := startNATS(t, 40)
		path := filepath.Join(cpDir, "checkpoint.db")
		st, _, err := store.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		r := runProjector(t, dir, nc, st, Config{})
		r.waitReady()
		r.stop()
		testutil.MustPublish(t, nc, bigCells("big", 200)...)

		free := testutil.FillDisk(t, cpDir)
		// Opening a complete file writes nothing: the boot gets as far as
		// its first commit.
		st, _, err = store.Open(path)
		if err != nil {
			t.Fatalf("open the state file on a full disk: %v", err)
		}
		r = runProjector(t, dir, nc, st, Config{})
		r.assertStopped(40)
		if r.p.Ready() {
			t.Fatal("ready although the replay's commit fails")
		}
		free()
		r.assertResumed()
		if b := r.p.BootInfo(); b.CheckpointCursor != 40 || b.Rebuild != "" {
			t.Fatalf("BootInfo() = %+v, want a replay from the checkpoint at 40", b)
		}
	})

	t.Run("rebuild beside the served state", func(t *testing.T) {
		cpDir := testutil.SmallDisk(t, "", "8m")
		dir, nc, l := startNATS(t, 40)
		st, _, err := store.Open(filepath.Join(cpDir, "checkpoint.db"))
		if err != nil {
			t.Fatal(err)
		}
		// The rebuild's first event waits until the disk is full: its
		// file is made while there is room.
		var hold atomic.Pointer[chan struct{}]
		r := runProjector(t, dir, nc, st, Config{beforeApply: func() {
			if ch := hold.Load(); ch != nil {
				<-*ch
			}
		}})
		r.waitReady()
		oldEpoch := r.p.Epoch()
		ch := make(chan struct{})
		hold.Store(&ch)
		testutil.RemoveStream(t, l)
		r.log = openLog(t, nc)
		testutil.MustPublish(t, nc, bigCells("big", 200)...)
		testutil.WaitFor(t, 30*time.Second, "the rebuild to start", r.p.rebuilding.Load)

		free := testutil.FillDisk(t, cpDir)
		hold.Store(nil)
		close(ch)
		r.waitFailing()
		st2, err := r.p.Status(testutil.Ctx(t, 5*time.Second), "test")
		if err != nil {
			t.Fatal(err)
		}
		if !st2.Stale || st2.Epoch != oldEpoch || st2.Cursor != 40 {
			t.Fatalf("status while the rebuild's commit fails: stale %v, epoch %s, cursor %d; want the old state (%s at 40), stale",
				st2.Stale, st2.Epoch, st2.Cursor, oldEpoch)
		}
		free()
		testutil.WaitFor(t, 40*time.Second, "the rebuilt state to be served", func() bool { return r.p.Epoch() != oldEpoch })
		r.assertResumed()
	})
}
