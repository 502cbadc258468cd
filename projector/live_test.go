package projector

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"cellos-allinone/testutil"
)

func TestCrashWithoutFinalCheckpointRecovers(t *testing.T) {
	dir, nc, _ := startNATS(t, 0)
	events := testutil.Workload(1000)
	r := startProjector(t, dir, nc, Config{CheckpointEvents: 64, CheckpointInterval: 10 * time.Second})
	testutil.MustPublish(t, nc, events[:700]...)
	r.waitCursor(700)
	r.crash()
	testutil.MustPublish(t, nc, events[700:]...)
	r = startProjector(t, dir, nc, Config{})
	b := r.p.BootInfo()
	if b.Rebuild != "" || b.CheckpointCursor == 0 || b.CheckpointCursor > 700 {
		t.Fatalf("BootInfo() = %+v, want a checkpoint from before the crash (cursor ≤ 700)", b)
	}
	if b.Replayed != 1000-b.CheckpointCursor {
		t.Fatalf("replayed %d, want %d (everything after the checkpoint)", b.Replayed, 1000-b.CheckpointCursor)
	}
	r.assertEqualsFold()
}

func TestCheckpointAfterEventCount(t *testing.T) {
	dir, nc, _ := startNATS(t, 0)
	r := startProjector(t, dir, nc, Config{CheckpointEvents: 100, CheckpointInterval: 10 * time.Second})
	testutil.MustPublish(t, nc, testutil.Workload(250)...)
	r.waitCursor(250)
	// The count trigger fires in the projector's goroutine as event 200 is
	// applied: by the time the cursor is 250 it has written.
	st, err := r.p.Status(testutil.Ctx(t, 5*time.Second), "test")
	if err != nil {
		t.Fatal(err)
	}
	if st.Checkpoint.Cursor < 200 || st.Checkpoint.At == nil {
		t.Fatalf("checkpoint %+v, want cursor ≥ 200 from the event-count trigger", st.Checkpoint)
	}
}

// What a commit holds in memory is bounded by bytes too: large events
// make a commit due long before the event count or the interval does.
func TestCheckpointAfterPayloadBytes(t *testing.T) {
	dir, nc, _ := startNATS(t, 0)
	r := startProjector(t, dir, nc, Config{CheckpointEvents: 1_000_000, CheckpointInterval: 10 * time.Second})
	blob := strings.Repeat("x", 500<<10)
	var events []testutil.Event
	for i := range 40 { // 20 MB of payload: more than commitBytes
		events = append(events, testutil.Cell(fmt.Sprintf("c-%d", i), "summary", map[string]any{"blob": blob}))
	}
	start := time.Now()
	testutil.MustPublish(t, nc, events...)
	r.waitApplied(40)
	// 16 MiB is reached at the 34th event: a commit holds it at once.
	if !testutil.Poll(5*time.Second, 5*time.Millisecond, func() bool { return r.p.cpCursor.Load() >= 33 }) {
		t.Fatalf("checkpoint cursor %d after %d MB of payload, want a commit from the byte bound (%d MB)", r.p.cpCursor.Load(), 40*len(blob)>>20, commitBytes>>20)
	}
	if d := time.Since(start); d >= 10*time.Second {
		t.Fatalf("the commit came after %v: the interval's, not the byte bound's", d)
	}
}

func TestCheckpointOnInterval(t *testing.T) {
	dir, nc, _ := startNATS(t, 0)
	r := startProjector(t, dir, nc, Config{CheckpointInterval: 100 * time.Millisecond})
	testutil.MustPublish(t, nc, testutil.Workload(7)...)
	r.waitCursor(7)
	if !testutil.Poll(10*time.Second, 10*time.Millisecond, func() bool { return r.p.cpCursor.Load() == 7 }) {
		t.Fatalf("checkpoint cursor %d, want 7 within 10s of the interval trigger", r.p.cpCursor.Load())
	}
	cp, found, err := r.st.Info()
	if err != nil || !found || cp.Meta.Cursor != 7 {
		t.Fatalf("stored checkpoint = %+v found %v err %v, want cursor 7", cp, found, err)
	}
}

