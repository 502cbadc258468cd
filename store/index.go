package store

import (
	"encoding/binary"
	"maps"
	"slices"

	"cellos-allinone/projection"
)

// Buckets of the state (see the package doc for the whole tree).
var (
	bucketMeta       = []byte("meta")
	bucketFormations = []byte("formations")
	bucketCells      = []byte("cells")
	bucketCounts     = []byte("fcounts")
	bucketAggregates = []byte("aggregates")
	// Index buckets hold keys only: a prefix that selects, then the id,
	// so that every range is ordered by id as the lists are.
	bucketCellByTenant    = []byte("ix-cell-tenant")      // tenant, class, id
	bucketCellByFormation = []byte("ix-cell-formation")   // formation, class, id
	bucketCellByClass     = []byte("ix-cell-class")       // class, id
	bucketFormByTenant    = []byte("ix-formation-tenant") // tenant, status, id
	bucketFormByStatus    = []byte("ix-formation-status") // status, id
	// The retention rule's (prune.go): the pruned cells a formation still
	// counts, and the entities that end up pruned, by last event.
	bucketPrunedCounts = []byte("fpruned")
	bucketEnded        = []byte("ix-ended") // lastEvent, kind, id

	allBuckets = [][]byte{
		bucketMeta, bucketFormations, bucketCells, bucketCounts, bucketAggregates,
		bucketCellByTenant, bucketCellByFormation, bucketCellByClass, bucketFormByTenant, bucketFormByStatus,
		bucketKeys, bucketPrunedCounts, bucketEnded,
	}
)

// The kinds of entity in ix-ended keys.
const (
	endedFormation = 'f'
	endedCell      = 'c'
)

// endedKey is an entity's key in ix-ended: its last event (big-endian, so
// that the keys below a floor are one range from the start), its kind, its
// id.
func endedKey(lastEvent uint64, kind byte, id string) []byte {
	k := binary.BigEndian.AppendUint64(make([]byte, 0, 9+len(id)), lastEvent)
	k = append(k, kind)
	return append(k, id...)
}

// splitEnded parses an ix-ended key: ok when it has a kind endedKey
// writes and an id (no entity has an empty one). Every reader of the
// index parses its keys here.
func splitEnded(k []byte) (lastEvent uint64, kind byte, id []byte, ok bool) {
	if len(k) <= 9 || k[8] != endedFormation && k[8] != endedCell {
		return 0, 0, nil, false
	}
	return binary.BigEndian.Uint64(k), k[8], k[9:], true
}

// formationEnded is the ix-ended key of a formation, nil when it has not
// ended: every ended formation is filed.
func formationEnded(f *projection.Formation) []byte {
	if !f.Ended() {
		return nil
	}
	return endedKey(f.LastEvent, endedFormation, f.ID)
}

// cellEnded is the ix-ended key of a cell, nil when it is not filed: a
// destroyed cell is, and a completed or failed one whose formation is not
// served (none, never created, deleted or pruned) — one the retention
// rule removes once its last event is below the floor. Filing a completed
// cell only once its formation goes keeps the range below a floor free of
// cells that stay.
func cellEnded(c *projection.Cell, formationServed bool) []byte {
	if c.State != projection.CellDestroyed && (!c.Ended() || formationServed) {
		return nil
	}
	return endedKey(c.LastEvent, endedCell, c.ID)
}

// endedClass reports whether cells of class cl have ended: completed,
// failed or destroyed, the states from index 2 of cellStates.
func endedClass(cl byte) bool { return classState(cl) >= 2 }

// completedClasses are the classes of a cell completed or failed but not
// destroyed: the ones whose filing in ix-ended depends on their formation.
func completedClasses() []byte {
	var out []byte
	for _, st := range []string{projection.CellCompleted, projection.CellFailed} {
		out = append(out, classes(st, "")...)
	}
	return out
}

// cellClass is a cell's state and outcome in one byte: what the cell
// indexes select on.
func cellClass(state, outcome string) byte {
	st, _ := indexOf(cellStates, state)
	oc, _ := indexOf(cellOutcomes, outcome)
	return st*byte(len(cellOutcomes)) + oc
}

