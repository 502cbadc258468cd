package store

import (
	"bytes"
	"fmt"
	"math"

	bolt "go.etcd.io/bbolt"

	"cellos-allinone/projection"
)

// Pruning is the retention rule (projection/prune.go, docs/design.md §3)
// applied in the transaction of every commit, after the commit's own
// records: what the rule removes at the floor leaves the file with its
// index keys, its share of the counts and aggregates, and its ix-ended
// key, in the same transaction that writes the position.
//
// It costs nothing per entity held. ix-ended files the entities the rule
// can remove, by last event: every ended formation, every destroyed cell,
// and the completed or failed cells whose formation is not served. So a
// commit reads the range of ix-ended below the floor, which holds exactly
// what goes, and nothing else. A completed cell of a served formation is
// filed when its formation stops being served — deleted (refile) or pruned
// (prune) — from its formation's ix-cell-formation range, once for the
// formation's life; and taken out of ix-ended when a formation it names is
// created after it.
//
// A pruned cell of a served formation moves from the formation's counts
// (fcounts, which count the cells held) to its pruned counts (fpruned);
// the served counts are the sum. A pruned formation's pruned counts go.

// pruning is what one commit pruned.
type pruning struct {
	meta       projection.Pruned // the position's figures after the commit
	formations []string
	cells      []string
}

// servedIn reports whether tx holds formation id and it is not deleted. A
// record too short to tell counts as served: its cells stay.
func servedIn(tx *bolt.Tx, id string) bool {
	rec := tx.Bucket(bucketFormations).Get([]byte(id))
	return rec != nil && (len(rec) <= 2 || rec[2] == 0)
}

// refile files in ix-ended, or takes out of it, the completed and failed
// cells of the formations the commit made served (created after them) or
// stopped serving (deleted). Run after the commit's records and index keys
// are written; the keys it puts or deletes follow from them alone.
func (w *writer) refile() error {
	ended := w.tx.Bucket(bucketEnded)
	for _, id := range w.refiled {
		served := w.served(id)
		cids, err := w.formationCells(id, completedClasses())
		if err != nil {
			return err
		}
		for _, cid := range cids {
			c, ok, err := w.loadCell(cid)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			k := endedKey(c.LastEvent, endedCell, cid)
			if served {
				err = ended.Delete(k)
			} else {
				err = ended.Put(k, indexValue(k))
			}
			if err != nil {
				return err
			}
		}
	}
	w.refiled = nil
	return nil
}

// DefaultPruneLimit bounds the entities one commit prunes (its ix-ended
// keys; the completed cells of a formation pruned with it come on top).
// A box that was off for longer than its retention prunes most of its
// registry at once: in steps of this size, one per commit, a transaction
// stays the size of an ordinary commit instead of the whole file.
const DefaultPruneLimit = 10_000

