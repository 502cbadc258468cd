//go:build linux

package lazyfs_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	natsembed "cellos-allinone/embed"
	"cellos-allinone/test/lazyfs"
	"cellos-allinone/testutil"
)

const page = lazyfs.PageSize

// --- helpers ---------------------------------------------------------------

func writeFile(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustEqual(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: got %d bytes %q, want %d bytes %q", what, len(got), abbrev(got), len(want), abbrev(want))
	}
}

func abbrev(b []byte) string {
	if len(b) > 40 {
		return string(b[:20]) + "…" + string(b[len(b)-20:])
	}
	return string(b)
}

func mustNotExist(t *testing.T, p string) {
	t.Helper()
	if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s: want it gone, lstat says %v", p, err)
	}
}

func openFile(t *testing.T, p string, flags int) *os.File {
	t.Helper()
	f, err := os.OpenFile(p, flags, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func writeAt(t *testing.T, f *os.File, data []byte, off int64) {
	t.Helper()
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
}

func fsync(t *testing.T, f *os.File) {
	t.Helper()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

func closeFile(t *testing.T, f *os.File) {
	t.Helper()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// syncDir fsyncs a directory.
func syncDir(t *testing.T, dir string) {
	t.Helper()
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(); err != nil {
		t.Fatalf("fsync %s: %v", dir, err)
	}
	closeFile(t, d)
}

// cut cuts the mount and logs the report.
func cut(t *testing.T, m *lazyfs.FS, mode lazyfs.Mode, rnd *rand.Rand) lazyfs.Report {
	t.Helper()
	rep, err := m.Cut(mode, rnd)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(rep)
	return rep
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + (seed+byte(i*7))%26
	}
	return b
}

// --- 1. file data ------------------------------------------------------------

func TestUnsyncedWritesAreLost(t *testing.T) {
	backing := t.TempDir()
	synced := pattern(3*page+100, 1)
	writeFile(t, filepath.Join(backing, "f"), synced)
	m := lazyfs.Mount(t, backing)

	f := openFile(t, filepath.Join(m.Dir(), "f"), os.O_RDWR)
	writeAt(t, f, []byte("OVERWRITTEN"), 10)
	writeAt(t, f, []byte("in the middle"), 2*page-3) // straddles a page boundary
	writeAt(t, f, pattern(5*page, 9), 3*page+100)    // grows the file
	closeFile(t, f)
	// Through the mount (and in the backing directory) the writes are there.
	if got := readFile(t, filepath.Join(m.Dir(), "f")); len(got) != 8*page+100 || string(got[10:21]) != "OVERWRITTEN" {
		t.Fatalf("writes not visible through the mount: %d bytes", len(got))
	}

	rep := cut(t, m, lazyfs.Whole, nil)
	mustEqual(t, "after cut", readFile(t, filepath.Join(backing, "f")), synced)
	if len(rep.Files) != 1 || rep.Files[0].Path != "f" || rep.Files[0].SyncedSize != int64(len(synced)) ||
		rep.Files[0].SizeBefore != 8*page+100 || rep.Files[0].SizeAfter != int64(len(synced)) {
		t.Fatalf("report: %+v", rep.Files)
	}
	if rep.BytesDiscarded == 0 || len(rep.Removed) != 0 || len(rep.Restored) != 0 {
		t.Fatalf("report: %s", rep)
	}
	if _, err := os.Lstat(filepath.Join(backing, ".lazyfs-hold")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("holding area left behind: %v", err)
	}
}

func TestSyncedWritesSurvive(t *testing.T) {
	for _, how := range []string{"fsync", "fdatasync", "O_SYNC"} {
		t.Run(how, func(t *testing.T) {
			backing := t.TempDir()
			writeFile(t, filepath.Join(backing, "f"), pattern(page, 1))
			m := lazyfs.Mount(t, backing)

			flags := os.O_RDWR
			if how == "O_SYNC" {
				flags |= os.O_SYNC
			}
			f := openFile(t, filepath.Join(m.Dir(), "f"), flags)
			writeAt(t, f, []byte("first"), 100)
			writeAt(t, f, pattern(2*page, 5), page)
			switch how {
			case "fsync":
				fsync(t, f)
			case "fdatasync":
				if err := unix.Fdatasync(int(f.Fd())); err != nil {
					t.Fatal(err)
				}
			}
			want := readFile(t, filepath.Join(m.Dir(), "f"))
			closeFile(t, f)
			if how != "O_SYNC" {
				// Changes after the sync, through another descriptor.
				g := openFile(t, filepath.Join(m.Dir(), "f"), os.O_RDWR)
				writeAt(t, g, []byte("second"), 100)
				writeAt(t, g, pattern(page, 7), 3*page)
				closeFile(t, g)
			}

			cut(t, m, lazyfs.Whole, nil)
			mustEqual(t, "after cut", readFile(t, filepath.Join(backing, "f")), want)
		})
	}
}

// --- 2. new files need their directory synced --------------------------------

func TestNewFileNeedsDirectorySync(t *testing.T) {
	data := pattern(2*page+5, 3)
	newFile := func(t *testing.T, p string, syncData bool) {
		f := openFile(t, p, os.O_CREATE|os.O_EXCL|os.O_WRONLY)
		writeAt(t, f, data, 0)
		if syncData {
			fsync(t, f)
		}
		closeFile(t, f)
	}

	t.Run("data synced, directory not", func(t *testing.T) {
		backing := t.TempDir()
		m := lazyfs.Mount(t, backing)
		newFile(t, filepath.Join(m.Dir(), "new"), true)
		rep := cut(t, m, lazyfs.Whole, nil)
		mustNotExist(t, filepath.Join(backing, "new"))
		if !slices.Equal(rep.Removed, []string{"new"}) {
			t.Fatalf("removed: %q", rep.Removed)
		}
	})
	t.Run("data and directory synced", func(t *testing.T) {
		backing := t.TempDir()
		m := lazyfs.Mount(t, backing)
		newFile(t, filepath.Join(m.Dir(), "new"), true)
		syncDir(t, m.Dir())
		cut(t, m, lazyfs.Whole, nil)
		mustEqual(t, "new", readFile(t, filepath.Join(backing, "new")), data)
	})
	t.Run("directory synced, data not", func(t *testing.T) {
		backing := t.TempDir()
		m := lazyfs.Mount(t, backing)
		newFile(t, filepath.Join(m.Dir(), "new"), false)
		syncDir(t, m.Dir())
		cut(t, m, lazyfs.Whole, nil)
		mustEqual(t, "new", readFile(t, filepath.Join(backing, "new")), nil)
	})
	t.Run("new directory, its parent not synced", func(t *testing.T) {
		backing := t.TempDir()
		m := lazyfs.Mount(t, backing)
		if err := os.Mkdir(filepath.Join(m.Dir(), "d"), 0o755); err != nil {
			t.Fatal(err)
		}
		newFile(t, filepath.Join(m.Dir(), "d", "new"), true)
		syncDir(t, filepath.Join(m.Dir(), "d"))
		cut(t, m, lazyfs.Whole, nil)
		mustNotExist(t, filepath.Join(backing, "d"))
	})
	t.Run("new directory, every level synced", func(t *testing.T) {
		backing := t.TempDir()
		m := lazyfs.Mount(t, backing)
		if err := os.MkdirAll(filepath.Join(m.Dir(), "d", "e"), 0o750); err != nil {
			t.Fatal(err)
		}
		newFile(t, filepath.Join(m.Dir(), "d", "e", "new"), true)
		syncDir(t, filepath.Join(m.Dir(), "d", "e"))
		syncDir(t, filepath.Join(m.Dir(), "d"))
		syncDir(t, m.Dir())
		cut(t, m, lazyfs.Whole, nil)
		mustEqual(t, "d/e/new", readFile(t, filepath.Join(backing, "d", "e", "new")), data)
		st, err := os.Stat(filepath.Join(backing, "d", "e"))
		if err != nil || st.Mode().Perm() != 0o750 {
			t.Fatalf("d/e: %v, %v", st.Mode(), err)
		}
	})
}

// --- 3. rename ---------------------------------------------------------------

func TestRename(t *testing.T) {
	setup := func(t *testing.T) (string, *lazyfs.FS) {
		backing := t.TempDir()
		writeFile(t, filepath.Join(backing, "a"), []byte("A"))
		writeFile(t, filepath.Join(backing, "b"), []byte("B"))
		writeFile(t, filepath.Join(backing, "d1", "x"), []byte("X"))
		if err := os.Mkdir(filepath.Join(backing, "d2"), 0o755); err != nil {
			t.Fatal(err)
		}
		return backing, lazyfs.Mount(t, backing)
	}
	rename := func(t *testing.T, m *lazyfs.FS, from, to string) {
		if err := os.Rename(filepath.Join(m.Dir(), from), filepath.Join(m.Dir(), to)); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("over an existing file, not synced", func(t *testing.T) {
		backing, m := setup(t)
		rename(t, m, "a", "b")
		mustEqual(t, "b through the mount", readFile(t, filepath.Join(m.Dir(), "b")), []byte("A"))
		rep := cut(t, m, lazyfs.Whole, nil)
		mustEqual(t, "a", readFile(t, filepath.Join(backing, "a")), []byte("A"))
		mustEqual(t, "b", readFile(t, filepath.Join(backing, "b")), []byte("B"))
		if !slices.Equal(rep.Restored, []string{"a"}) {
			t.Fatalf("restored: %q", rep.Restored)
		}
	})
	t.Run("over an existing file, synced", func(t *testing.T) {
		backing, m := setup(t)
		rename(t, m, "a", "b")
		syncDir(t, m.Dir())
		cut(t, m, lazyfs.Whole, nil)
		mustNotExist(t, filepath.Join(backing, "a"))
		mustEqual(t, "b", readFile(t, filepath.Join(backing, "b")), []byte("A"))
	})
	t.Run("to a new name, not synced", func(t *testing.T) {
		backing, m := setup(t)
		rename(t, m, "a", "c")
		cut(t, m, lazyfs.Whole, nil)
		mustEqual(t, "a", readFile(t, filepath.Join(backing, "a")), []byte("A"))
		mustNotExist(t, filepath.Join(backing, "c"))
	})
	t.Run("between directories, both synced", func(t *testing.T) {
		backing, m := setup(t)
		rename(t, m, "d1/x", "d2/y")
		syncDir(t, filepath.Join(m.Dir(), "d1"))
		syncDir(t, filepath.Join(m.Dir(), "d2"))
		cut(t, m, lazyfs.Whole, nil)
		mustNotExist(t, filepath.Join(backing, "d1", "x"))
		mustEqual(t, "d2/y", readFile(t, filepath.Join(backing, "d2", "y")), []byte("X"))
	})
	t.Run("between directories, neither synced", func(t *testing.T) {
		backing, m := setup(t)
		rename(t, m, "d1/x", "d2/y")
		syncDir(t, m.Dir()) // the root is not where the entries changed
		cut(t, m, lazyfs.Whole, nil)
		mustEqual(t, "d1/x", readFile(t, filepath.Join(backing, "d1", "x")), []byte("X"))
		mustNotExist(t, filepath.Join(backing, "d2", "y"))
	})
	t.Run("between directories, only the target synced", func(t *testing.T) {
		backing, m := setup(t)
		rename(t, m, "d1/x", "d2/y")
		syncDir(t, filepath.Join(m.Dir(), "d2"))
		cut(t, m, lazyfs.Whole, nil)
		mustEqual(t, "d1/x", readFile(t, filepath.Join(backing, "d1", "x")), []byte("X"))
		mustEqual(t, "d2/y", readFile(t, filepath.Join(backing, "d2", "y")), []byte("X"))
		a, err1 := os.Stat(filepath.Join(backing, "d1", "x"))
		b, err2 := os.Stat(filepath.Join(backing, "d2", "y"))
		if err1 != nil || err2 != nil || !os.SameFile(a, b) {
			t.Fatalf("d1/x and d2/y are not one file: %v %v", err1, err2)
		}
	})
	t.Run("between directories, only the source synced", func(t *testing.T) {
		backing, m := setup(t)
		rename(t, m, "d1/x", "d2/y")
		syncDir(t, filepath.Join(m.Dir(), "d1"))
		cut(t, m, lazyfs.Whole, nil)
		mustNotExist(t, filepath.Join(backing, "d1", "x"))
		mustNotExist(t, filepath.Join(backing, "d2", "y"))
	})
	t.Run("the write-then-rename pattern", func(t *testing.T) {
		// What nats-server does for meta.inf: write a temporary file,
		// fsync it, rename it over the old one, fsync the directory.
		backing, m := setup(t)
		tmp := filepath.Join(m.Dir(), "b.tmp")
		f := openFile(t, tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC)
		writeAt(t, f, []byte("new B"), 0)
		fsync(t, f)
		closeFile(t, f)
		rename(t, m, "b.tmp", "b")
		syncDir(t, m.Dir())
		cut(t, m, lazyfs.Whole, nil)
		mustEqual(t, "b", readFile(t, filepath.Join(backing, "b")), []byte("new B"))
		mustNotExist(t, filepath.Join(backing, "b.tmp"))
	})
}

// --- 4. unlink and rmdir -----------------------------------------------------

func TestUnlinkComesBack(t *testing.T) {
	setup := func(t *testing.T) (string, *lazyfs.FS, []byte) {
		backing := t.TempDir()
		writeFile(t, filepath.Join(backing, "f"), pattern(3*page, 1))
		m := lazyfs.Mount(t, backing)
		// New synced content, then an unsynced change, then unlink.
		f := openFile(t, filepath.Join(m.Dir(), "f"), os.O_WRONLY|os.O_TRUNC)
		synced := pattern(page+17, 2)
		writeAt(t, f, synced, 0)
		fsync(t, f)
		writeAt(t, f, pattern(4*page, 3), 0)
		closeFile(t, f)
		if err := os.Remove(filepath.Join(m.Dir(), "f")); err != nil {
			t.Fatal(err)
		}
		mustNotExist(t, filepath.Join(m.Dir(), "f"))
		return backing, m, synced
	}

	t.Run("directory not synced", func(t *testing.T) {
		backing, m, synced := setup(t)
		rep := cut(t, m, lazyfs.Whole, nil)
		mustEqual(t, "f", readFile(t, filepath.Join(backing, "f")), synced)
		if !slices.Equal(rep.Restored, []string{"f"}) {
			t.Fatalf("restored: %q", rep.Restored)
		}
	})
	t.Run("directory synced", func(t *testing.T) {
		backing, m, _ := setup(t)
		syncDir(t, m.Dir())
		cut(t, m, lazyfs.Whole, nil)
		mustNotExist(t, filepath.Join(backing, "f"))
	})
	t.Run("rmdir", func(t *testing.T) {
		backing := t.TempDir()
		writeFile(t, filepath.Join(backing, "d", "g"), []byte("G"))
		writeFile(t, filepath.Join(backing, "e", "keep"), []byte("K"))
		m := lazyfs.Mount(t, backing)
		if err := os.RemoveAll(filepath.Join(m.Dir(), "d")); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(m.Dir(), "e")); !errors.Is(err, unix.ENOTEMPTY) && !errors.Is(err, unix.EEXIST) {
			t.Fatalf("rmdir of a non-empty directory: %v", err)
		}
		cut(t, m, lazyfs.Whole, nil)
		mustEqual(t, "d/g", readFile(t, filepath.Join(backing, "d", "g")), []byte("G"))
		mustEqual(t, "e/keep", readFile(t, filepath.Join(backing, "e", "keep")), []byte("K"))
	})
	t.Run("rename over, then unlink, then recreate", func(t *testing.T) {
		backing := t.TempDir()
		writeFile(t, filepath.Join(backing, "a"), []byte("A"))
		writeFile(t, filepath.Join(backing, "b"), []byte("B"))
		m := lazyfs.Mount(t, backing)
		if err := os.Rename(filepath.Join(m.Dir(), "a"), filepath.Join(m.Dir(), "b")); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(m.Dir(), "b")); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(m.Dir(), "a"), []byte("new"))
		cut(t, m, lazyfs.Whole, nil)
		mustEqual(t, "a", readFile(t, filepath.Join(backing, "a")), []byte("A"))
		mustEqual(t, "b", readFile(t, filepath.Join(backing, "b")), []byte("B"))
	})
}

// --- 5. torn writes ----------------------------------------------------------

// tornRound writes base, then n page-sized pages after it through the mount
// (fsyncing after the first synced of them), and cuts torn with seed. It
// returns how many of the n pages survived.
func tornRound(t *testing.T, seed uint64, n, synced int) int {
	t.Helper()
	backing := t.TempDir()
	base := bytes.Repeat([]byte{'S'}, 2*page)
	writeFile(t, filepath.Join(backing, "log"), base)
	pages := make([][]byte, n)
	for i := range pages {
		pages[i] = bytes.Repeat([]byte{byte('a' + i)}, page)
	}
	m := lazyfs.Mount(t, backing)
	f := openFile(t, filepath.Join(m.Dir(), "log"), os.O_WRONLY|os.O_APPEND)
	for i, p := range pages {
		if _, err := f.Write(p); err != nil {
			t.Fatal(err)
		}
		if i+1 == synced {
			fsync(t, f)
		}
	}
	closeFile(t, f)
	rep := cut(t, m, lazyfs.Torn, rand.New(rand.NewPCG(seed, 42)))

	got := readFile(t, filepath.Join(backing, "log"))
	if len(got)%page != 0 || len(got) < len(base) {
		t.Fatalf("seed %d: size %d is not base plus whole pages", seed, len(got))
	}
	k := len(got)/page - 2
	want := slices.Concat(append([][]byte{base}, pages[:min(k, n)]...)...)
	if k > n || !bytes.Equal(got, want) {
		t.Fatalf("seed %d: the file is not the base plus a prefix of the writes (%d pages)", seed, k)
	}
	if k < synced {
		t.Fatalf("seed %d: %d pages left, but %d were synced", seed, k, synced)
	}
	if synced < n && (len(rep.Files) != 1 || rep.Files[0].KeptUpTo != int64(len(got)) || rep.Files[0].SizeAfter != int64(len(got))) {
		t.Fatalf("seed %d: report %+v does not match the file's %d bytes", seed, rep.Files, len(got))
	}
	return k
}

func TestTornKeepsAPagePrefix(t *testing.T) {
	const n, synced = 12, 4
	kept := map[int]bool{}
	first := map[uint64]int{}
	for seed := range uint64(6) {
		k := tornRound(t, seed, n, synced)
		first[seed] = k
		kept[k] = true
	}
	// The same seed tears the same way.
	for _, seed := range []uint64{0, 3} {
		if k := tornRound(t, seed, n, synced); k != first[seed] {
			t.Fatalf("seed %d kept %d pages, then %d", seed, first[seed], k)
		}
	}
	// The seeds do tear at different places.
	if len(kept) < 2 {
		t.Fatalf("every seed kept the same number of pages: %v", kept)
	}
	t.Logf("pages kept by seed: %v", first)
}

// --- 6. truncation -----------------------------------------------------------

func TestTruncationIsReverted(t *testing.T) {
	orig := pattern(3*page+123, 4)
	setup := func(t *testing.T) (string, *lazyfs.FS) {
		backing := t.TempDir()
		writeFile(t, filepath.Join(backing, "f"), orig)
		return backing, lazyfs.Mount(t, backing)
	}
	for _, tc := range []struct {
		name string
		do   func(t *testing.T, p string)
	}{
		{"ftruncate shorter", func(t *testing.T, p string) {
			f := openFile(t, p, os.O_RDWR)
			if err := f.Truncate(3); err != nil {
				t.Fatal(err)
			}
			writeAt(t, f, []byte("grown again"), page+5) // leaves a hole
			closeFile(t, f)
		}},
		{"ftruncate longer", func(t *testing.T, p string) {
			f := openFile(t, p, os.O_RDWR)
			if err := f.Truncate(10 * page); err != nil {
				t.Fatal(err)
			}
			closeFile(t, f)
		}},
		{"truncate by path", func(t *testing.T, p string) {
			if err := os.Truncate(p, page); err != nil {
				t.Fatal(err)
			}
		}},
		{"O_TRUNC", func(t *testing.T, p string) {
			f := openFile(t, p, os.O_WRONLY|os.O_TRUNC)
			writeAt(t, f, []byte("new"), 0)
			closeFile(t, f)
		}},
		{"O_CREATE|O_TRUNC", func(t *testing.T, p string) {
			f := openFile(t, p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
			closeFile(t, f)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			backing, m := setup(t)
			tc.do(t, filepath.Join(m.Dir(), "f"))
			if bytes.Equal(readFile(t, filepath.Join(m.Dir(), "f")), orig) {
				t.Fatal("the change is not visible through the mount")
			}
			cut(t, m, lazyfs.Whole, nil)
			mustEqual(t, "f", readFile(t, filepath.Join(backing, "f")), orig)
		})
	}
	t.Run("ftruncate synced", func(t *testing.T) {
		backing, m := setup(t)
		f := openFile(t, filepath.Join(m.Dir(), "f"), os.O_RDWR)
		if err := f.Truncate(page + 1); err != nil {
			t.Fatal(err)
		}
		fsync(t, f)
		writeAt(t, f, []byte("later"), 0)
		closeFile(t, f)
		cut(t, m, lazyfs.Whole, nil)
		mustEqual(t, "f", readFile(t, filepath.Join(backing, "f")), orig[:page+1])
	})
}

// --- the mount itself --------------------------------------------------------

func TestMountHidesHoldingAreaAndSupportsFlock(t *testing.T) {
	backing := t.TempDir()
	writeFile(t, filepath.Join(backing, "f"), []byte("x"))
	m := lazyfs.Mount(t, backing)
	if err := os.Remove(filepath.Join(m.Dir(), "f")); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(m.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Fatalf("the mount lists %v", ents)
	}
	if _, err := os.Stat(filepath.Join(m.Dir(), ".lazyfs-hold")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("holding area visible: %v", err)
	}
	if err := os.Mkdir(filepath.Join(m.Dir(), ".lazyfs-hold"), 0o755); err == nil {
		t.Fatal("created the holding area's name")
	}

	p := filepath.Join(m.Dir(), "lock")
	a := openFile(t, p, os.O_CREATE|os.O_RDWR)
	defer a.Close()
	b := openFile(t, p, os.O_RDWR)
	defer b.Close()
	if err := unix.Flock(int(a.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatalf("flock: %v", err)
	}
	if err := unix.Flock(int(b.Fd()), unix.LOCK_EX|unix.LOCK_NB); !errors.Is(err, unix.EWOULDBLOCK) {
		t.Fatalf("second exclusive flock: %v, want EWOULDBLOCK", err)
	}
	if err := unix.Flock(int(a.Fd()), unix.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(b.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatalf("flock after unlock: %v", err)
	}
}

func TestCloseKeepsEverything(t *testing.T) {
	backing := t.TempDir()
	m := lazyfs.Mount(t, backing)
	writeFile(t, filepath.Join(m.Dir(), "unsynced"), []byte("kept by a clean shutdown"))
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "unsynced", readFile(t, filepath.Join(backing, "unsynced")), []byte("kept by a clean shutdown"))
	ents, err := os.ReadDir(backing)
	if err != nil || len(ents) != 1 {
		t.Fatalf("backing holds %v, %v", ents, err)
	}
	if _, err := m.Cut(lazyfs.Whole, nil); err == nil {
		t.Fatal("Cut after Close succeeded")
	}
}

// Several goroutines write, fsync and rename concurrently; after the cut
// every file holds exactly what it held at its last fsync.
func TestConcurrentWriters(t *testing.T) {
	backing := t.TempDir()
	const workers, rounds = 4, 40
	for w := range workers {
		writeFile(t, filepath.Join(backing, fmt.Sprintf("w%d", w)), nil)
	}
	m := lazyfs.Mount(t, backing)
	want := make([][]byte, workers)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(w), 7))
			p := filepath.Join(m.Dir(), fmt.Sprintf("w%d", w))
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			if err != nil {
				errs <- err
				return
			}
			defer f.Close()
			var cur []byte
			for r := range rounds {
				off := rnd.IntN(3 * page)
				data := pattern(1+rnd.IntN(2*page), byte(r+w))
				if _, err := f.WriteAt(data, int64(off)); err != nil {
					errs <- err
					return
				}
				if off+len(data) > len(cur) {
					cur = append(cur, make([]byte, off+len(data)-len(cur))...)
				}
				copy(cur[off:], data)
				if rnd.IntN(4) == 0 {
					size := rnd.IntN(len(cur) + 1)
					if err := f.Truncate(int64(size)); err != nil {
						errs <- err
						return
					}
					cur = cur[:size]
				}
				if rnd.IntN(3) == 0 {
					if err := f.Sync(); err != nil {
						errs <- err
						return
					}
					want[w] = slices.Clone(cur)
				}
				// Directory churn alongside.
				tmp := filepath.Join(m.Dir(), fmt.Sprintf("tmp%d-%d", w, r))
				if err := os.WriteFile(tmp, data[:1], 0o644); err != nil {
					errs <- err
					return
				}
				if err := os.Rename(tmp, tmp+".done"); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	rep := cut(t, m, lazyfs.Whole, nil)
	for w := range workers {
		mustEqual(t, fmt.Sprintf("w%d", w), readFile(t, filepath.Join(backing, fmt.Sprintf("w%d", w))), want[w])
	}
	ents, err := os.ReadDir(backing)
	if err != nil || len(ents) != workers {
		t.Fatalf("backing holds %d entries (%v), want the %d files", len(ents), err, workers)
	}
	if len(rep.Removed) != workers*rounds {
		t.Fatalf("removed %d paths, want %d", len(rep.Removed), workers*rounds)
	}
}

// --- 7. real programs --------------------------------------------------------

// The bbolt database runs in a child process (this test binary again, see
// TestMain): bbolt reads its file through mmap, and a page fault on a
// mapping of this process's own FUSE mount can deadlock the Go runtime
// (its stop-the-world waits for the faulting thread, which waits for the
// FUSE server goroutines it has stopped).
const (
	childDB    = "LAZYFS_TEST_BBOLT_DB"    // path of the database
	childRange = "LAZYFS_TEST_BBOLT_RANGE" // "from to hang"
)

func TestMain(m *testing.M) {
	if db := os.Getenv(childDB); db != "" {
		if err := bboltChild(db, os.Getenv(childRange)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func boltKey(i int) []byte   { return binary.BigEndian.AppendUint32(nil, uint32(i)) }
func boltValue(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 100+i*37) }

// bboltChild opens the database, fsyncs its directory (bbolt does not, and
// a file whose directory entry is not durable is lost at a power cut),
// commits keys [from, to) one transaction each, then closes the database,
// or (hang) says "committed" and waits to be killed.
func bboltChild(path, spec string) error {
	var from, to int
	var hang bool
	if _, err := fmt.Sscan(spec, &from, &to, &hang); err != nil {
		return fmt.Errorf("bad %s %q: %w", childRange, spec, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		return err
	}
	d.Close()
	for i := from; i < to; i++ {
		err := db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("b"))
			if err != nil {
				return err
			}
			return b.Put(boltKey(i), boltValue(i))
		})
		if err != nil {
			return err
		}
	}
	if hang {
		fmt.Println("committed")
		time.Sleep(time.Minute) // killed long before
		return errors.New("not killed")
	}
	return db.Close()
}

// runBboltChild starts the child on path and, if hang, waits until it has
// committed.
func runBboltChild(t *testing.T, path string, from, to int, hang bool) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childDB+"="+path, fmt.Sprintf("%s=%d %d %t", childRange, from, to, hang))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if !hang {
		if err := cmd.Run(); err != nil {
			t.Fatalf("bbolt child: %v\n%s", err, stderr.Bytes())
		}
		return cmd
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(out).ReadString('\n')
		line <- l
	}()
	select {
	case l := <-line:
		if l != "committed\n" {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("bbolt child said %q\n%s", l, stderr.Bytes())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("bbolt child did not commit in time\n%s", stderr.Bytes())
	}
	return cmd
}

// bbolt fsyncs every commit: nothing committed may be lost, whole or torn,
// also when the process is killed with the database open.
func TestBboltCommitsSurvive(t *testing.T) {
	backing := t.TempDir()
	const first, second = 20, 15
	check := func(t *testing.T, n int) {
		t.Helper()
		db, err := bolt.Open(filepath.Join(backing, "db"), 0o600, &bolt.Options{Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		err = db.View(func(tx *bolt.Tx) error {
			for err := range tx.Check() {
				return err
			}
			b := tx.Bucket([]byte("b"))
			if b == nil {
				return errors.New("bucket lost")
			}
			if got := b.Stats().KeyN; got != n {
				return fmt.Errorf("%d keys, want %d", got, n)
			}
			for i := range n {
				if !bytes.Equal(b.Get(boltKey(i)), boltValue(i)) {
					return fmt.Errorf("key %d lost or wrong", i)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	// Round 1: create, commit, close, cut.
	m := lazyfs.Mount(t, backing)
	runBboltChild(t, filepath.Join(m.Dir(), "db"), 0, first, false)
	cut(t, m, lazyfs.Whole, nil)
	check(t, first)

	// Round 2: commit more, kill the process with the database open, cut
	// torn.
	m = lazyfs.Mount(t, backing)
	child := runBboltChild(t, filepath.Join(m.Dir(), "db"), first, first+second, true)
	// The child holds bbolt's flock on the file.
	f := openFile(t, filepath.Join(m.Dir(), "db"), os.O_RDONLY)
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); !errors.Is(err, unix.EWOULDBLOCK) {
		t.Fatalf("flock of the open database: %v, want EWOULDBLOCK", err)
	}
	closeFile(t, f)
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	cut(t, m, lazyfs.Torn, rand.New(rand.NewPCG(1, 2)))
	check(t, first+second)
}

// nats-server with SyncAlways acknowledges a message after fsyncing it. Each
// round starts the server on the mount and publishes; the first round ends
// with a clean shutdown (nats-server never fsyncs the directories it creates
// for a new stream, so a stream created in the round that is cut is lost
// whole), the later ones with a cut while the server runs (the FUSE
// connection is aborted under it, so nothing it does after reaches the
// disk). Then the server starts on the backing directory: every message
// acknowledged in any round must be there.
func TestNatsAckedMessagesSurvive(t *testing.T) {
	backing := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	type msg struct {
		seq  uint64
		subj string
		data string
	}
	var acked []msg
	round := func(t *testing.T, dir string, create bool, n int, end func()) {
		t.Helper()
		srv, err := natsembed.Start(natsembed.Options{DataDir: dir, Addr: "127.0.0.1:0", SyncAlways: true})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Shutdown()
		nc, err := srv.Connect()
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		if create {
			if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, Storage: jetstream.FileStorage}); err != nil {
				t.Fatal(err)
			}
		}
		for range n {
			i := len(acked)
			m := msg{subj: fmt.Sprintf("s.%d", i), data: fmt.Sprintf("message %d %s", i, pattern(i*13%300, byte(i)))}
			ack, err := js.Publish(ctx, m.subj, []byte(m.data))
			if err != nil {
				t.Fatal(err)
			}
			m.seq = ack.Sequence
			acked = append(acked, m)
		}
		end() // the deferred Shutdown comes after: a cut server's files fail
	}

	m := lazyfs.Mount(t, backing)
	round(t, m.Dir(), true, 10, func() {})
	if err := m.Close(); err != nil { // a clean shutdown of the machine
		t.Fatal(err)
	}
	m = lazyfs.Mount(t, backing)
	round(t, m.Dir(), false, 40, func() {
		if rep := cut(t, m, lazyfs.Whole, nil); !rep.Aborted {
			t.Fatal("the server's files were open, yet the cut did not abort the connection")
		}
	})
	m = lazyfs.Mount(t, backing)
	round(t, m.Dir(), false, 40, func() { cut(t, m, lazyfs.Torn, rand.New(rand.NewPCG(3, 4))) })

	// Reading what survived: no SyncAlways needed.
	srv, nc := testutil.MustStartNATS(t, backing)
	defer srv.Shutdown()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, "S")
	if err != nil {
		t.Fatalf("stream lost: %v", err)
	}
	for _, want := range acked {
		got, err := s.GetMsg(ctx, want.seq)
		if err != nil {
			t.Fatalf("acked message seq %d lost: %v", want.seq, err)
		}
		if got.Subject != want.subj || string(got.Data) != want.data {
			t.Fatalf("seq %d: %s %q, want %s %q", want.seq, got.Subject, got.Data, want.subj, want.data)
		}
	}
	if info, err := s.Info(ctx); err != nil || info.State.Msgs != uint64(len(acked)) {
		t.Fatalf("stream holds %v messages (%v), want %d", info.State.Msgs, err, len(acked))
	}
}