// classState and classOutcome are the indexes in cellStates and
// cellOutcomes of a class's state and outcome.
func classState(cl byte) byte   { return cl / byte(len(cellOutcomes)) }
func classOutcome(cl byte) byte { return cl % byte(len(cellOutcomes)) }

// countClass adds n cells of class cl to a formation's counts.
func countClass(c *projection.CellCounts, cl byte, n int) {
	c.Add(cellStates[classState(cl)], cellOutcomes[classOutcome(cl)], n)
}

// classes lists the classes a state filter and an outcome filter select,
// as the API takes them: "" for any, projection.OutcomeUnset for the
// cells without an outcome.
func classes(state, outcome string) []byte {
	anyOutcome := outcome == ""
	if outcome == projection.OutcomeUnset {
		outcome = projection.OutcomeNone
	}
	var out []byte
	for st := range byte(len(cellStates)) {
		for oc := range byte(len(cellOutcomes)) {
			if (state == "" || cellStates[st] == state) && (anyOutcome || cellOutcomes[oc] == outcome) {
				out = append(out, cellClass(cellStates[st], cellOutcomes[oc]))
			}
		}
	}
	return out
}

// statuses lists the status bytes a status filter selects.
func statuses(status string) []byte {
	var out []byte
	for i, s := range formationStatuses {
		if status == "" || s == status {
			out = append(out, byte(i))
		}
	}
	return out
}

// group is the length-prefixed selector part of an index key (a tenant or
// a formation id, which may hold any byte), then a one-byte class or status.
func group(name string, b byte) []byte {
	k := binary.AppendUvarint(make([]byte, 0, len(name)+2), uint64(len(name)))
	k = append(k, name...)
	return append(k, b)
}

// splitGroup reads what group wrote at the start of an index key k: the
// selector name, the class or status byte, and the rest (the id); false
// when k does not start with a group.
func splitGroup(k []byte) (name string, b byte, rest []byte, ok bool) {
	n, w := binary.Uvarint(k)
	if w <= 0 || n >= uint64(len(k)-w) {
		return "", 0, nil, false
	}
	end := w + int(n)
	return string(k[w:end]), k[end], k[end+1:], true
}

// indexKey is prefix + id.
func indexKey(prefix []byte, id string) []byte {
	return append(append(make([]byte, 0, len(prefix)+len(id)), prefix...), id...)
}

// cellKeys are the index keys a cell is filed under.
type cellKeys struct {
	formation, tenant string
	class             byte
}

func keysOfCell(c *projection.Cell) cellKeys {
	return cellKeys{c.FormationID, c.TenantID, cellClass(c.State, c.Outcome)}
}

// formKeys are the index keys a live formation is filed under; a tombstone
// is filed nowhere.
type formKeys struct {
	tenant string
	status byte
	live   bool
}

func keysOfFormation(f *projection.Formation) formKeys {
	st, _ := indexOf(formationStatuses, f.Status)
	return formKeys{f.TenantID, st, !f.Deleted}
}

// indexEntry is one index key of an entity: the index bucket's name and
// the key (selector and id).
type indexEntry struct {
	bucket string
	key    []byte
}

// cellIndexes lists the index keys of a cell with keys k.
func cellIndexes(id string, k cellKeys) []indexEntry {
	out := []indexEntry{
		{string(bucketCellByTenant), indexKey(group(k.tenant, k.class), id)},
		{string(bucketCellByClass), indexKey([]byte{k.class}, id)},
	}
	if k.formation != "" {
		out = append(out, indexEntry{string(bucketCellByFormation), indexKey(group(k.formation, k.class), id)})
	}
	return out
}

// formIndexes lists the index keys of a formation with keys k: none for a
// tombstone.
func formIndexes(id string, k formKeys) []indexEntry {
	if !k.live {
		return nil
	}
	return []indexEntry{
		{string(bucketFormByTenant), indexKey(group(k.tenant, k.status), id)},
		{string(bucketFormByStatus), indexKey([]byte{k.status}, id)},
	}
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
