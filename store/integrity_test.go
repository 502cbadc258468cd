package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	bolt "go.etcd.io/bbolt"

	"cellos-allinone/projection"
	"cellos-allinone/testutil"
)

// The damage these tests do is the one a failing flash medium does: bytes
// of a page change while the page's header survives, so bbolt reads the
// page as usual. A seal (seal.go) must catch it on the read.

// sealedState writes a fold of n workload events into a fresh state file
// and returns its path, closed. One commit, so that few stale copies of
// pages remain in the file.
func sealedState(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cp.db")
	s := mustOpen(t, path)
	write(t, s, "e", testutil.Workload(n), n)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// stored reads the value bucket holds under key in the file at path.
func stored(t *testing.T, path string, bucket, key []byte) []byte {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var val []byte
	if err := db.View(func(tx *bolt.Tx) error {
		val = bytes.Clone(tx.Bucket(bucket).Get(key))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if val == nil {
		t.Fatalf("no %s %q in %s", bucket, key, path)
	}
	return val
}

// flipInFile copies the file at path to a new one whose key/value element
// (a bbolt leaf page holds a key and its value next to each other) has the
// bits of mask flipped at offset at of key+val, wherever in the file it is
// (a stale copy in a freed page included), and returns the copy's path.
func flipInFile(t *testing.T, path string, key, val []byte, at int, mask byte) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	elem := append(bytes.Clone(key), val...)
	n := 0
	for i := 0; ; {
		j := bytes.Index(data[i:], elem)
		if j < 0 {
			break
		}
		data[i+j+at] ^= mask
		i += j + len(elem)
		n++
	}
	if n == 0 {
		t.Fatalf("%q not found in the file", elem)
	}
	out := filepath.Join(t.TempDir(), "damaged.db")
	if err := os.WriteFile(out, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return out
}

// mustBeDamaged runs read over the state at path and fails unless the
// View returns ErrDamaged.
func mustBeDamaged(t *testing.T, path, what string, read func(v *View)) {
	t.Helper()
	s := mustOpen(t, path)
	defer s.Close()
	err := s.View(func(v *View) error { read(v); return nil })
	if !errors.Is(err, ErrDamaged) {
		t.Errorf("%s: View = %v, want ErrDamaged", what, err)
	}
}

// allCells pages through Cells with filter fl, as a client follows next.
func allCells(v *View, fl projection.CellFilter) []projection.Cell {
	var out []projection.Cell
	after := ""
	for range 10_000 {
		page, next := v.Cells(fl, projection.Page{After: after, Limit: 7})
		out = append(out, page...)
		if next == "" {
			break
		}
		after = next
	}
	return out
}

func allFormations(v *View, fl projection.FormationFilter) []projection.Formation {
	var out []projection.Formation
	after := ""
	for range 10_000 {
		page, next := v.Formations(fl, projection.Page{After: after, Limit: 3})
		out = append(out, page...)
		if next == "" {
			break
		}
		after = next
	}
	return out
}

// Every bit of a cell's stored key and value, flipped on disk: a read of
// the cell, a list of all cells, a list of its formation's cells — each
// one fails with ErrDamaged, none answers a wrong or a missing cell.
func TestFlippedCellRecordIsDamageNeverAnAnswer(t *testing.T) {
	path := sealedState(t, 600)
	const id, formation = "f-00003-c04", "f-00003"
	key := []byte(id)
	val := stored(t, path, bucketCells, key)
	for at := range len(key) + len(val) {
		damaged := flipInFile(t, path, key, val, at, 1<<(at%8))
		// A flipped key sits where the search for id ends: the point
		// read finds it there and does not call the cell absent.
		mustBeDamaged(t, damaged, "Cell", func(v *View) {
			if c, ok := v.Cell(id); ok {
				t.Errorf("byte %d flipped: Cell served %+v", at, c)
			}
		})
		mustBeDamaged(t, damaged, "all cells", func(v *View) { allCells(v, projection.CellFilter{}) })
		mustBeDamaged(t, damaged, "cells of the formation", func(v *View) {
			allCells(v, projection.CellFilter{Formation: formation})
		})
		if t.Failed() {
			t.Fatalf("byte %d of %d flipped", at, len(key)+len(val))
		}
	}
}

// An index key whose id is garbled is damage, not a listed id: the page
// does not skip the cell nor list a made-up one, and next is never made
// of the garbled bytes.
func TestFlippedIndexKeyIsDamage(t *testing.T) {
	path := sealedState(t, 600)
	const id, formation = "f-00003-c04", "f-00003"
	var c projection.Cell
	{
		s := mustOpen(t, path)
		if err := s.View(func(v *View) error { c, _ = v.Cell(id); return nil }); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	k := keysOfCell(&c)
	for _, e := range cellIndexes(id, k) {
		val := stored(t, path, []byte(e.bucket), e.key)
		for _, at := range []int{0, len(e.key) - 3, len(e.key) - 1, len(e.key)} {
			damaged := flipInFile(t, path, e.key, val, at, 0x20)
			mustBeDamaged(t, damaged, e.bucket, func(v *View) {
				switch e.bucket {
				case string(bucketCellByFormation):
					allCells(v, projection.CellFilter{Formation: formation})
				case string(bucketCellByTenant):
					allCells(v, projection.CellFilter{Tenant: c.TenantID})
				default:
					allCells(v, projection.CellFilter{State: c.State})
				}
			})
		}
	}
}

// A formation's record, counts and its tenant's aggregate, damaged.
func TestFlippedFormationCountsAndAggregateAreDamage(t *testing.T) {
	path := sealedState(t, 600)
	const id = "f-00004"
	val := stored(t, path, bucketFormations, []byte(id))
	// A key byte (read as absent unless the point read looks), then value
	// bytes.
	for _, at := range []int{1, len(id) - 1, len(id), len(id) + 2, len(id) + 5, len(id) + len(val) - 1} {
		damaged := flipInFile(t, path, []byte(id), val, at, 0x04)
		mustBeDamaged(t, damaged, "Formation", func(v *View) { v.Formation(id) })
		mustBeDamaged(t, damaged, "all formations", func(v *View) { allFormations(v, projection.FormationFilter{}) })
	}
	counts := stored(t, path, bucketCounts, []byte(id))
	damaged := flipInFile(t, path, []byte(id), counts, len(id), 0x01)
	mustBeDamaged(t, damaged, "Formation with damaged counts", func(v *View) { v.Formation(id) })

	agg := aggKey("tenant-1")
	rec := stored(t, path, bucketAggregates, agg)
	damaged = flipInFile(t, path, agg, rec, len(agg)+1, 0x01)
	mustBeDamaged(t, damaged, "Summary", func(v *View) { v.Summary("") })
	mustBeDamaged(t, damaged, "Size", func(v *View) { v.Size() })
}

// A record moved under another id (its bytes intact, its key another
// entity's) is caught by its seal, which covers the key.
func TestRecordUnderAnotherIDIsDamage(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "cp.db"))
	write(t, s, "e", testutil.Workload(600), 600)
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCells)
		return b.Put([]byte("f-00003-c05"), bytes.Clone(b.Get([]byte("f-00003-c04"))))
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.View(func(v *View) error {
		if c, ok := v.Cell("f-00003-c05"); ok {
			t.Errorf("served %+v", c)
		}
		return nil
	})
	if !errors.Is(err, ErrDamaged) {
		t.Fatalf("View = %v, want ErrDamaged", err)
	}
}

// An index entry whose seal holds but whose record is missing, or files
// the entity elsewhere, is damage: a list does not skip it.
func TestIndexEntryWithoutItsRecordIsDamage(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "cp.db"))
	write(t, s, "e", testutil.Workload(600), 600)
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCells).Delete([]byte("f-00003-c04"))
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, fl := range []projection.CellFilter{
		{Formation: "f-00003"}, {Formation: "f-00003", Tenant: "tenant-0"}, {Tenant: "tenant-0"}, {State: projection.CellDestroyed},
	} {
		err := s.View(func(v *View) error { allCells(v, fl); return nil })
		if !errors.Is(err, ErrDamaged) {
			t.Errorf("Cells(%+v) = %v, want ErrDamaged", fl, err)
		}
	}
}

