package store

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"cellos-allinone/testutil"
)

// A write that panics on a damaged page of a file whose freelist page is
// damaged too: bbolt's Update would roll back by reloading the freelist,
// panic again and keep its writer lock for ever, so that the next write
// and Close hang (the fuzzer found it: a repair's swap waited on it with
// every reader queued behind). The write is ErrDamaged, and what follows
// returns.
func TestPanickingWriteOnADamagedFileLeavesItClosable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cp.db")
	s, _, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	write(t, s, "e", testutil.Workload(600), 600)
	m, err := testutil.MapBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	var freelist, leaf int64 = -1, -1
	for _, p := range m.Pages {
		switch {
		case p.Class == testutil.PageFreelist:
			freelist = int64(p.ID)
		case p.Class == testutil.PageLeaf && p.Bucket == "cells" && leaf < 0:
			leaf = int64(p.ID)
		}
	}
	if freelist < 0 || leaf < 0 {
		t.Fatalf("no freelist page (%d) or cells leaf (%d): %s", freelist, leaf, m.Classes())
	}
	for _, id := range []int64{freelist, leaf} {
		d := testutil.Damage{Off: id * int64(m.PageSize), Bytes: make([]byte, m.PageSize)}
		if err := d.Apply(path); err != nil {
			t.Fatal(err)
		}
	}
	// Reset frees every page of every bucket: it reads the zeroed leaf.
	if err := s.Reset("e2"); !errors.Is(err, ErrDamaged) {
		t.Fatalf("Reset over a zeroed leaf = %v, want ErrDamaged", err)
	}
	done := make(chan error, 1)
	go func() {
		_ = s.Reset("e3") // a second write: ErrDamaged or done, never a wait
		done <- s.Close()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a write or Close after the panicking write hangs: bbolt's writer lock was never released")
	}
}
