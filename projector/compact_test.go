package projector

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"cellos-allinone/store"
	"cellos-allinone/testutil"
)

// bloat leaves mib MiB of free pages in the state file at path: a bucket
// of that much is written and deleted (as a prune or a reset would leave
// them). The state the file serves does not change.
func bloat(t *testing.T, path string, mib int) {
	t.Helper()
	junk := []byte("junk")
	mutateBolt(t, path, func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket(junk)
		if err != nil {
			return err
		}
		v := bytes.Repeat([]byte{'j'}, 4000) // one page each
		for i := range mib * 256 {
			if err := b.Put(fmt.Appendf(nil, "%08d", i), v); err != nil {
				return err
			}
		}
		return nil
	})
	mutateBolt(t, path, func(tx *bolt.Tx) error { return tx.DeleteBucket(junk) })
}

// bloatedState is a stream of n events and a state file checkpointed at
// its end, then left with 16 MiB of free pages: one a compaction takes.
func bloatedState(t *testing.T, n int) *bootEnv {
	t.Helper()
	e := &bootEnv{}
	e.dir, e.nc, e.log = startNATS(t, 0)
	e.publish(t, n)
	e.checkpoint(t)
	bloat(t, e.checkpointPath(), 16)
	return e
}

func (r *rig) status() Status {
	r.t.Helper()
	st, err := r.p.Status(testutil.Ctx(r.t, 5*time.Second), "test")
	if err != nil {
		r.t.Fatal(err)
	}
	return st
}

// A state file whose pages are mostly free is compacted at boot, before
// the replay: the file shrinks, the checkpoint is used as it was.
func TestCompactionAtBoot(t *testing.T) {
	e := bloatedState(t, 300)
	before, _ := os.Stat(e.checkpointPath())
	e.publish(t, 400) // a replay after the compaction

	r := startProjector(t, e.dir, e.nc, Config{CompactMinFree: 1 << 20})
	if b := r.p.BootInfo(); b.CheckpointCursor != 300 || b.Rebuild != "" || b.Replayed != 100 {
		t.Fatalf("BootInfo() = %+v, want the checkpoint at 300 used and 100 events replayed", b)
	}
	st := r.status()
	c := st.StateFile.LastCompaction
	if st.StateFile.Compactions != 1 || c == nil || c.Trigger != CompactAtBoot || c.Error != "" ||
		c.BytesBefore != before.Size() || c.BytesAfter > c.BytesBefore/2 {
		t.Fatalf("stateFile = %+v, last compaction %+v; want one at boot that halved the %d bytes", st.StateFile, c, before.Size())
	}
	if st.StateFile.FreeBytes > 1<<20 || st.StateFile.LiveBytes == 0 {
		t.Fatalf("stateFile after the compaction = %+v, want live pages and hardly any free", st.StateFile.FileStats)
	}
	r.assertEqualsFold()
}

