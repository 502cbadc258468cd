package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"cellos-allinone/projection"
	"cellos-allinone/testutil"
)

// scrubAll runs a whole pass at full speed over s and fails on an error.
func scrubAll(t *testing.T, s *Store, opt ScrubOptions) ScrubReport {
	t.Helper()
	if opt.Budget == 0 {
		opt.Budget = 1
	}
	rep, err := s.Scrub(testutil.Ctx(t, 60*time.Second), opt)
	if err != nil {
		t.Fatalf("Scrub: %v (report %+v)", err, rep)
	}
	if !rep.Complete {
		t.Fatalf("Scrub: pass not complete: %+v", rep)
	}
	return rep
}

// keysIn counts the keys of every bucket of the file of s: what a pass
// must have checked.
func keysIn(t *testing.T, s *Store) uint64 {
	t.Helper()
	var n uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(_ []byte, b *bolt.Bucket) error {
			n += uint64(b.Stats().KeyN)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A healthy state, written at three commit cadences (with pruning, so
// that fpruned and ix-ended hold entries), scrubbed in steps of a few keys:
// nothing found, every key checked.
func TestScrubFindsNothingOnAHealthyState(t *testing.T) {
	const n = 3000
	events := testutil.Workload(n)
	for _, every := range []int{1, 97, n} {
		s := mustOpen(t, filepath.Join(t.TempDir(), "cp.db"))
		s.db.NoSync = true
		write(t, s, "e", events, every)
		b, err := s.Batch()
		if err != nil {
			t.Fatal(err)
		}
		b.SetFloor(n / 2)
		if err := b.Commit(time.Now()); err != nil {
			t.Fatal(err)
		}
		b.Close()
		var pruned projection.Pruned
		if err := s.View(func(v *View) error { pruned = v.Pruned(); return nil }); err != nil {
			t.Fatal(err)
		}
		if pruned.Cells == 0 {
			t.Fatalf("cadence %d: nothing pruned: %+v", every, pruned)
		}
		steps := 0
		rep := scrubAll(t, s, ScrubOptions{StepKeys: 13, OnStep: func(ScrubStep) { steps++ }})
		if rep.Damaged != 0 {
			t.Fatalf("cadence %d: a healthy state scrubbed: %d damage: %q", every, rep.Damaged, rep.Damage)
		}
		// Every key of every bucket, the aggregates once.
		if want := keysIn(t, s); rep.Checked != want {
			t.Errorf("cadence %d: checked %d keys, the file holds %d", every, rep.Checked, want)
		}
		if rep.Steps != steps || steps < int(rep.Checked)/13 {
			t.Errorf("cadence %d: %d steps (%d told) for %d keys in steps of 13", every, rep.Steps, steps, rep.Checked)
		}
		if rep.CPU <= 0 || rep.Busy <= 0 || rep.Duration < rep.Busy {
			t.Errorf("cadence %d: times of the pass: %+v", every, rep)
		}
	}
}

// The fold commits between the steps of a pass (each step is one commit):
// no damage is made up, whatever changed between two steps.
func TestScrubUnderLiveCommitsFindsNothing(t *testing.T) {
	const warm, more = 2000, 6000
	events := testutil.Workload(warm + more)
	s := mustOpen(t, filepath.Join(t.TempDir(), "cp.db"))
	s.db.NoSync = true
	write(t, s, "e", events[:warm], warm)
	b, err := s.Batch()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	stop := make(chan struct{})
	folded := make(chan int)
	go func() {
		var dec projection.Decoder
		i := warm
		defer func() { folded <- i }()
		for ; i < len(events); i++ {
			select {
			case <-stop:
				return
			default:
			}
			projection.Apply(b, dec.Decode(projection.Message{Seq: uint64(i + 1), Time: time.Unix(1700000000, 0), Payload: events[i].Payload}))
			if i%17 == 0 {
				b.SetFloor(uint64(i / 3))
				if err := b.Commit(time.Now()); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	// The cursor committed, as each step ends: a pass that sees it move
	// had commits between its steps.
	cursor := func() uint64 {
		cp, _, err := s.Info()
		if err != nil {
			t.Error(err)
		}
		return cp.Meta.Cursor
	}
	passes, moved := 0, 0
	for ; passes < 3; passes++ {
		var first, last uint64
		rep := scrubAll(t, s, ScrubOptions{StepKeys: 5, OnStep: func(ScrubStep) {
			if last = cursor(); first == 0 {
				first = last
			}
		}})
		if rep.Damaged != 0 {
			close(stop)
			<-folded
			t.Fatalf("pass %d under live commits: %d damage: %q", passes, rep.Damaged, rep.Damage)
		}
		if last != first {
			moved++
		}
	}
	close(stop)
	<-folded
	if moved == 0 {
		t.Fatalf("no commit between the steps of any of %d passes", passes)
	}
	t.Logf("%d of %d passes had commits between their steps", moved, passes)
}

// damageCase makes one kind of damage in the state at path (closed) and
// names what the scrub must say about it.
type damageCase struct {
	name string
	do   func(t *testing.T, path string) string // returns the path to scrub
	want string                                 // in one description
}

// A cell of the workload, its formation, and the tenant of both.
const (
	scrubCell      = "f-00003-c04"
	scrubFormation = "f-00003"
)

func update(t *testing.T, path string, fn func(tx *bolt.Tx) error) string {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
	return path
}

// copyOf copies the file at path to a new one.
func copyOf(t *testing.T, path string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "copy.db")
	if err := copyFile(path, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func cellOf(t *testing.T, path, id string) projection.Cell {
	t.Helper()
	s := mustOpen(t, path)
	defer s.Close()
	var c projection.Cell
	var ok bool
	if err := s.View(func(v *View) error { c, ok = v.Cell(id); return nil }); err != nil || !ok {
		t.Fatalf("cell %s: %v, found %v", id, err, ok)
	}
	return c
}

// Each kind of damage that no read meets unless it goes there — and some
// no read meets at all — is found by one pass, with the pass complete.
func TestScrubFindsWhatReadsDoNotMeet(t *testing.T) {
	path := sealedState(t, 600)
	c := cellOf(t, path, scrubCell)
	ck := keysOfCell(&c)
	cases := []damageCase{{
		name: "a record's key garbled out of order",
		do: func(t *testing.T, path string) string {
			return flipInFile(t, path, []byte(scrubCell), stored(t, path, bucketCells, []byte(scrubCell)), 0, 0x01)
		},
		want: "out of order",
	}, {
		name: "a record's value garbled",
		do: func(t *testing.T, path string) string {
			return flipInFile(t, path, []byte(scrubCell), stored(t, path, bucketCells, []byte(scrubCell)), len(scrubCell)+3, 0x08)
		},
		want: "checksum mismatch",
	}, {
		name: "an index entry without its record",
		do: func(t *testing.T, path string) string {
			return update(t, copyOf(t, path), func(tx *bolt.Tx) error {
				k := indexKey([]byte{ck.class}, "zz-no-such-cell")
				return tx.Bucket(bucketCellByClass).Put(k, indexValue(k))
			})
		},
		want: `no cell "zz-no-such-cell"`,
	}, {
		name: "a record missing one of its index entries",
		do: func(t *testing.T, path string) string {
			return update(t, copyOf(t, path), func(tx *bolt.Tx) error {
				return tx.Bucket(bucketCellByTenant).Delete(indexKey(group(ck.tenant, ck.class), scrubCell))
			})
		},
		want: "its index ix-cell-tenant key",
	}, {
		name: "an index entry the record files elsewhere",
		do: func(t *testing.T, path string) string {
			return update(t, copyOf(t, path), func(tx *bolt.Tx) error {
				k := indexKey([]byte{(ck.class + 1) % classCount}, scrubCell)
				return tx.Bucket(bucketCellByClass).Put(k, indexValue(k))
			})
		},
		want: "does not file it there",
	}, {
		name: "wrong cell counts of a formation",
		do: func(t *testing.T, path string) string {
			return update(t, copyOf(t, path), func(tx *bolt.Tx) error {
				b := tx.Bucket(bucketCounts)
				cur, err := decodeCounts(scrubFormation, b.Get([]byte(scrubFormation)))
				if err != nil {
					return err
				}
				cur.Total++
				cur.Running++
				return b.Put([]byte(scrubFormation), encodeCounts(scrubFormation, cur))
			})
		},
		want: "its cells count",
	}, {
		name: "a wrong tenant aggregate",
		do: func(t *testing.T, path string) string {
			return update(t, copyOf(t, path), func(tx *bolt.Tx) error {
				k := aggKey(c.TenantID)
				b := tx.Bucket(bucketAggregates)
				a, err := decodeAggregate(k, b.Get(k))
				if err != nil {
					return err
				}
				a.states[0]++
				a.outcomes[0]++
				return b.Put(k, a.encode(k))
			})
		},
		want: "its index keys count",
	}, {
		name: "a page bbolt's check rejects",
		do:   leakAPage,
		want: "unreachable unfreed",
	}, {
		// No cursor reads a page's overflow count; bbolt's check loops
		// over it (8 M map entries here, 3 s; with the top bit 2^31 and
		// the process killed for its memory).
		name: "a leaf page's overflow count garbled",
		do: func(t *testing.T, path string) string {
			out := copyOf(t, path)
			garbleLeafOverflow(t, out)
			return out
		},
		want: "overflow pages",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			damaged := tc.do(t, path)
			s := mustOpen(t, damaged)
			// A read that does not go there meets nothing.
			if err := s.View(func(v *View) error { v.Cell("f-00001-c00"); return nil }); err != nil {
				t.Fatalf("a read elsewhere: %v", err)
			}
			rep := scrubAll(t, s, ScrubOptions{StepKeys: 50})
			if rep.Damaged == 0 || !strings.Contains(strings.Join(rep.Damage, "\n"), tc.want) {
				t.Fatalf("scrub found %d damage %q, want one saying %q", rep.Damaged, rep.Damage, tc.want)
			}
			t.Logf("%d damage: %q", rep.Damaged, rep.Damage)
		})
	}
	// The undamaged file: nothing.
	s := mustOpen(t, path)
	if rep := scrubAll(t, s, ScrubOptions{}); rep.Damaged != 0 {
		t.Fatalf("the undamaged file: %q", rep.Damage)
	}
}

// garbleLeafOverflow sets the overflow count of a leaf page (before the cells' root), in
// the file at path, to 8 M.
func garbleLeafOverflow(t *testing.T, path string) {
	t.Helper()
	s := mustOpen(t, path)
	var leaf, pageSize int
	err := s.db.Update(func(tx *bolt.Tx) error { // Page needs the free list
		pageSize = s.db.Info().PageSize
		root := tx.Bucket(bucketCells).Root()
		pi, err := tx.Page(int(root))
		if err != nil || pi == nil || pi.Type != "branch" {
			return fmt.Errorf("the cells' root page %d: %+v, %v; want a branch", root, pi, err)
		}
		for id := int(root) - 1; leaf == 0; id-- {
			pi, err := tx.Page(id)
			if err != nil || pi == nil || id < 2 {
				return fmt.Errorf("no leaf page before %d: %v", root, err)
			}
			if pi.Type == "leaf" && pi.OverflowCount == 0 && pi.Count > 10 {
				leaf = id
			}
		}
		return errors.New("rolled back")
	})
	s.Close()
	if leaf == 0 {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte{0x80}, int64(leaf*pageSize+12+2)); err != nil {
		t.Fatal(err)
	}
}

// leakAPage drops the last page of the free list of the file at path (in
// a copy): a page neither reachable nor free, which only bbolt's check
// finds.
func leakAPage(t *testing.T, path string) string {
	t.Helper()
	out := copyOf(t, path)
	// Commits that free pages, so that the free list has some.
	s := mustOpen(t, out)
	for i := range 3 {
		err := s.db.Update(func(tx *bolt.Tx) error {
			return putMeta(tx, "e", projection.Meta{Cursor: uint64(600 + i)}, time.Now())
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// The meta page with the higher transaction id names the free list:
	// page header 16 bytes, then magic, version, page size, flags (4
	// each), the root bucket (16), the free list's page id, the high
	// water mark, the transaction id.
	pageSize := int(binary.LittleEndian.Uint32(data[16+8:]))
	meta := 0
	if binary.LittleEndian.Uint64(data[pageSize+64:]) > binary.LittleEndian.Uint64(data[64:]) {
		meta = pageSize
	}
	fl := int(binary.LittleEndian.Uint64(data[meta+48:])) * pageSize
	count := binary.LittleEndian.Uint16(data[fl+10:])
	if count == 0 || count == 0xffff {
		t.Fatalf("free list of %d pages: want a few", count)
	}
	binary.LittleEndian.PutUint16(data[fl+10:], count-1)
	if err := os.WriteFile(out, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return out
}

// The pause after each step keeps the pass's steps within the budget of
// its wall time.
func TestScrubKeepsToItsBudget(t *testing.T) {
	path := sealedState(t, 3000)
	s := mustOpen(t, path)
	const budget = DefaultScrubBudget
	rep := scrubAll(t, s, ScrubOptions{Budget: budget, StepKeys: 100})
	duty := float64(rep.Busy) / float64(rep.Duration)
	t.Logf("%d steps: busy %v of %v (%.3f), CPU %v", rep.Steps, rep.Busy, rep.Duration, duty, rep.CPU)
	if duty > budget*1.05 {
		t.Fatalf("the steps took %.3f of the pass's wall time, budget %.2f", duty, budget)
	}
	if duty < budget/4 {
		t.Errorf("the steps took %.3f of the pass's wall time: paused far more than the budget %.2f asks", duty, budget)
	}
	if rep.CPU > rep.Busy+rep.Busy/50 { // two clocks: a little slack
		t.Errorf("CPU %v above the steps' wall time %v", rep.CPU, rep.Busy)
	}
}

// The process's CPU time over a pass — measured outside the scrub, every
// thread and the garbage collector counted — keeps to the budget of the
// pass's wall time (with slack for the runtime's own work).
func TestScrubProcessCPUKeepsToItsBudget(t *testing.T) {
	s := mustOpen(t, sealedState(t, 10000))
	const budget = 0.1
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	c0 := cpu()
	rep := scrubAll(t, s, ScrubOptions{Budget: budget, StepKeys: 100})
	used := cpu() - c0
	allowed := time.Duration(float64(rep.Duration)*budget*1.5) + 10*time.Millisecond
	t.Logf("process CPU %v over a pass of %v (budget %.2f: %v, allowed %v); the pass's own count %v",
		used, rep.Duration, budget, time.Duration(float64(rep.Duration)*budget), allowed, rep.CPU)
	if used > allowed {
		t.Fatalf("the process used %v of CPU over a pass of %v at budget %.2f, above %v", used, rep.Duration, budget, allowed)
	}
}

// A pass goes on across a compaction's swap (the same commit, in another
// file) and ends with ErrFileChanged when its store opens another state
// (a repair's, a file started over); Hold's error ends it too.
func TestScrubAcrossFileChanges(t *testing.T) {
	s := mustOpen(t, sealedState(t, 600))
	steps := 0
	swapAt := func(n int, swap func() error) func(step func()) error {
		steps = 0
		return func(step func()) error {
			if steps++; steps == n {
				if err := swap(); err != nil {
					return err
				}
			}
			step()
			return nil
		}
	}
	rep, err := s.Scrub(context.Background(), ScrubOptions{Budget: 1, StepKeys: 10, Hold: swapAt(3, func() error {
		c, err := s.Compact()
		if err != nil {
			return err
		}
		return s.SwapIn(c, &noLock{})
	})})
	if err != nil || rep.Damaged != 0 || rep.Checked != keysIn(t, s) {
		t.Fatalf("Scrub across a compaction = %v, %d damage %q, %d keys of %d", err, rep.Damaged, rep.Damage, rep.Checked, keysIn(t, s))
	}
	_, err = s.Scrub(context.Background(), ScrubOptions{Budget: 1, StepKeys: 10, Hold: swapAt(3, func() error { return s.Renew("e2", false) })})
	if err != ErrFileChanged {
		t.Fatalf("Scrub across a state started over = %v, want ErrFileChanged", err)
	}
	rep, err = s.Scrub(testutil.Ctx(t, 10*time.Second), ScrubOptions{Budget: 1, Hold: func(func()) error { return context.Canceled }})
	if err != context.Canceled || rep.Complete {
		t.Fatalf("Scrub with Hold failing = %v, %+v", err, rep)
	}
}

type noLock struct{}

func (*noLock) Lock()   {}
func (*noLock) Unlock() {}

// A leaf page header whose overflow count has a high bit flipped: no read
// uses it, and bbolt's check would mark four billion pages reachable one
// by one (the corruption fuzzer found a scrub that never ended, its memory
// growing by gigabytes). The pass reports damage, and ends.
func TestScrubOfAGarbledOverflowCountEnds(t *testing.T) {
	path := sealedState(t, 3000)
	m, err := testutil.MapBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	leaf := -1
	for i, p := range m.Pages {
		if p.Class == testutil.PageLeaf && p.Bucket == string(bucketCellByClass) {
			leaf = i
			break
		}
	}
	if leaf < 0 {
		t.Fatalf("no ix-cell-class leaf: %s", m.Classes())
	}
	d := testutil.Damage{Off: int64(m.Pages[leaf].ID)*int64(m.PageSize) + 15, Bytes: []byte{0x40}}
	if err := d.Apply(path); err != nil {
		t.Fatal(err)
	}
	s := mustOpen(t, path)
	done := make(chan ScrubReport, 1)
	go func() {
		rep, _ := s.Scrub(context.Background(), ScrubOptions{Budget: 1})
		done <- rep
	}()
	select {
	case rep := <-done:
		if rep.Damaged == 0 {
			t.Fatalf("the pass found nothing: %+v", rep)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the pass over a garbled overflow count did not end")
	}
}

// The meta entries a commit writes are those the scrub knows
// (sealedMetaKeys, and the schema): a key added to one is added to both.
func TestScrubKnowsTheMetaKeysACommitWrites(t *testing.T) {
	s := mustOpen(t, sealedState(t, 50))
	var got []string
	if err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).ForEach(func(k, _ []byte) error { got = append(got, string(k)); return nil })
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{string(keySchema)}
	for _, k := range sealedMetaKeys {
		want = append(want, string(k))
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("meta keys written %q, the scrub's %q", got, want)
	}
	if rep := scrubAll(t, s, ScrubOptions{}); rep.Damaged != 0 {
		t.Fatalf("scrub: %q", rep.Damage)
	}
}

// Checking is told before bbolt's check (with the bound of its pages)
// runs and after it ended, also when the bound kept the check from
// running; SkipCheck reports it as damage without running it.
func TestScrubMarksBboltsCheck(t *testing.T) {
	path := sealedState(t, 300)
	garbled := copyOf(t, path)
	garbleLeafOverflow(t, garbled)
	for _, tc := range []struct {
		name, path string
		skip       bool
		want       []bool
		damage     string
	}{
		{"a sound state", path, false, []bool{true, false}, ""},
		{"a garbled overflow count", garbled, false, []bool{true, false}, "overflow pages"},
		{"the check skipped", path, true, nil, "did not end"},
	} {
		s := mustOpen(t, tc.path)
		var marks []bool
		rep := scrubAll(t, s, ScrubOptions{SkipCheck: tc.skip, Checking: func(on bool) { marks = append(marks, on) }})
		if !slices.Equal(marks, tc.want) || tc.damage == "" && rep.Damaged != 0 || tc.damage != "" && !strings.Contains(strings.Join(rep.Damage, "\n"), tc.damage) {
			t.Errorf("%s: marks %v, damage %q; want marks %v, damage saying %q", tc.name, marks, rep.Damage, tc.want, tc.damage)
		}
		s.Close()
	}
}

// The freelist page's header garbled under an open store (bbolt read the
// list at open; its check reads the header again and looped over its
// overflow count): the scrub's read of every header, and checkFreelist as
// before a write, find it, and the check does not run.
func TestScrubOfAGarbledFreelistHeaderEnds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cp.db")
	s := mustOpen(t, path)
	write(t, s, "e", testutil.Workload(600), 300)
	garbleFreelist(t, path)
	done := make(chan ScrubReport, 1)
	go func() {
		rep, _ := s.Scrub(context.Background(), ScrubOptions{Budget: 1})
		done <- rep
	}()
	select {
	case rep := <-done:
		if !strings.Contains(strings.Join(rep.Damage, "\n"), "freelist") {
			t.Fatalf("the pass found %q, want the freelist page", rep.Damage)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the pass over a garbled freelist header did not end")
	}
}
