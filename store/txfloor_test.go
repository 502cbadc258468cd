package store

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"cellos-allinone/projection"
	"cellos-allinone/testutil"
)

// zeroNewestMeta zeroes, in place, the meta page of the bbolt file at path
// with the highest transaction id, as a medium that lost a 4 KiB sector
// run does.
func zeroNewestMeta(t *testing.T, path string) {
	t.Helper()
	d, err := testutil.NewestMetaDamage(path)
	if err == nil {
		err = d.Apply(path)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// The newest meta page damaged under a running store: bbolt starts the
// next transactions from the commit before the last, a whole older state
// whose seals all hold. A read of it is damage, never an older answer,
// and a commit on top of it is refused (the fuzzer found the read: a list
// answered at an older cursor, without the formations of the last commit).
func TestNewestMetaDamagedIsDamageNotAnOlderState(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cp.db")
	s := mustOpen(t, path)
	events := testutil.Workload(400)
	write(t, s, "e", events, 200) // commits at 200 and 400
	if err := s.View(func(v *View) error {
		if v.Cursor() != 400 {
			t.Fatalf("cursor %d, want 400", v.Cursor())
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	zeroNewestMeta(t, path)
	err := s.View(func(v *View) error {
		if v.Cursor() != 400 {
			t.Errorf("served cursor %d: the commit before the last", v.Cursor())
		}
		v.Cells(projection.CellFilter{}, projection.Page{Limit: 10})
		return nil
	})
	if !errors.Is(err, ErrDamaged) {
		t.Fatalf("View after the newest meta page was zeroed = %v, want ErrDamaged", err)
	}
	b, err := s.Batch()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.Meta().Cursor = 401
	if err := b.Commit(time.Now()); !errors.Is(err, ErrDamaged) {
		t.Fatalf("Commit after the newest meta page was zeroed = %v, want ErrDamaged", err)
	}
}

// A file whose newest meta page was damaged while it was closed opens at
// the commit before the last, which is consistent: no damage then (the
// boot replays the stream from that cursor).
func TestNewestMetaDamagedAtRestOpensTheCommitBefore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cp.db")
	s := mustOpen(t, path)
	write(t, s, "e", testutil.Workload(400), 200)
	s.Close()
	zeroNewestMeta(t, path)
	s = mustOpen(t, path)
	var cells []projection.Cell
	if err := s.View(func(v *View) error {
		if c := v.Cursor(); c != 200 && c != 400 {
			t.Errorf("cursor %d, want one of the commits, 200 or 400", c)
		}
		cells = allCells(v, projection.CellFilter{})
		return nil
	}); err != nil {
		t.Fatalf("View of the commit before the last: %v", err)
	}
	if len(cells) == 0 {
		t.Fatal("no cells")
	}
}

// Both meta pages damaged under a running store: bbolt would panic in
// Begin holding its locks, and every later read, commit and Close would
// wait for ever. Each is damage instead, at once (metapage.go).
func TestNoValidMetaPageIsDamageNotAHang(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cp.db")
	s, _, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	write(t, s, "e", testutil.Workload(400), 200)
	zeroNewestMeta(t, path)
	zeroNewestMeta(t, path) // the other one, now the newest
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.View(func(*View) error { return nil }); !errors.Is(err, ErrDamaged) {
			t.Errorf("View with no valid meta page = %v, want ErrDamaged", err)
		}
		if _, _, err := s.Info(); !errors.Is(err, ErrDamaged) {
			t.Errorf("Info with no valid meta page = %v, want ErrDamaged", err)
		}
		if b, err := s.Batch(); err == nil {
			b.Meta().Cursor = 401
			err = b.Commit(time.Now())
			b.Close()
			if !errors.Is(err, ErrDamaged) {
				t.Errorf("Commit with no valid meta page = %v, want ErrDamaged", err)
			}
		} else if !errors.Is(err, ErrDamaged) {
			t.Errorf("Batch with no valid meta page = %v, want ErrDamaged", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a read, commit or Close of a file with no valid meta page hung")
	}
}
