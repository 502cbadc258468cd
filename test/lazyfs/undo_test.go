//go:build linux

package lazyfs

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// The undo records checked against a model, without FUSE: random writes,
// truncations, punched holes and syncs on a real file, then every possible
// cut of the result. A whole cut, and a torn cut at the start of the
// unsynced range, give back the synced content; a torn cut at boundary B
// keeps the current bytes below B and the synced ones from B on.
func TestUndoRecordsAgainstAModel(t *testing.T) {
	dir := t.TempDir()
	for seed := range uint64(300) {
		rnd := rand.New(rand.NewPCG(seed, 99))
		p := filepath.Join(dir, "f")
		synced := randBytes(rnd, int(pick(rnd, 5*PageSize)))
		if err := os.WriteFile(p, synced, 0o600); err != nil {
			t.Fatal(err)
		}
		fd, err := unix.Open(p, unix.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		cur := bytes.Clone(synced)
		var s fileState
		for range 1 + rnd.IntN(12) {
			switch op := rnd.IntN(10); {
			case op < 5: // write, maybe past the end
				off := pick(rnd, 7*PageSize)
				data := randBytes(rnd, 1+int(pick(rnd, 2*PageSize)))
				must(t, s.beforeWrite(fd, off, int64(len(data))))
				if _, err := unix.Pwrite(fd, data, off); err != nil {
					t.Fatal(err)
				}
				cur = grow(cur, int(off)+len(data))
				copy(cur[off:], data)
			case op < 7: // truncate, shorter or longer
				size := pick(rnd, 7*PageSize)
				must(t, s.beforeTruncate(fd, size))
				must(t, unix.Ftruncate(fd, size))
				if int(size) <= len(cur) {
					cur = cur[:size]
				} else {
					cur = grow(cur, int(size))
				}
			case op < 8: // punch a hole
				off := pick(rnd, 6*PageSize)
				n := 1 + pick(rnd, 2*PageSize)
				must(t, s.beforeZero(fd, off, n, true))
				must(t, unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n))
				for i := off; i < off+n && i < int64(len(cur)); i++ {
					cur[i] = 0
				}
			default: // fsync
				s.synced()
				synced = bytes.Clone(cur)
			}
		}
		unix.Close(fd)
		if !bytes.Equal(readAll(t, p), cur) {
			t.Fatalf("seed %d: the model is wrong", seed)
		}
		if !s.dirty || s.hi <= s.lo {
			if !bytes.Equal(cur, synced) {
				t.Fatalf("seed %d: changes since the sync but no unsynced range", seed)
			}
			continue
		}

		// Whole.
		got := cutCopy(t, p, &s, s.lo, true)
		if !bytes.Equal(got, synced) {
			t.Fatalf("seed %d: whole cut gives %d bytes, want the %d synced", seed, len(got), len(synced))
		}
		// Every torn boundary.
		for k := range s.boundaries() {
			b := s.lo + k*PageSize
			got := cutCopy(t, p, &s, b, false)
			size := max(int64(len(synced)), b)
			if b > int64(len(cur)) {
				size = int64(len(cur))
			}
			want := make([]byte, size)
			for i := range want {
				if int64(i) < b {
					want[i] = cur[i]
				} else {
					want[i] = synced[i]
				}
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("seed %d: torn cut at %d (range %d..%d, synced %d, current %d bytes): got %d bytes, differ from the expected %d",
					seed, b, s.lo, s.hi, len(synced), len(cur), len(got), len(want))
			}
			if k == 0 && !bytes.Equal(got, synced) {
				t.Fatalf("seed %d: a torn cut at the start of the range keeps something", seed)
			}
			if b == s.hi && !bytes.Equal(got, cur) {
				t.Fatalf("seed %d: a torn cut at the end of the range loses something", seed)
			}
		}
	}
}

// cutCopy reverts a copy of the file at p and returns what it then holds.
func cutCopy(t *testing.T, p string, s *fileState, keep int64, whole bool) []byte {
	t.Helper()
	c := p + ".cut"
	if err := os.WriteFile(c, readAll(t, p), 0o600); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(c, unix.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if _, err := s.revert(fd, keep, whole); err != nil {
		t.Fatal(err)
	}
	return readAll(t, c)
}

// pick returns a number in [0, n): often a page boundary or next to one,
// where off-by-one mistakes show.
func pick(rnd *rand.Rand, n int) int64 {
	if rnd.IntN(2) == 0 {
		return int64(rnd.IntN(n))
	}
	v := rnd.IntN(n/PageSize+1)*PageSize + rnd.IntN(3) - 1
	return int64(min(max(v, 0), n-1))
}

func randBytes(rnd *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(1 + rnd.IntN(255))
	}
	return b
}

func grow(b []byte, n int) []byte {
	if n > len(b) {
		b = append(b, make([]byte, n-len(b))...)
	}
	return b
}

func readAll(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
