package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"cellos-allinone/projection"
)

// A read-only open reads a good state as Open does, and leaves a file it
// cannot read exactly as it was: no aside file, no new one, the same
// bytes (Open, for the same file, moves it aside).
func TestOpenReadOnlyChangesNothing(t *testing.T) {
	path := sealedState(t, 300)
	s, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	var got projection.StateHash
	if err := s.View(func(v *View) (err error) { got, err = projection.Hash(v); return err }); err != nil {
		t.Fatal(err)
	}
	if _, found, err := s.Info(); err != nil || !found || got.Cursor != 300 {
		t.Fatalf("read-only: Info found %v, %v; hash %+v; want the checkpoint at 300", found, err, got)
	}
	s.Close()
	w := mustOpen(t, path)
	var want projection.StateHash
	if err := w.View(func(v *View) (err error) { want, err = projection.Hash(v); return err }); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if got != want {
		t.Fatalf("read-only hash %+v, read-write %+v", got, want)
	}

	k := []byte{0, 0, 0, 1}
	damaged := flipInFile(t, path, k, stored(t, path, bucketKeys, k), len(k), 0x02)
	for name, file := range map[string]string{"a damaged key table": damaged, "an empty file": filepath.Join(t.TempDir(), "empty.db")} {
		if name == "an empty file" {
			if err := os.WriteFile(file, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		before, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if s, err := OpenReadOnly(file); err == nil {
			s.Close()
			t.Fatalf("OpenReadOnly(%s) opened it", name)
		}
		after, err := os.ReadFile(file)
		if err != nil || !bytes.Equal(before, after) {
			t.Fatalf("OpenReadOnly(%s) changed the file (err %v)", name, err)
		}
		if entries, _ := os.ReadDir(filepath.Dir(file)); len(entries) != 1 {
			t.Fatalf("OpenReadOnly(%s) left %d files in its directory, want the file alone", name, len(entries))
		}
	}
}

// bbolt's locks: a read-only open takes a shared lock. While a server
// (Open: exclusive) holds the file it is ErrLocked; while it is held, a
// server's Open is ErrLocked; two read-only opens share the file.
func TestOpenReadOnlyLocks(t *testing.T) {
	path := sealedState(t, 50)
	rw := mustOpen(t, path)
	start := time.Now()
	if s, err := OpenReadOnly(path); !errors.Is(err, ErrLocked) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("OpenReadOnly of a file a server holds = %v, want ErrLocked", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("OpenReadOnly of a locked file took %s", d)
	}
	rw.Close()

	ro1, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro1.Close()
	ro2, err := OpenReadOnly(path)
	if err != nil {
		t.Fatalf("a second read-only open beside the first = %v, want it to share the file", err)
	}
	defer ro2.Close()
	if s, aside, err := Open(path); !errors.Is(err, ErrLocked) || aside != "" {
		if s != nil {
			s.Close()
		}
		t.Fatalf("Open while a read-only open holds the file = %v (aside %q), want ErrLocked and nothing moved", err, aside)
	}
}

// A read-only open counts the free pages as Open does (snapshot inspect
// shows them and says when a start would compact).
func TestOpenReadOnlyCountsFreePages(t *testing.T) {
	path := sealedState(t, 300)
	s := mustOpen(t, path)
	write(t, s, "e", nil, 1) // another commit: the pages the last one replaced are free
	want, err := s.FileStats()
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	if want.FreePages == 0 {
		t.Fatal("no free pages to count")
	}
	ro, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if got, err := ro.FileStats(); err != nil || got != want {
		t.Fatalf("read-only FileStats = %+v, %v; want %+v", got, err, want)
	}
}
