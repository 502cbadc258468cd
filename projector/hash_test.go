package projector

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"cellos-allinone/projection"
	"cellos-allinone/testutil"
)

// The state hash of a running projector: none in the status until one is
// asked for; then the fold's, in the status with its epoch; the same
// after a restart from the checkpoint and after a rebuild from the stream
// (the checkpoint removed); requests at once all get it.
func TestStateHash(t *testing.T) {
	dir, nc, l := startNATS(t, 900)
	r := startProjector(t, dir, nc, Config{})
	r.waitCursor(900)
	ctx := testutil.Ctx(t, 30*time.Second)
	st, err := r.p.Status(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	if st.Integrity.Hash != nil {
		t.Fatalf("status before any hash: integrity.hash = %+v, want null", st.Integrity.Hash)
	}
	want, _ := projection.Hash(foldStream(t, l))
	if want.Cursor != 900 || want.Formations == 0 || want.Cells == 0 {
		t.Fatalf("fold of the stream hashed %+v", want)
	}
	before := time.Now().UTC()
	var wg sync.WaitGroup
	got := make([]StateHash, 4)
	for i := range got {
		wg.Go(func() {
			h, err := r.p.HashState(ctx)
			if err != nil {
				t.Errorf("HashState: %v", err)
			}
			got[i] = h
		})
	}
	wg.Wait()
	for _, h := range got {
		if h.StateHash != want || h.Epoch != st.Epoch || h.At.Before(before.Add(-time.Second)) || h.DurationMs < 0 {
			t.Fatalf("HashState = %+v, want %+v of epoch %s, at or after %s", h, want, st.Epoch, before)
		}
	}
	if st, err = r.p.Status(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	if h := st.Integrity.Hash; h == nil || h.StateHash != want || h.Epoch != st.Epoch {
		t.Fatalf("status after a hash: integrity.hash = %+v, want %+v", h, want)
	}

	// From the checkpoint, then rebuilt from the stream: the same state,
	// the same hash.
	r.stop()
	r = startProjector(t, dir, nc, Config{})
	if h, err := r.p.HashState(ctx); err != nil || h.StateHash != want {
		t.Fatalf("after a restart: HashState = %+v, %v; want %+v", h, err, want)
	}
	r.stop()
	if err := os.Remove(filepath.Join(dir, "checkpoint.db")); err != nil {
		t.Fatal(err)
	}
	r = startProjector(t, dir, nc, Config{})
	r.waitCursor(900)
	if b := r.p.BootInfo(); b.Replayed != 900 {
		t.Fatalf("boot replayed %d events, want a rebuild of all 900", b.Replayed)
	}
	if h, err := r.p.HashState(ctx); err != nil || h.StateHash != want {
		t.Fatalf("after a rebuild: HashState = %+v, %v; want %+v", h, err, want)
	}
}

// One hash at a time: requests that come while one runs wait for it and
// get its result — one computation, one value, one moment; a request
// that gives up waiting does not stop it.
func TestStateHashOneAtATime(t *testing.T) {
	dir, nc, _ := startNATS(t, 300)
	entered, release := make(chan struct{}, 1), make(chan struct{})
	r := startProjector(t, dir, nc, Config{beforeHash: func(context.Context) {
		entered <- struct{}{}
		<-release
	}})
	r.waitCursor(300)
	ctx := testutil.Ctx(t, 30*time.Second)
	got := make([]StateHash, 4)
	var wg sync.WaitGroup
	ask := func(i int) {
		wg.Go(func() {
			h, err := r.p.HashState(ctx)
			if err != nil {
				t.Errorf("HashState: %v", err)
			}
			got[i] = h
		})
	}
	ask(0)
	<-entered // the first computation runs, held
	for i := 1; i < len(got); i++ {
		ask(i)
	}
	joined := func() int {
		r.p.hashing.mu.Lock()
		defer r.p.hashing.mu.Unlock()
		if r.p.hashing.running == nil {
			return -1
		}
		return r.p.hashing.running.joined
	}
	testutil.WaitFor(t, 10*time.Second, "three requests to join the hash under way", func() bool { return joined() == 3 })
	// One more that gives up: the computation goes on for the others.
	short, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := r.p.HashState(short); !errors.Is(err, context.Canceled) {
		t.Fatalf("HashState(cancelled) = %v, want context.Canceled", err)
	}
	close(release)
	wg.Wait()
	for _, h := range got[1:] {
		if h != got[0] || h.Value == "" {
			t.Fatalf("results %+v, want one, the same for every request", got)
		}
	}
	r.p.hashing.mu.Lock()
	runs := r.p.hashing.runs
	r.p.hashing.mu.Unlock()
	if runs != 1 {
		t.Fatalf("%d computations for requests that came while one ran, want 1", runs)
	}
	// A request after it, of the same state (epoch and cursor), is
	// answered with the last result, not a new computation.
	h, err := r.p.HashState(ctx)
	r.p.hashing.mu.Lock()
	runs = r.p.hashing.runs
	r.p.hashing.mu.Unlock()
	if err != nil || runs != 1 || h != got[0] {
		t.Fatalf("a request after the hash, of the same state: %+v, %v after %d computations; want the last result %+v, no new computation", h, err, runs, got[0])
	}
}

// tickingClock is a clock that moves a second each time it is read: a
// state hash (two reads) takes a second by it.
type tickingClock struct {
	mu sync.Mutex
	at time.Time
}

func (c *tickingClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at = c.at.Add(time.Second)
	return c.at
}

// After a computation that took d, none starts for hashCooldown×d even
// though the cursor moved: requests meanwhile get the last result, so a
// poller cannot keep the served lock held; after it, a new one hashes
// the state now served.
func TestStateHashCooldown(t *testing.T) {
	dir, nc, _ := startNATS(t, 300)
	clock := &tickingClock{at: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	r := startProjector(t, dir, nc, Config{hashClock: clock.now})
	r.waitCursor(300)
	ctx := testutil.Ctx(t, 30*time.Second)
	first, err := r.p.HashState(ctx)
	if err != nil || first.Cursor != 300 || first.DurationMs != 1000 {
		t.Fatalf("first HashState = %+v, %v; want cursor 300 hashed in 1 s by the test's clock", first, err)
	}
	testutil.MustPublish(t, nc, testutil.Workload(350)[300:]...)
	r.waitCursor(350)
	runs := func() uint64 {
		r.p.hashing.mu.Lock()
		defer r.p.hashing.mu.Unlock()
		return r.p.hashing.runs
	}
	// Each request reads the clock once: a second later each time; the
	// cooldown is 4 s from the end of the first.
	for i := 1; i < hashCooldown; i++ {
		if h, err := r.p.HashState(ctx); err != nil || h != first || runs() != 1 {
			t.Fatalf("request %d s after a 1 s hash = %+v, %v after %d computations; want the last result %+v", i, h, err, runs(), first)
		}
	}
	h, err := r.p.HashState(ctx)
	if err != nil || runs() != 2 || h.Cursor != 350 || h.Value == first.Value {
		t.Fatalf("request after the cooldown = %+v, %v after %d computations; want a new one at cursor 350", h, err, runs())
	}
}

// Run stops a state hash under way and waits for it before it returns:
// the state file is closed after Run, never under a hash.
func TestStateHashStopsWithRun(t *testing.T) {
	dir, nc, _ := startNATS(t, 300)
	entered := make(chan struct{}, 1)
	r := startProjector(t, dir, nc, Config{beforeHash: func(ctx context.Context) {
		entered <- struct{}{}
		<-ctx.Done()
		// Stands for a walk that takes a while to reach its next look at
		// the context: Run must still wait for it.
		time.Sleep(100 * time.Millisecond)
	}})
	r.waitCursor(300)
	res := make(chan error, 1)
	go func() {
		_, err := r.p.HashState(testutil.Ctx(t, 30*time.Second))
		res <- err
	}()
	<-entered
	r.stop() // cancels Run, waits for it, then closes the store
	r.p.hashing.mu.Lock()
	running := r.p.hashing.running
	r.p.hashing.mu.Unlock()
	if running != nil {
		t.Fatal("Run returned with a state hash still running")
	}
	select {
	case err := <-res:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("HashState stopped by Run = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("HashState did not return within 10s of Run's end")
	}
	if _, err := r.p.HashState(testutil.Ctx(t, 10*time.Second)); err == nil {
		t.Fatal("HashState after Run's end succeeded, want an error")
	}
}
