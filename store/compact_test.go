package store

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cellos-allinone/testutil"
)

// bloated is a store whose file held a fold of big events, then was reset
// and holds a fold of small: most of its pages are free. It returns the
// store and the dump its last commit serves.
func bloated(tb testing.TB, big, small int) (*Store, string) {
	tb.Helper()
	return bloatedAt(tb, filepath.Join(tb.TempDir(), "cp.db"), big, small)
}

func bloatedAt(tb testing.TB, path string, big, small int) (*Store, string) {
	tb.Helper()
	s := mustOpen(tb, path)
	write(tb, s, "e", testutil.Workload(big), 500)
	write(tb, s, "e", testutil.Workload(small), 500)
	return s, dumpOf(tb, s)
}

// swapIn swaps c in as the projector does, under a lock readers hold.
func swapIn(tb testing.TB, s, c *Store) {
	tb.Helper()
	var mu sync.Mutex
	if err := s.SwapIn(c, &mu); err != nil {
		tb.Fatal(err)
	}
}

func dumpOf(tb testing.TB, s *Store) string {
	tb.Helper()
	var d string
	if err := s.View(func(v *View) error { d = string(v.Dump()); return nil }); err != nil {
		tb.Fatal(err)
	}
	return d
}

func TestCompactShrinksTheFileAndKeepsTheState(t *testing.T) {
	s, want := bloated(t, 100_000, 5_000)
	before, err := s.FileStats()
	if err != nil {
		t.Fatal(err)
	}
	if before.FreeBytes < 4*before.LiveBytes || before.LiveBytes <= 0 {
		t.Fatalf("FileStats() = %+v before, want most of the file free", before)
	}
	if before.PageSize <= 0 || before.LivePages*before.PageSize != before.LiveBytes || before.FreePages*before.PageSize != before.FreeBytes {
		t.Fatalf("FileStats() = %+v, want live and free bytes to be their pages × the page size", before)
	}
	cpBefore, _, _ := s.Info()
	c, err := s.Compact()
	if err != nil {
		t.Fatal(err)
	}
	// Until the swap the served file is untouched.
	if got, _ := s.FileStats(); got.FileBytes != before.FileBytes {
		t.Fatalf("served file size %d after Compact, want %d until the swap", got.FileBytes, before.FileBytes)
	}
	swapIn(t, s, c)
	if err := c.Close(); err != nil { // used up by the swap: nothing to close
		t.Fatalf("Close() of the copy swapped in = %v", err)
	}
	after, err := s.FileStats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("before %+v, after %+v", before, after)
	// The file is bbolt's tail of allocSize ahead of the live pages.
	if after.FileBytes > before.LiveBytes+before.LiveBytes/4+allocSize || after.FileBytes > before.FileBytes-before.FreeBytes/2 {
		t.Fatalf("FileStats() = %+v after compaction, want about the %d live bytes of before", after, before.LiveBytes)
	}
	if got := dumpOf(t, s); got != want {
		t.Fatalf("state after compaction differs:\n%.600s\nwant\n%.600s", got, want)
	}
	if cp, _, err := s.Info(); err != nil || cp.Meta.Cursor != cpBefore.Meta.Cursor || !cp.At.Equal(cpBefore.At) || cp.Epoch != cpBefore.Epoch {
		t.Fatalf("Info() = %+v, %v after compaction, want %+v", cp, err, cpBefore)
	}
	if err := s.View(func(v *View) error {
		if d := v.Check(5); len(d) > 0 {
			t.Fatalf("Check() after compaction = %q", d)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Path() + CompactSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the compacted copy is still beside the state file: %v", err)
	}
	// The compacted file takes commits as any other.
	more := testutil.Workload(3_000)
	write(t, s, "e", more, 700)
	sameAs(t, s, fold(more))
}

// A compaction that is not swapped in (a crash before the swap, a copy
// found stale) leaves the served file as it was, and the file it left is
// no state: Open of the served file serves the same, RemoveLeftovers
// removes it.
func TestCompactWithoutSwapLeavesTheStateFile(t *testing.T) {
	s, want := bloated(t, 5_000, 1_000)
	path := s.Path()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Compact()
	if err != nil {
		t.Fatal(err)
	}
	// "Crash": both files closed as they are.
	c.Close()
	s.Close()
	if now, err := os.ReadFile(path); err != nil || string(now) != string(raw) {
		t.Fatalf("the served file changed during a compaction (%v)", err)
	}
	if _, err := os.Stat(path + CompactSuffix); err != nil {
		t.Fatalf("the copy is not there: %v", err)
	}
	s2 := mustOpen(t, path)
	if got := dumpOf(t, s2); got != want {
		t.Fatal("the state file reopened after a compaction without swap serves another state")
	}
	if err := RemoveLeftovers(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + CompactSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("RemoveLeftovers left the copy: %v", err)
	}
	if err := RemoveLeftovers(path); err != nil {
		t.Fatalf("RemoveLeftovers without leftovers = %v", err)
	}
}

// A commit made while the copy is written is not in it: the copy is
// refused, the served file keeps the commit.
func TestCompactRefusesACopyCommittedMeanwhile(t *testing.T) {
	s, _ := bloated(t, 3_000, 300)
	b, err := s.Batch()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var once sync.Once
	compactHook = func() {
		once.Do(func() {
			b.Meta().Cursor++
			if err := b.Commit(time.Now()); err != nil {
				t.Error(err)
			}
		})
	}
	defer func() { compactHook = nil }()
	if c, err := s.Compact(); err == nil {
		c.Close()
		t.Fatal("Compact() of a file committed meanwhile succeeded")
	}
	if _, err := os.Stat(s.Path() + CompactSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused copy is left beside the state file: %v", err)
	}
}

// Reads of the served file go on during a compaction and through the
// swap, each of one commit.
func TestReadsDuringCompaction(t *testing.T) {
	s, want := bloated(t, 10_000, 2_000)
	var mu sync.RWMutex // the served lock of the projector
	var stop atomic.Bool
	var reads atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for !stop.Load() {
				mu.RLock()
				got := dumpOf(t, s)
				mu.RUnlock()
				if got != want {
					t.Error("a read during the compaction saw another state")
					return
				}
				reads.Add(1)
			}
		})
	}
	c, err := s.Compact()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SwapIn(c, &mu); err != nil {
		t.Fatal(err)
	}
	n := reads.Load()
	testutil.WaitFor(t, 10*time.Second, "a read after the swap", func() bool { return reads.Load() > n })
	stop.Store(true)
	wg.Wait()
}

