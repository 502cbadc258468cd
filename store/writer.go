package store

import (
	"bytes"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"cellos-allinone/projection"
)

// writer writes one commit: entity records, their index keys, and the
// changes of the formation counts and the tenant aggregates, summed per key
// so that each counter is read and written once per commit. Every key and
// value is a fresh slice: bbolt keeps them until the transaction commits.
type writer struct {
	tx                                 *bolt.Tx
	cells, forms, counts, aggs, ghosts *bolt.Bucket

	keys *keyTable
	// served says whether a formation is held and not deleted after the
	// commit's records are written.
	served func(id string) bool
	// refiled lists the formations the commit makes served or stops
	// serving: their completed cells move in or out of ix-ended (refile).
	refiled []string

	// Index changes are gathered per bucket (by name) and applied in key
	// order at flush, as the records are (Batch.write): bbolt inserts in
	// key order append to a node instead of shifting it.
	index map[string][]indexOp

	countDelta map[string]*projection.CellCounts
	aggDelta   map[string]*aggregate
	// ghostDelta: changes of the pruned cells a formation counts.
	ghostDelta map[string]*projection.CellCounts
}

func newWriter(tx *bolt.Tx, keys *keyTable, served func(string) bool) *writer {
	w := &writer{
		tx:    tx,
		cells: tx.Bucket(bucketCells), forms: tx.Bucket(bucketFormations),
		counts: tx.Bucket(bucketCounts), aggs: tx.Bucket(bucketAggregates), ghosts: tx.Bucket(bucketPrunedCounts),
		keys: keys, served: served,
	}
	w.reset()
	for _, b := range []*bolt.Bucket{w.cells, w.forms, w.counts} {
		b.FillPercent = fillPercent
	}
	return w
}

// reset empties what flush writes.
func (w *writer) reset() {
	w.index = map[string][]indexOp{}
	w.countDelta = map[string]*projection.CellCounts{}
	w.aggDelta = map[string]*aggregate{}
	w.ghostDelta = map[string]*projection.CellCounts{}
}

// fillPercent is how full bbolt packs a page it splits. Ids arrive in no
// particular key order, and at bbolt's default (half) the pages stay about
// half full; at 0.9 they stay above 80 % (measured: the file of 1 M demo
// events shrinks from 633 to 440 bytes per entity), for somewhat more
// splitting on insert.
const fillPercent = 0.9

func (w *writer) agg(tenant string) *aggregate {
	a := w.aggDelta[tenant]
	if a == nil {
		a = &aggregate{}
		w.aggDelta[tenant] = a
	}
	return a
}

func (w *writer) count(formation string) *projection.CellCounts {
	return delta(w.countDelta, formation)
}

func delta(m map[string]*projection.CellCounts, formation string) *projection.CellCounts {
	c := m[formation]
	if c == nil {
		c = &projection.CellCounts{}
		m[formation] = c
	}
	return c
}

func (w *writer) cell(sl *cellSlot) error {
	id := sl.c.ID
	if err := w.cells.Put([]byte(id), encodeCell(nil, &sl.c, w.keys)); err != nil {
		return err
	}
	// Its ix-ended key: the one the file may hold goes when it differs
	// from the one it has now, which is put (again: the file may not hold
	// it yet, for instance when the cell is destroyed).
	var was []byte
	if sl.inStore && endedClass(sl.stored.class) {
		was = endedKey(sl.lastEvent, endedCell, id)
	}
	is := cellEnded(&sl.c, sl.c.FormationID != "" && w.served(sl.c.FormationID))
	if was != nil && !bytes.Equal(was, is) {
		w.queue(string(bucketEnded), was, true)
	}
	if is != nil {
		w.queue(string(bucketEnded), is, false)
	}
	now := keysOfCell(&sl.c)
	if sl.inStore && sl.stored == now {
		return nil
	}
	var oldKeys []indexEntry
	if sl.inStore {
		old := sl.stored
		oldKeys = cellIndexes(id, old)
		w.agg(old.tenant).countCell(old.class, -1)
		if old.formation != "" {
			countClass(w.count(old.formation), old.class, -1)
		}
	}
	w.reindex(oldKeys, cellIndexes(id, now))
	w.agg(now.tenant).countCell(now.class, 1)
	if now.formation != "" {
		countClass(w.count(now.formation), now.class, 1)
	}
	return nil
}

