package projector

import (
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