func TestFinalCheckpointOnStop(t *testing.T) {
	dir, nc, _ := startNATS(t, 0)
	r := startProjector(t, dir, nc, Config{CheckpointInterval: 10 * time.Second})
	testutil.MustPublish(t, nc, testutil.Workload(33)...)
	r.waitCursor(33)
	r.stop()
	r = startProjector(t, dir, nc, Config{})
	if b := r.p.BootInfo(); b.CheckpointCursor != 33 || b.Replayed != 0 {
		t.Fatalf("BootInfo() = %+v, want checkpoint 33 and nothing replayed", b)
	}
}

// A publisher runs throughout the restart: boot must still end (it stops at
// the last sequence read at boot), and nothing may fall between replay and
// live.
func TestBusyBootLosesNothing(t *testing.T) {
	dir, nc, _ := startNATS(t, 3000)
	r := startProjector(t, dir, nc, Config{CheckpointEvents: 500})
	r.stop()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var published int
	started := make(chan struct{})
	wg.Go(func() {
		events := testutil.Workload(20000)
		for i, ev := range events {
			if ctx.Err() != nil {
				return
			}
			if _, err := js.Publish(ctx, ev.Subject, ev.Payload); err != nil {
				if ctx.Err() == nil {
					t.Errorf("publish %d: %v", i, err)
				}
				return
			}
			published++
			if i == 100 {
				close(started)
			}
		}
	})
	<-started
	r = startProjector(t, dir, nc, Config{CheckpointEvents: 500})
	// Let the publisher run on after boot, then stop it.
	b := r.p.BootInfo()
	r.waitCursor(b.ReplayTo + 200)
	cancel()
	wg.Wait()
	if b.CheckpointCursor != 3000 || b.ReplayTo <= 3000 {
		t.Fatalf("BootInfo() = %+v, want checkpoint 3000 and events published during boot", b)
	}
	t.Logf("published %d events during the restart; boot replayed %d (to %d)", published, b.Replayed, b.ReplayTo)
	r.assertEqualsFold()
	st, err := r.p.Status(testutil.Ctx(t, 5*time.Second), "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Gaps) != 0 || st.Lag != 0 {
		t.Fatalf("after the busy boot: gaps %v lag %d, want none", st.Gaps, st.Lag)
	}
	// A publish cancelled while awaiting its ack may still be stored, so the
	// stream, not the publisher's count, is the reference.
	if st.Cursor != st.Stream.LastSeq || st.Cursor < uint64(3000+published) {
		t.Fatalf("cursor %d, stream last %d, acknowledged %d: want every stored event applied", st.Cursor, st.Stream.LastSeq, 3000+published)
	}
}

// While serving live a commit holds at most liveCommitEvents events, so
// that one commit does not pause the fold for long; a replay commits
// every CheckpointEvents.
func TestLiveCommitsAreSmall(t *testing.T) {
	dir, nc, _ := startNATS(t, 0)
	// No interval tick within the test: only the event counts commit.
	r := startProjector(t, dir, nc, Config{CheckpointInterval: 10 * time.Second, CheckpointEvents: 50_000})
	seqs := testutil.MustPublish(t, nc, testutil.Workload(5_000)...)
	last := seqs[len(seqs)-1]
	r.waitApplied(last)
	var served uint64
	if err := r.p.Read(func(v View) { served = v.Cursor() }); err != nil {
		t.Fatal(err)
	}
	// 5,000 events applied: commits at 2,000 and 4,000 (the rest waits
	// for the tick); with CheckpointEvents alone nothing would be served.
	if served < 2*liveCommitEvents || served >= last {
		t.Fatalf("served cursor %d after %d live events, want the commit of %d at least and not all", served, last, 2*liveCommitEvents)
	}
}