// indexOp is one index key to put or delete. A commit never does both to
// one key: the key holds the entity's id, an entity is written once per
// commit, and reindex queues only the keys its change adds or removes.
type indexOp struct {
	key []byte
	del bool
}

// queue queues one index key to put or delete at flush.
func (w *writer) queue(bucket string, key []byte, del bool) {
	w.index[bucket] = append(w.index[bucket], indexOp{key, del})
}

func (w *writer) formation(sl *formSlot) error {
	id := sl.f.ID
	if err := w.forms.Put([]byte(id), encodeFormation(nil, &sl.f, w.keys)); err != nil {
		return err
	}
	is := formationEnded(&sl.f)
	if was := sl.ended; sl.inStore && was != nil && !bytes.Equal(was, is) {
		w.queue(string(bucketEnded), was, true)
	}
	if is != nil && !(sl.inStore && bytes.Equal(sl.ended, is)) {
		w.queue(string(bucketEnded), is, false)
	}
	if servedWas := sl.inStore && sl.stored.live; servedWas == sl.f.Deleted {
		w.refiled = append(w.refiled, id)
	}
	now := keysOfFormation(&sl.f)
	if sl.inStore && sl.stored == now {
		return nil
	}
	if sl.inStore && sl.stored.live {
		w.agg(sl.stored.tenant).formations[sl.stored.status]--
	}
	if now.live {
		w.agg(now.tenant).formations[now.status]++
	}
	var oldKeys []indexEntry
	if sl.inStore {
		oldKeys = formIndexes(id, sl.stored)
	}
	w.reindex(oldKeys, formIndexes(id, now))
	return nil
}

// reindex queues the index changes of one entity: the keys it had and no
// longer has are deleted, the keys it has and had not are put. A key in both
// (a cell whose formation was filled in keeps its tenant key) is left alone:
// queuing a delete and a put of one key would leave its fate to the order
// of the sort at flush.
func (w *writer) reindex(old, now []indexEntry) {
	for _, k := range old {
		if !containsEntry(now, k) {
			w.index[k.bucket] = append(w.index[k.bucket], indexOp{k.key, true})
		}
	}
	for _, k := range now {
		if !containsEntry(old, k) {
			w.index[k.bucket] = append(w.index[k.bucket], indexOp{k.key, false})
		}
	}
}

func containsEntry(list []indexEntry, e indexEntry) bool {
	for _, x := range list {
		if x.bucket == e.bucket && bytes.Equal(x.key, e.key) {
			return true
		}
	}
	return false
}

// flush applies the queued index changes and adds the summed deltas to
// the stored counters (a counter that reaches zero is deleted), then
// starts over: a commit flushes what it writes, then what it prunes.
func (w *writer) flush() error {
	defer w.reset()
	for name, ops := range w.index {
		b := w.tx.Bucket([]byte(name))
		b.FillPercent = fillPercent
		slices.SortFunc(ops, func(x, y indexOp) int { return bytes.Compare(x.key, y.key) })
		for _, op := range ops {
			var err error
			if op.del {
				err = b.Delete(op.key)
			} else {
				err = b.Put(op.key, indexValue(op.key))
			}
			if err != nil {
				return err
			}
		}
	}
	if err := addCounts(w.counts, w.countDelta); err != nil {
		return err
	}
	if err := addCounts(w.ghosts, w.ghostDelta); err != nil {
		return err
	}
	for tenant, d := range w.aggDelta {
		key := aggKey(tenant)
		rec := w.aggs.Get(key)
		var err error
		if rec == nil {
			err = vouchAbsent(w.aggs, key) // or a garbled key would restart the tenant's counts
		}
		cur, derr := decodeAggregate(key, rec)
		if err == nil {
			err = derr
		}
		if err != nil {
			return fmt.Errorf("tenant %q: %w", tenant, err)
		}
		cur.add(d)
		if cur.zero() {
			err = w.aggs.Delete(key)
		} else {
			err = w.aggs.Put(key, cur.encode(key))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// addCounts adds deltas to the counts records of bucket b.
func addCounts(b *bolt.Bucket, deltas map[string]*projection.CellCounts) error {
	for formation, d := range deltas {
		cur, err := readCounts(b, formation)
		if err != nil {
			return fmt.Errorf("formation %q: %w", formation, err)
		}
		cur.Plus(*d)
		if cur == (projection.CellCounts{}) {
			err = b.Delete([]byte(formation))
		} else {
			err = b.Put([]byte(formation), encodeCounts(formation, cur))
		}
		if err != nil {
			return err
		}
	}
	return nil
}
