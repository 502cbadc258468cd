package store

import (
	"bytes"
	"fmt"
	"maps"
	"slices"

	"cellos-allinone/projection"
)

// Check derives, from the entity records alone, what the state keeps
// beside them — every index key, each formation's cell counts, each
// tenant's aggregate, the ix-ended filing, the pruned counts — and lists
// up to most places where the stored ones differ, and every entity held
// that the retention rule removes at the floor the state was pruned at
// (Pruned.Floor). The lists and summaries are answered from those, so a
// state whose records equal a fold of the stream and whose Check is empty
// answers every query as the fold does. It reads the whole state and holds
// the expected keys in memory: it is for snapshot verify, not for serving.
func (v *View) Check(most int) (diffs []string) {
	defer v.recoverDamage()
	add := func(format string, args ...any) bool {
		if len(diffs) < most {
			diffs = append(diffs, fmt.Sprintf(format, args...))
		}
		return len(diffs) < most
	}
	want := map[string]map[string]bool{} // index bucket → key → seen
	expect := func(entries []indexEntry) {
		for _, e := range entries {
			if want[e.bucket] == nil {
				want[e.bucket] = map[string]bool{}
			}
			want[e.bucket][string(e.key)] = false
		}
	}
	counts := map[string]*projection.CellCounts{}
	aggs := map[string]*aggregate{}
	agg := func(tenant string) *aggregate {
		if aggs[tenant] == nil {
			aggs[tenant] = &aggregate{}
		}
		return aggs[tenant]
	}
	// The retention rule (prune.go): what it removes at the floor the
	// state was pruned at is not held, and ix-ended files what it will.
	floor, cursor := v.cp.Meta.Pruned.Floor, v.cp.Meta.Cursor
	held := func(why string) {
		if why != "" {
			add("%s", why)
		}
	}
	served := map[string]bool{} // formation id → not deleted, for each one held
	_ = v.tx.Bucket(bucketFormations).ForEach(func(k, rec []byte) error {
		f, err := decodeFormation(string(k), rec, v.names)
		if err != nil {
			add("formation %q: %v", k, err)
			return nil
		}
		fk := keysOfFormation(&f)
		expect(formationFiling(&f))
		served[f.ID] = !f.Deleted
		if fk.live {
			agg(fk.tenant).formations[fk.status]++
		}
		held(formationHeld(&f, floor, cursor))
		return nil
	})
	_ = v.tx.Bucket(bucketCells).ForEach(func(k, rec []byte) error {
		c, err := decodeCell(string(k), rec, v.names)
		if err != nil {
			add("cell %q: %v", k, err)
			return nil
		}
		ck := keysOfCell(&c)
		fs := served[c.FormationID]
		expect(cellFiling(&c, fs))
		agg(ck.tenant).countCell(ck.class, 1)
		if ck.formation != "" {
			if counts[ck.formation] == nil {
				counts[ck.formation] = &projection.CellCounts{}
			}
			countClass(counts[ck.formation], ck.class, 1)
		}
		held(cellHeld(&c, fs, floor, cursor))
		return nil
	})
	for _, name := range []string{string(bucketCellByTenant), string(bucketCellByFormation), string(bucketCellByClass), string(bucketFormByTenant), string(bucketFormByStatus), string(bucketEnded)} {
		keys := want[name]
		_ = v.tx.Bucket([]byte(name)).ForEach(func(k, val []byte) error {
			if !indexSealed(k, val) {
				add("index %s: key %q: checksum mismatch", name, k)
				return nil
			}
			if _, ok := keys[string(k)]; !ok {
				add("index %s: key %q belongs to no record", name, k)
				return nil
			}
			keys[string(k)] = true
			return nil
		})
		var missing []string
		for k, seen := range keys {
			if !seen {
				missing = append(missing, k)
			}
		}
		slices.Sort(missing)
		for _, k := range missing {
			add("index %s: key %q missing", name, k)
		}
	}
	_ = v.tx.Bucket(bucketCounts).ForEach(func(k, rec []byte) error {
		got, err := decodeCounts(string(k), rec)
		w := counts[string(k)]
		delete(counts, string(k))
		switch {
		case err != nil:
			add("cell counts of formation %q: %v", k, err)
		case w == nil:
			add("cell counts of formation %q: stored %+v, no cell counts there", k, got)
		case got != *w:
			add("cell counts of formation %q: stored %+v, the cells count %+v", k, got, *w)
		}
		return nil
	})
	for _, f := range slices.Sorted(maps.Keys(counts)) {
		add("cell counts of formation %q: missing, the cells count %+v", f, *counts[f])
	}
	_ = v.tx.Bucket(bucketPrunedCounts).ForEach(func(k, rec []byte) error {
		got, err := decodeCounts(string(k), rec)
		_, held := served[string(k)]
		switch {
		case err != nil:
			add("pruned cell counts of formation %q: %v", k, err)
		case !held:
			add("pruned cell counts of formation %q: stored %+v, no such formation", k, got)
		case !prunedCounts(got):
			add("pruned cell counts of formation %q: %+v cannot count ended cells", k, got)
		}
		return nil
	})
	_ = v.tx.Bucket(bucketAggregates).ForEach(func(k, rec []byte) error {
		if len(k) == 0 {
			add("tenant aggregate with an empty key")
			return nil
		}
		tenant := string(k[1:])
		w := aggs[tenant]
		delete(aggs, tenant)
		if w == nil {
			w = &aggregate{}
		}
		if !bytes.Equal(rec, w.encode(k)) {
			got, err := decodeAggregate(k, rec)
			add("aggregate of tenant %q: stored %+v (%v), the records count %+v", tenant, got, err, *w)
		}
		return nil
	})
	for _, t := range slices.Sorted(maps.Keys(aggs)) {
		if !aggs[t].zero() {
			add("aggregate of tenant %q: missing, the records count %+v", t, *aggs[t])
		}
	}
	return diffs
}

