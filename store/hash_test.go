package store

import (
	"path/filepath"
	"testing"

	"cellos-allinone/projection"
	"cellos-allinone/testutil"
)

// hashOf is the state hash of the last commit of s.
func hashOf(tb testing.TB, s *Store) projection.StateHash {
	tb.Helper()
	var h projection.StateHash
	err := s.View(func(v *View) (err error) {
		h, err = projection.Hash(v)
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// One log, committed at different cadences (every event, every 7, all at
// once): the same state hash, the fold's. (TestStoreEqualsMemoryFold
// compares the hash with the fold's for random logs, with pruning and
// restarts, through sameAs.)
func TestHashIndependentOfCommits(t *testing.T) {
	events := testutil.Workload(700)
	want, _ := projection.Hash(fold(events))
	if want.Formations == 0 || want.Cells == 0 || want.Cursor != 700 {
		t.Fatalf("fold hashed %+v, want a registry at cursor 700", want)
	}
	for _, every := range []int{1, 7, 700} {
		s := mustOpen(t, filepath.Join(t.TempDir(), "cp.db"))
		write(t, s, "e", events, every)
		if got := hashOf(t, s); got != want {
			t.Errorf("committed every %d events: %+v, want %+v", every, got, want)
		}
	}
}

// A compacted file holds the same commit: the same hash.
func TestHashIndependentOfCompaction(t *testing.T) {
	s, _ := bloated(t, 20_000, 3_000)
	want := hashOf(t, s)
	if w, _ := projection.Hash(fold(testutil.Workload(3_000))); w != want {
		t.Fatalf("bloated file hashes %+v, the fold %+v", want, w)
	}
	c, err := s.Compact()
	if err != nil {
		t.Fatal(err)
	}
	swapIn(t, s, c)
	if got := hashOf(t, s); got != want {
		t.Errorf("after the compaction: %+v, want %+v", got, want)
	}
}

// A record whose seal does not hold ends the walk with ErrDamaged: the
// hash never digests what the state cannot vouch for.
func TestHashOfADamagedStateIsDamage(t *testing.T) {
	path := sealedState(t, 600)
	for _, r := range []struct {
		bucket []byte
		id     string
	}{{bucketCells, "f-00003-c04"}, {bucketFormations, "f-00003"}} {
		key := []byte(r.id)
		val := stored(t, path, r.bucket, key)
		damaged := flipInFile(t, path, key, val, len(key)+len(val)/2, 0x10)
		mustBeDamaged(t, damaged, string(r.bucket), func(v *View) {
			if h, err := projection.Hash(v); err == nil {
				t.Errorf("%s %s damaged: Hash = %+v, nil", r.bucket, r.id, h)
			}
		})
	}
}

// BenchmarkHash is one state hash of the read benchmarks' state (20,000
// workload events); ns/op per entity is what a larger state costs per
// entity (docs/benchmarks.md has one at 1 M events).
func BenchmarkHash(b *testing.B) {
	s := benchState(b)
	var h projection.StateHash
	for b.Loop() {
		h = hashOf(b, s)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(h.Formations+h.Cells), "ns/entity")
}

// A panic of the function a walk calls is the caller's bug, not damage:
// it stays a panic (no repair is asked for a state that is fine).
func TestWalkPanicOfTheCallerIsNoDamage(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "cp.db"))
	write(t, s, "e", testutil.Workload(100), 10)
	for _, walk := range []func(v *View) error{
		func(v *View) error { return v.EachCell(func(projection.Cell) error { panic("caller bug") }) },
		func(v *View) error { return v.EachFormation(func(projection.Formation) error { panic("caller bug") }) },
	} {
		func() {
			defer func() {
				if r := recover(); r != "caller bug" {
					t.Fatalf("recovered %v, want the caller's panic", r)
				}
			}()
			err := s.View(walk)
			t.Fatalf("View returned %v instead of panicking", err)
		}()
	}
}