// The meta entries and the key table are sealed too.
func TestFlippedMetaIsDamage(t *testing.T) {
	path := sealedState(t, 300)
	pos := stored(t, path, bucketMeta, keyPosition)
	damaged := flipInFile(t, path, keyPosition, pos, len(keyPosition)+len(pos)-1, 0x01)
	s := mustOpen(t, damaged)
	if _, _, err := s.Info(); !errors.Is(err, ErrDamaged) {
		t.Errorf("Info with a damaged position = %v, want ErrDamaged", err)
	}
	s.Close()

	k := []byte{0, 0, 0, 1}
	name := stored(t, path, bucketKeys, k)
	damaged = flipInFile(t, path, k, name, len(k), 0x02)
	s, aside, err := Open(damaged)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if aside == "" {
		t.Errorf("a state whose key table is damaged was opened as it is")
	}
}

// A garbled key of a formation's counts or of a cell, read as absent: the
// read of the formation does not serve zero counts (the fuzzer found it: a
// formation listed with no cells), and the fold, loading the cell to apply
// an event to it, does not start it afresh (it would write a new record,
// sealed, over what the log says): both are damage.
func TestGarbledKeyReadAsAbsentIsDamage(t *testing.T) {
	path := sealedState(t, 600)
	const id = "f-00004"
	counts := stored(t, path, bucketCounts, []byte(id))
	damaged := flipInFile(t, path, []byte(id), counts, len(id)-1, 0x04)
	mustBeDamaged(t, damaged, "Formation with a garbled counts key", func(v *View) {
		if f, ok := v.Formation(id); ok {
			t.Errorf("served %+v", f)
		}
	})
	mustBeDamaged(t, damaged, "all formations", func(v *View) { allFormations(v, projection.FormationFilter{}) })

	const cell = "f-00004-c03"
	rec := stored(t, path, bucketCells, []byte(cell))
	damaged = flipInFile(t, path, []byte(cell), rec, len(cell)-1, 0x02)
	s := mustOpen(t, damaged)
	b, err := s.Batch()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	func() {
		defer func() {
			r := recover()
			if err, ok := r.(error); !ok || !errors.Is(err, ErrDamaged) {
				t.Errorf("LoadCell of a cell whose key is garbled: recovered %v, want an ErrDamaged panic", r)
			}
		}()
		c, ok := b.LoadCell(cell)
		t.Errorf("LoadCell of a cell whose key is garbled = %+v, %v", c, ok)
	}()
}