// A swap whose rename fails changes nothing: the state file is served as
// it was, the copy stays open for the caller to drop.
func TestSwapInThatCannotRenameLeavesTheStateFile(t *testing.T) {
	s, want := bloated(t, 2_000, 200)
	before, _ := s.FileStats()
	c, err := s.Compact()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := os.Remove(c.Path()); err != nil { // the rename's source is gone
		t.Fatal(err)
	}
	var mu sync.Mutex
	if err := s.SwapIn(c, &mu); !errors.Is(err, ErrNotReplaced) {
		t.Fatalf("SwapIn() of a copy whose file is gone = %v, want ErrNotReplaced", err)
	}
	if !mu.TryLock() {
		t.Fatal("SwapIn left the readers' lock held")
	}
	mu.Unlock()
	if got, _ := s.FileStats(); got != before || dumpOf(t, s) != want {
		t.Fatalf("after a failed swap FileStats() = %+v, want %+v and the same state", got, before)
	}
	if err := s.SwapIn(s, &mu); !errors.Is(err, ErrNotReplaced) {
		t.Fatalf("SwapIn() of a store that is no copy = %v, want ErrNotReplaced", err)
	}
}

func TestCompactRefusesWithoutRoom(t *testing.T) {
	dir := t.TempDir()
	if err := checkRoom(dir, 1<<62); !errors.Is(err, ErrNoRoom) {
		t.Fatalf("checkRoom(%s, 4 EiB) = %v, want ErrNoRoom", dir, err)
	}
	if err := checkRoom(dir, 0); err != nil {
		t.Fatalf("checkRoom(%s, 0) = %v", dir, err)
	}
}

// BenchmarkCompact measures a compaction of a state of CELLOS_BENCH_EVENTS
// workload events (default 200,000) and its swap, and reports both per
// 100 MiB of live state: the copy is how long the fold pauses, the swap
// how long readers wait.
func BenchmarkCompact(b *testing.B) {
	n := 200_000
	if v := os.Getenv("CELLOS_BENCH_EVENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	s := mustOpen(b, filepath.Join(b.TempDir(), "cp.db"))
	write(b, s, "e", testutil.Workload(n), 10_000)
	st, err := s.FileStats()
	if err != nil {
		b.Fatal(err)
	}
	var copyTime, swapTime time.Duration
	for b.Loop() {
		start := time.Now()
		c, err := s.Compact()
		if err != nil {
			b.Fatal(err)
		}
		mid := time.Now()
		swapIn(b, s, c)
		copyTime += mid.Sub(start)
		swapTime += time.Since(mid)
	}
	per100 := float64(100<<20) / float64(st.LiveBytes)
	b.ReportMetric(float64(st.LiveBytes)/(1<<20), "live-MiB")
	b.ReportMetric(copyTime.Seconds()*1e3/float64(b.N)*per100, "copy-ms/100MiB")
	b.ReportMetric(swapTime.Seconds()*1e3/float64(b.N), "swap-ms")
	b.Logf("%d events: %+v", n, st)
}