// formationFiling lists every index key the record of f files it under:
// its index keys (none for a tombstone) and its ix-ended key (once
// ended). Check and the scrub derive what a record must have from here.
func formationFiling(f *projection.Formation) []indexEntry {
	out := formIndexes(f.ID, keysOfFormation(f))
	if k := formationEnded(f); k != nil {
		out = append(out, indexEntry{string(bucketEnded), k})
	}
	return out
}

// cellFiling lists every index key the record of c files it under; its
// ix-ended key depends on whether its formation is served.
func cellFiling(c *projection.Cell, formationServed bool) []indexEntry {
	out := cellIndexes(c.ID, keysOfCell(c))
	if k := cellEnded(c, formationServed); k != nil {
		out = append(out, indexEntry{string(bucketEnded), k})
	}
	return out
}

// spanHeld says why an entity's span cannot be one of the log folded up
// to cursor; "" when it can.
func spanHeld(kind, id string, sp projection.Span, cursor uint64) string {
	if sp.LastEvent > cursor || sp.FirstSeq == 0 {
		return fmt.Sprintf("%s %q: first sequence %d, last event %d, cursor %d: not a span of the log folded", kind, id, sp.FirstSeq, sp.LastEvent, cursor)
	}
	return ""
}

// formationHeld says why f cannot be held by a state folded to cursor and
// pruned at floor (the retention rule removes it, or its span is not one
// of the log); "" when it can.
func formationHeld(f *projection.Formation, floor, cursor uint64) string {
	if why := spanHeld("formation", f.ID, f.Span, cursor); why != "" {
		return why
	}
	if f.Ended() && f.LastEvent < floor {
		return fmt.Sprintf("formation %q: ended (status %s, deleted %v) with its last event %d below the floor %d: the retention rule removes it",
			f.ID, f.Status, f.Deleted, f.LastEvent, floor)
	}
	return ""
}

// cellHeld is formationHeld for a cell whose formation is served or not.
func cellHeld(c *projection.Cell, formationServed bool, floor, cursor uint64) string {
	if why := spanHeld("cell", c.ID, c.Span, cursor); why != "" {
		return why
	}
	if projection.Prunable(c, formationServed, floor) {
		return fmt.Sprintf("cell %q: %s (formation %q served: %v) with its last event %d below the floor %d: the retention rule removes it",
			c.ID, c.State, c.FormationID, formationServed, c.LastEvent, floor)
	}
	return ""
}

// prunedCounts reports whether c can count pruned cells: some, all ended
// (none admitted or running), each completed, failed or destroyed.
func prunedCounts(c projection.CellCounts) bool {
	ended := c.Completed + c.Failed
	return c.Total > 0 && c.Admitted == 0 && c.Running == 0 && c.Destroyed >= 0 && ended >= 0 &&
		c.Destroyed <= c.Total && ended <= c.Total && c.Destroyed+ended >= c.Total
}