// A key of a branch page garbled upwards: bbolt's search for where a
// range starts goes one leaf early, finds nothing there and steps to the
// next leaf, returning its first key — below where the range starts. The
// range must not read as empty (the fuzzer found a formation served
// without its failed cells): each list of each formation's cells is the
// undamaged one or damage.
func TestBranchKeyGarbledUpwardsIsDamage(t *testing.T) {
	path := sealedState(t, 3000)
	m, err := testutil.MapBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	var formations []string
	want := map[string][]projection.Cell{}
	{
		s := mustOpen(t, path)
		if err := s.View(func(v *View) error {
			for _, f := range allFormations(v, projection.FormationFilter{}) {
				formations = append(formations, f.ID)
				want[f.ID] = allCells(v, projection.CellFilter{Formation: f.ID})
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tried := 0
	for _, p := range m.Pages {
		if p.Class != testutil.PageBranch || p.Bucket != string(bucketCellByFormation) {
			continue
		}
		for _, e := range p.Elems[1:] {
			// The class byte (after the length and the formation id) up
			// to 0xff: the key now sorts after every range of its
			// formation that follows it in its leaf.
			n := int64(data[e.Key]) // formation ids here are < 128 bytes: one varint byte
			d := testutil.Damage{Off: e.Key + 1 + n, Bytes: []byte{0xff}}
			damaged := filepath.Join(t.TempDir(), "damaged.db")
			if err := os.WriteFile(damaged, data, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := d.Apply(damaged); err != nil {
				t.Fatal(err)
			}
			s := mustOpen(t, damaged)
			for _, id := range formations {
				var got []projection.Cell
				err := s.View(func(v *View) error { got = allCells(v, projection.CellFilter{Formation: id}); return nil })
				if err == nil && !reflect.DeepEqual(got, want[id]) {
					t.Errorf("branch key %d bytes at %d raised: formation %s's cells: %d, want %d", e.KeyLen, e.Key, id, len(got), len(want[id]))
				}
			}
			s.Close()
			tried++
		}
	}
	if tried == 0 {
		t.Fatalf("no branch page in %s: %s", bucketCellByFormation, m.Classes())
	}
}
