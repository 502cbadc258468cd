package store

import (
	"bytes"
	"slices"

	bolt "go.etcd.io/bbolt"

	"cellos-allinone/projection"
)

// writer writes one commit: entity records, their index keys, and the
// changes of the formation counts and the tenant aggregates, summed per key
// so that each counter is read and written once per commit. Every key and
// value is a fresh slice: bbolt keeps them until the transaction commits.
type writer struct {
	cells, forms, counts, aggs *bolt.Bucket
	cellByTenant, cellByForm   *bolt.Bucket
	cellByClass                *bolt.Bucket
	formByTenant, formByStatus *bolt.Bucket

	keys *keyTable

	// Index changes are gathered per bucket and applied in key order at
	// flush, as the records are (Batch.write): bbolt inserts in key order
	// append to a node instead of shifting it.
	index map[*bolt.Bucket][]indexOp

	countDelta map[string]*projection.CellCounts
	aggDelta   map[string]*aggregate
}

func newWriter(tx *bolt.Tx, keys *keyTable) *writer {
	w := &writer{
		cells: tx.Bucket(bucketCells), forms: tx.Bucket(bucketFormations),
		counts: tx.Bucket(bucketCounts), aggs: tx.Bucket(bucketAggregates),
		cellByTenant: tx.Bucket(bucketCellByTenant), cellByForm: tx.Bucket(bucketCellByFormation),
		cellByClass: tx.Bucket(bucketCellByClass), formByTenant: tx.Bucket(bucketFormByTenant),
		formByStatus: tx.Bucket(bucketFormByStatus), keys: keys,
		countDelta: map[string]*projection.CellCounts{}, aggDelta: map[string]*aggregate{},
		index: map[*bolt.Bucket][]indexOp{},
	}
	for _, b := range []*bolt.Bucket{w.cells, w.forms, w.counts, w.cellByTenant, w.cellByForm, w.cellByClass, w.formByTenant, w.formByStatus} {
		b.FillPercent = fillPercent
	}
	return w
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
	c := w.countDelta[formation]
	if c == nil {
		c = &projection.CellCounts{}
		w.countDelta[formation] = c
	}
	return c
}

func (w *writer) cell(sl *cellSlot) error {
	id := sl.c.ID
	if err := w.cells.Put([]byte(id), encodeCell(nil, &sl.c, w.keys)); err != nil {
		return err
	}
	now := keysOfCell(&sl.c)
	if sl.inStore && sl.stored == now {
		return nil
	}
	if sl.inStore {
		old := sl.stored
		for _, k := range w.cellIndexKeys(id, old) {
			w.index[k.b] = append(w.index[k.b], indexOp{k.key, true})
		}
		w.agg(old.tenant).countCell(old.class, -1)
		if old.formation != "" {
			w.count(old.formation).Add(cellStates[old.class/3], cellOutcomes[old.class%3], -1)
		}
	}
	for _, k := range w.cellIndexKeys(id, now) {
		w.index[k.b] = append(w.index[k.b], indexOp{k.key, false})
	}
	w.agg(now.tenant).countCell(now.class, 1)
	if now.formation != "" {
		w.count(now.formation).Add(cellStates[now.class/3], cellOutcomes[now.class%3], 1)
	}
	return nil
}

type indexEntry struct {
	b   *bolt.Bucket
	key []byte
}

// indexOp is one index key to put or delete. A commit never does both to
// one key: the key holds the entity's id, and an entity's old and new keys
// differ or nothing is done.
type indexOp struct {
	key []byte
	del bool
}

func (w *writer) cellIndexKeys(id string, k cellKeys) []indexEntry {
	out := []indexEntry{
		{w.cellByTenant, indexKey(group(k.tenant, k.class), id)},
		{w.cellByClass, indexKey([]byte{k.class}, id)},
	}
	if k.formation != "" {
		out = append(out, indexEntry{w.cellByForm, indexKey(group(k.formation, k.class), id)})
	}
	return out
}

func (w *writer) formation(sl *formSlot) error {
	id := sl.f.ID
	if err := w.forms.Put([]byte(id), encodeFormation(nil, &sl.f, w.keys)); err != nil {
		return err
	}
	now := keysOfFormation(&sl.f)
	if sl.inStore && sl.stored == now {
		return nil
	}
	if sl.inStore && sl.stored.live {
		old := sl.stored
		for _, k := range w.formIndexKeys(id, old) {
			w.index[k.b] = append(w.index[k.b], indexOp{k.key, true})
		}
		w.agg(old.tenant).formations[old.status]--
	}
	if now.live {
		for _, k := range w.formIndexKeys(id, now) {
			w.index[k.b] = append(w.index[k.b], indexOp{k.key, false})
		}
		w.agg(now.tenant).formations[now.status]++
	}
	return nil
}

func (w *writer) formIndexKeys(id string, k formKeys) []indexEntry {
	return []indexEntry{
		{w.formByTenant, indexKey(group(k.tenant, k.status), id)},
		{w.formByStatus, indexKey([]byte{k.status}, id)},
	}
}

// flush adds the summed deltas to the stored counters; a counter that
// reaches zero is deleted.
func (w *writer) flush() error {
	for b, ops := range w.index {
		slices.SortFunc(ops, func(x, y indexOp) int { return bytes.Compare(x.key, y.key) })
		for _, op := range ops {
			var err error
			if op.del {
				err = b.Delete(op.key)
			} else {
				err = b.Put(op.key, nil)
			}
			if err != nil {
				return err
			}
		}
	}
	for formation, d := range w.countDelta {
		cur := decodeCounts(w.counts.Get([]byte(formation)))
		cur.Total += d.Total
		cur.Admitted += d.Admitted
		cur.Running += d.Running
		cur.Completed += d.Completed
		cur.Failed += d.Failed
		cur.Destroyed += d.Destroyed
		var err error
		if cur == (projection.CellCounts{}) {
			err = w.counts.Delete([]byte(formation))
		} else {
			err = w.counts.Put([]byte(formation), encodeCounts(cur))
		}
		if err != nil {
			return err
		}
	}
	for tenant, d := range w.aggDelta {
		key := aggKey(tenant)
		cur := decodeAggregate(w.aggs.Get(key))
		cur.add(d)
		var err error
		if cur.zero() {
			err = w.aggs.Delete(key)
		} else {
			err = w.aggs.Put(key, cur.encode())
		}
		if err != nil {
			return err
		}
	}
	return nil
}