// What a crash during a compaction leaves beside the state file (its
// copy, never swapped in) is removed at the next boot, and the state file
// is used as it was.
func TestCompactionLeftoverIsRemovedAtBoot(t *testing.T) {
	e := &bootEnv{}
	e.dir, e.nc, e.log = startNATS(t, 0)
	e.publish(t, 100)
	e.checkpoint(t)
	leftover := e.checkpointPath() + store.CompactSuffix
	if err := os.WriteFile(leftover, []byte("half a copy"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := startProjector(t, e.dir, e.nc, Config{})
	if b := r.p.BootInfo(); b.CheckpointCursor != 100 || b.Rebuild != "" || b.Replayed != 0 {
		t.Fatalf("BootInfo() = %+v, want the checkpoint at 100 used", b)
	}
	if _, err := os.Stat(leftover); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the leftover copy is still there: %v", err)
	}
	r.assertEqualsFold()
}

// A state file that fills up with free pages while serving is compacted
// between two commits: the file shrinks, the fold pauses while readers go
// on — during the copy every answer is of one commit, and the swap holds
// new reads for a moment only — and the registry answers the same after
// as before, then takes commits as before.
func TestCompactionWhileServing(t *testing.T) {
	const n = 2000
	dir, nc, _ := startNATS(t, 0)
	var swapping atomic.Bool
	var reads atomic.Int64
	var slowest atomic.Int64 // the longest Read, in ns
	readsDuringCopy := make(chan int64, 8)
	var beforeSwap struct {
		dump   string
		cursor uint64
		file   int64
	}
	var r *rig
	r = startProjector(t, dir, nc, Config{
		// No compaction until the file is bloated (below).
		CheckpointInterval: 20 * time.Millisecond, CompactMinFree: 1 << 40, compactSpacing: time.Millisecond,
		beforeSwap: func() {
			// The copy is written, the fold paused: readers still answer,
			// from the served file, which is as big as before.
			from := reads.Load()
			ok := testutil.Poll(10*time.Second, time.Millisecond, func() bool { return reads.Load() >= from+3 })
			readsDuringCopy <- reads.Load() - from
			if !ok {
				return
			}
			_ = r.p.Read(func(v View) { beforeSwap.dump, beforeSwap.cursor = string(v.Dump()), v.Cursor() })
			if fi, err := os.Stat(r.p.served.Path()); err == nil {
				beforeSwap.file = fi.Size()
			}
			swapping.Store(true)
		},
	})

	// Readers check every answer for one commit: at cursor c the cells of
	// the first n events exist, and the next c-n summaries replaced
	// their big blobs with small ones.
	var wg sync.WaitGroup
	var stop atomic.Bool
	for range 2 {
		wg.Go(func() {
			for !stop.Load() {
				var cursor uint64
				var cells, small int
				began := time.Now()
				err := r.p.Read(func(v View) {
					cursor = v.Cursor()
					for _, c := range v.Reader.(*store.View).Entities().Cells {
						cells++
						if len(c) < 2000 { // its JSON, without a 4 kB blob
							small++
						}
					}
				})
				took := time.Since(began).Nanoseconds()
				for s := slowest.Load(); took > s && !slowest.CompareAndSwap(s, took); s = slowest.Load() {
				}
				if err != nil {
					t.Errorf("a read during the compaction: %v", err)
					return
				}
				if cells != int(min(cursor, n)) || small != int(max(cursor, n)-n) {
					t.Errorf("an answer at cursor %d holds %d cells, %d of them replaced: not one commit", cursor, cells, small)
					return
				}
				reads.Add(1)
			}
		})
	}
	// And a reader that asks for the cursor only: how long it waits is
	// how long a read was held, with the compaction as without.
	var probeMax [2]atomic.Int64 // ns: before the compaction is wanted, from then on
	var probePhase atomic.Int32
	wg.Go(func() {
		for !stop.Load() {
			began := time.Now()
			if err := r.p.Read(func(v View) { _ = v.Cursor() }); err != nil {
				t.Errorf("a read during the compaction: %v", err)
				return
			}
			took := time.Since(began).Nanoseconds()
			m := &probeMax[probePhase.Load()]
			for s := m.Load(); took > s && !m.CompareAndSwap(s, took); s = m.Load() {
			}
		}
	})
	defer func() { stop.Store(true); wg.Wait() }()

	seqs := testutil.MustPublish(t, nc, bigCells("c", n)...)
	r.waitCursor(seqs[len(seqs)-1])
	var small []testutil.Event
	for i := range n {
		small = append(small, testutil.Cell(fmt.Sprintf("c-%03d", i), "summary", map[string]any{"passed": i}))
	}
	seqs = testutil.MustPublish(t, nc, small...)
	last := seqs[len(seqs)-1]
	r.waitCursor(last)
	// How much of the file the churn leaves free depends on how the
	// replacements fell into commits (a third to two thirds here); the
	// pages in use are also left sparse, which the compaction packs.
	churned := r.status().StateFile
	if churned.LastCompaction != nil || churned.FreeBytes < 2<<20 || churned.FreeBytes*4 < churned.LiveBytes {
		t.Fatalf("stateFile after the churn = %+v, want a quarter of the pages free and no compaction yet", churned)
	}
	// Now thresholds the file's free pages exceed (set on the apply
	// goroutine, which reads them).
	probePhase.Store(1)
	r.p.runOnApply(func() { r.p.cfg.CompactMinFree, r.p.cfg.CompactFreeRatio = 1<<20, 0.2 })

	var st Status
	testutil.WaitFor(t, 60*time.Second, "a compaction of the bloated file", func() bool {
		st = r.status()
		return st.StateFile.LastCompaction != nil && swapping.Load()
	})
	c := st.StateFile.LastCompaction
	if c.Trigger != CompactOnline || c.Error != "" || c.BytesAfter > c.BytesBefore/2 || c.FreeBytesBefore <= 1<<20 || st.StateFile.Compactions != 1 {
		t.Fatalf("last compaction %+v (%d done), want one while serving that halved the file", c, st.StateFile.Compactions)
	}
	fi, err := os.Stat(r.p.served.Path())
	if err != nil {
		t.Fatal(err)
	}
	if beforeSwap.file == 0 || fi.Size() > beforeSwap.file/2 {
		t.Fatalf("the state file takes %d bytes after the compaction, %d before the swap: want it halved", fi.Size(), beforeSwap.file)
	}
	if st.StateFile.CompactingSince != nil || st.StateFile.FreeBytes > st.StateFile.LiveBytes {
		t.Fatalf("stateFile after the compaction = %+v, want none under way and few free pages", st.StateFile)
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("after the churn %+v, after the compaction %+v", churned.FileStats, st.StateFile.FileStats)
	t.Logf("compaction of %d bytes to %d (%d free before): %d ms, swap %.3f ms (the rename %v); %d reads while the fold was paused; "+
		"the slowest read %v, the slowest cursor read %v before the compaction, %v during it",
		c.BytesBefore, c.BytesAfter, c.FreeBytesBefore, c.DurationMs, c.SwapMs, c.swapHeld, <-readsDuringCopy,
		time.Duration(slowest.Load()), time.Duration(probeMax[0].Load()), time.Duration(probeMax[1].Load()))
	// New reads wait for the reads in flight to end, then for a rename
	// only: a moment, even on a loaded machine. The reads of every cell
	// above bound the first part.
	if c.swapHeld > 100*time.Millisecond || time.Duration(probeMax[1].Load()) > time.Duration(slowest.Load())+200*time.Millisecond {
		t.Errorf("the swap held the lock %v; a cursor read waited up to %v (the slowest read %v): want a moment",
			c.swapHeld, time.Duration(probeMax[1].Load()), time.Duration(slowest.Load()))
	}
	var after string
	_ = r.p.Read(func(v View) { after = string(v.Dump()) })
	if beforeSwap.cursor != last || after != beforeSwap.dump {
		t.Fatalf("the registry at cursor %d differs after the swap from before it (at %d)", last, beforeSwap.cursor)
	}
	// The compacted file takes commits.
	seqs = testutil.MustPublish(t, nc, testutil.Workload(20)...)
	r.waitCursor(seqs[len(seqs)-1])
	r.assertEqualsFold()
}

// A negative CompactMinFree never compacts, however free the file.
func TestCompactionDisabled(t *testing.T) {
	e := bloatedState(t, 100)
	before, _ := os.Stat(e.checkpointPath())
	r := startProjector(t, e.dir, e.nc, Config{CompactMinFree: -1, compactSpacing: time.Millisecond, CheckpointInterval: 10 * time.Millisecond})
	e.publish(t, 120)
	r.waitCursor(120)
	st := r.status()
	if st.StateFile.LastCompaction != nil || st.StateFile.FreeBytes < 16<<20 || st.StateFile.FileBytes < before.Size() {
		t.Fatalf("stateFile = %+v, last compaction %+v; want the file as it was, never compacted", st.StateFile, st.StateFile.LastCompaction)
	}
}

// A compaction the disk has no room for is not tried: the file is served
// as it was, the reason is in the status.
func TestCompactionWithoutRoom(t *testing.T) {
	cpDir := testutil.SmallDisk(t, "", "24m")
	dir, nc, _ := startNATS(t, 0)
	e := &bootEnv{dir: cpDir, nc: nc}
	e.log = openLog(t, nc)
	e.publish(t, 200)
	st0, _, err := store.Open(e.checkpointPath())
	if err != nil {
		t.Fatal(err)
	}
	runProjector(t, dir, nc, st0, Config{}).stop()
	bloat(t, e.checkpointPath(), 16)

	st1, _, err := store.Open(e.checkpointPath())
	if err != nil {
		t.Fatal(err)
	}
	r := runProjector(t, dir, nc, st1, Config{CompactMinFree: 1 << 20})
	r.waitReady()
	c := r.status().StateFile.LastCompaction
	if c == nil || !strings.Contains(c.Error, "not enough free space") || c.BytesAfter != c.BytesBefore {
		t.Fatalf("last compaction = %+v, want one refused for lack of room", c)
	}
	e.publish(t, 220)
	r.assertEqualsFold()
}