// prune removes what the retention rule removes at floor; before is the
// position's figures so far. At most limit keys of ix-ended are taken,
// and only whole groups of one last event: when more are below the floor,
// the commit prunes at the last event of the first key it leaves (the
// floor it records), above the one recorded before, and the next commit
// goes on (Batch.PruneDue). Formations go first, as in
// projection.Projection.Prune: a completed cell of a formation pruned now
// goes in the same step.
func (w *writer) prune(floor uint64, before projection.Pruned, limit int) (pruning, error) {
	pr := pruning{meta: before}
	var forms, cells []string
	c := w.tx.Bucket(bucketEnded).Cursor()
	n, last := 0, uint64(0)
	for k, val := c.First(); k != nil; k, val = c.Next() {
		if !indexSealed(k, val) {
			return pr, errSeal("ix-ended key", k)
		}
		lastEvent, kind, id, ok := splitEnded(k)
		if !ok {
			return pr, fmt.Errorf("ix-ended key %q: %w", k, ErrDamaged)
		}
		if lastEvent >= floor {
			break
		}
		if n >= limit && lastEvent != last && lastEvent > before.Floor {
			floor = lastEvent
			break
		}
		n, last = n+1, lastEvent
		w.queue(string(bucketEnded), bytes.Clone(k), true)
		if kind == endedFormation {
			forms = append(forms, string(id))
		} else {
			cells = append(cells, string(id))
		}
	}
	pr.meta.Floor = floor
	for _, id := range forms {
		f, ok, err := w.loadFormation(id)
		if err != nil {
			return pr, err
		}
		if !ok || !f.Ended() || f.LastEvent >= floor {
			continue // a key its record does not make: Check reports it
		}
		if err := w.forms.Delete([]byte(id)); err != nil {
			return pr, err
		}
		if err := w.ghosts.Delete([]byte(id)); err != nil {
			return pr, err
		}
		if fk := keysOfFormation(&f); fk.live {
			w.agg(fk.tenant).formations[fk.status]--
			for _, e := range formIndexes(id, fk) {
				w.queue(e.bucket, e.key, true)
			}
		}
		pr.formations = append(pr.formations, id)
		pr.meta.Formations++
		if f.Deleted {
			continue // a tombstone's completed cells are filed already
		}
		cids, err := w.formationCells(id, completedClasses())
		if err != nil {
			return pr, err
		}
		for _, cid := range cids {
			c, ok, err := w.loadCell(cid)
			if err != nil {
				return pr, err
			}
			switch {
			case !ok:
			case c.LastEvent < floor:
				if err := w.pruneCell(&pr, &c, false); err != nil {
					return pr, err
				}
			default:
				w.queue(string(bucketEnded), endedKey(c.LastEvent, endedCell, cid), false)
			}
		}
	}
	for _, id := range cells {
		c, ok, err := w.loadCell(id)
		if err != nil {
			return pr, err
		}
		if !ok {
			continue
		}
		served := c.FormationID != "" && servedIn(w.tx, c.FormationID)
		if !projection.Prunable(&c, served, floor) {
			continue
		}
		if err := w.pruneCell(&pr, &c, served); err != nil {
			return pr, err
		}
	}
	return pr, nil
}

// pruneCell removes cell c; a served formation keeps counting it among its
// pruned cells.
func (w *writer) pruneCell(pr *pruning, c *projection.Cell, formationServed bool) error {
	if err := w.cells.Delete([]byte(c.ID)); err != nil {
		return err
	}
	ck := keysOfCell(c)
	for _, e := range cellIndexes(c.ID, ck) {
		w.queue(e.bucket, e.key, true)
	}
	w.agg(ck.tenant).countCell(ck.class, -1)
	if ck.formation != "" {
		countClass(w.count(ck.formation), ck.class, -1)
		if formationServed {
			countClass(delta(w.ghostDelta, ck.formation), ck.class, 1)
		}
	}
	pr.cells = append(pr.cells, c.ID)
	pr.meta.Cells++
	return nil
}

// formationCells lists the cells ix-cell-formation files under formation
// id in classes cls.
func (w *writer) formationCells(id string, cls []byte) ([]string, error) {
	prefixes := make([][]byte, 0, len(cls))
	for _, cl := range cls {
		prefixes = append(prefixes, group(id, cl))
	}
	ids, _, err := scan(w.tx.Bucket(bucketCellByFormation), prefixes, "", "", math.MaxInt, nil)
	return ids, err
}

func (w *writer) loadCell(id string) (projection.Cell, bool, error) {
	rec := w.cells.Get([]byte(id))
	if rec == nil {
		return projection.Cell{}, false, nil
	}
	c, err := decodeCell(id, rec, w.keys.snapshot())
	return c, err == nil, err
}

func (w *writer) loadFormation(id string) (projection.Formation, bool, error) {
	rec := w.forms.Get([]byte(id))
	if rec == nil {
		return projection.Formation{}, false, nil
	}
	f, err := decodeFormation(id, rec, w.keys.snapshot())
	return f, err == nil, err
}
