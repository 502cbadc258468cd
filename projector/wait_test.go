package projector

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"cellos-allinone/testutil"
)

// longInterval is a checkpoint interval no wait of these tests may owe
// anything to: only an early commit can make them short.
const longInterval = 10 * time.Second

type readFromResult struct {
	cursor uint64
	epoch  string
	err    error
	took   time.Duration
}

// readFrom runs ReadFrom in the background and hands its answer over.
func readFrom(r *rig, ctx context.Context, seq uint64) <-chan readFromResult {
	out := make(chan readFromResult, 1)
	go func() {
		start := time.Now()
		var res readFromResult
		res.err = r.p.ReadFrom(ctx, seq, func(v View) { res.cursor, res.epoch = v.Cursor(), v.Epoch })
		res.took = time.Since(start)
		out <- res
	}()
	return out
}

func await(t *testing.T, ch <-chan readFromResult) readFromResult {
	t.Helper()
	select {
	case res := <-ch:
		return res
	case <-time.After(30 * time.Second):
		t.Fatal("ReadFrom did not return within 30s")
		return readFromResult{}
	}
}

func TestReadFrom(t *testing.T) {
	events := testutil.Workload(21)
	dir, nc, _ := startNATS(t, 20)
	r := startProjector(t, dir, nc, Config{CheckpointInterval: longInterval})

	t.Run("committed already", func(t *testing.T) {
		// Ready means the replay is committed: no wait.
		res := await(t, readFrom(r, testutil.Ctx(t, 5*time.Second), 20))
		if res.err != nil || res.cursor != 20 {
			t.Fatalf("ReadFrom(20) = cursor %d, %v; want 20", res.cursor, res.err)
		}
	})

	t.Run("zero asks nothing", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if res := await(t, readFrom(r, ctx, 0)); res.err != nil || res.cursor != 20 {
			t.Fatalf("ReadFrom(0) with an ended context = cursor %d, %v; want 20", res.cursor, res.err)
		}
	})

	t.Run("waits for the event, committed early", func(t *testing.T) {
		ch := readFrom(r, testutil.Ctx(t, 20*time.Second), 21)
		testutil.WaitFor(t, 10*time.Second, "the reader to ask for 21", func() bool { return r.p.waits.wanted.Load() == 21 })
		start := time.Now()
		if seqs := testutil.MustPublish(t, nc, events[20]); seqs[0] != 21 {
			t.Fatalf("published at %d, want 21", seqs[0])
		}
		res := await(t, ch)
		if res.err != nil || res.cursor < 21 {
			t.Fatalf("ReadFrom(21) = cursor %d, %v; want ≥ 21", res.cursor, res.err)
		}
		// The checkpoint interval is 10 s: only the early commit answers
		// this soon.
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("ReadFrom(21) answered %v after the publish, want well under the %v interval", took, longInterval)
		}
	})

	t.Run("not caught up", func(t *testing.T) {
		res := await(t, readFrom(r, testutil.Ctx(t, 100*time.Millisecond), 1000))
		var nc *NotCaughtUpError
		if !errors.As(res.err, &nc) || nc.Cursor != 21 || nc.Seq != 1000 || !errors.Is(res.err, context.DeadlineExceeded) {
			t.Fatalf("ReadFrom(1000) = %v, want a NotCaughtUpError at cursor 21 after the deadline", res.err)
		}
		// The context's clock starts a moment before readFrom's: an
		// answer at its deadline measures a hair under 100 ms.
		if res.took < 90*time.Millisecond {
			t.Fatalf("ReadFrom(1000) gave up after %v, before its context ended", res.took)
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		// Below the 1000 still asked for above: the least is recorded.
		ch := readFrom(r, ctx, 500)
		testutil.WaitFor(t, 10*time.Second, "the reader to ask for 500", func() bool { return r.p.waits.wanted.Load() == 500 })
		cancel()
		if res := await(t, ch); !errors.Is(res.err, context.Canceled) {
			t.Fatalf("ReadFrom after its context was cancelled = %v, want context.Canceled", res.err)
		}
	})
}

// commits counts the projector's commits.
func commits(t *testing.T, p *Projector) uint64 {
	t.Helper()
	var m dto.Metric
	if err := p.m.checkpointSeconds.(prometheus.Metric).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}

// Readers that each want every next event, one published at a time: each
// is answered by an early commit, and however many ask, there is at most
// one early commit per earlyCommitGap.
func TestEarlyCommitsAreSpaced(t *testing.T) {
	const n, readers = 150, 32
	dir, nc, _ := startNATS(t, 0)
	r := startProjector(t, dir, nc, Config{CheckpointInterval: longInterval})
	before := commits(t, r.p)
	start := time.Now()
	ctx := testutil.Ctx(t, 60*time.Second)
	errs := make(chan error, readers)
	var wg sync.WaitGroup
	for range readers {
		wg.Go(func() {
			for seq := uint64(1); seq <= n; seq++ {
				if err := r.p.ReadFrom(ctx, seq, func(View) {}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for _, ev := range testutil.Workload(n) {
		testutil.MustPublish(t, nc, ev)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("ReadFrom: %v", err)
	}
	took := time.Since(start)
	made := commits(t, r.p) - before
	// Each early commit starts at least a gap after the previous one ended;
	// the interval may add its own.
	most := uint64(took/earlyCommitGap) + uint64(took/longInterval) + 2
	t.Logf("%d events, %d readers: %d commits in %v", n, readers, made, took)
	if made > most {
		t.Fatalf("%d commits in %v, want at most %d (one early commit per %v)", made, took, most, earlyCommitGap)
	}
	if made == 0 {
		t.Fatal("no commit made, yet every reader was answered")
	}
}

// While a new stream incarnation is rebuilt beside the old state, the old
// state does not answer for a sequence of the new one, whatever its cursor.
func TestReadFromWaitsForTheNewIncarnation(t *testing.T) {
	dir, nc, l := startNATS(t, 300)
	// The rebuild is held before its first event until the reader waits.
	var hold atomic.Bool
	release := make(chan struct{})
	r := startProjector(t, dir, nc, Config{beforeApply: func() {
		if hold.Load() {
			<-release
		}
	}})
	var once sync.Once
	let := func() { once.Do(func() { hold.Store(false); close(release) }) }
	t.Cleanup(let) // before the projector stops
	oldEpoch := r.p.Epoch()
	hold.Store(true)
	testutil.RemoveStream(t, l)
	openLog(t, nc)
	seqs := testutil.MustPublish(t, nc, testutil.Workload(5)...)
	testutil.WaitFor(t, 30*time.Second, "the event log to notice the new incarnation", func() bool { return r.log.Epoch() != oldEpoch })
	// Asked before the rebuild began, the wish would be taken as met by
	// the old state's cursor and forgotten: the reader would still wait,
	// but not be seen waiting.
	testutil.WaitFor(t, 30*time.Second, "the rebuild to begin", r.p.rebuilding.Load)
	ch := readFrom(r, testutil.Ctx(t, 30*time.Second), seqs[4])
	// The old state's cursor is 300, yet the reader waits.
	testutil.WaitFor(t, 10*time.Second, "the reader to wait", func() bool { return r.p.waits.wanted.Load() == seqs[4] })
	let()
	res := await(t, ch)
	if res.err != nil || res.epoch == oldEpoch || res.cursor < seqs[4] {
		t.Fatalf("ReadFrom(%d) after the stream was recreated = epoch %s cursor %d, %v; want the new epoch (not %s) at cursor ≥ %d",
			seqs[4], res.epoch, res.cursor, res.err, oldEpoch, seqs[4])
	}
}
