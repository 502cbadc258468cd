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
// tenant's aggregate — and lists up to most places where the stored ones
// differ. The lists and summaries are answered from those, so a state
// whose records equal a fold of the stream and whose Check is empty
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
	_ = v.tx.Bucket(bucketCells).ForEach(func(k, rec []byte) error {
		c, err := decodeCell(string(k), rec, v.names)
		if err != nil {
			add("cell %q: %v", k, err)
			return nil
		}
		ck := keysOfCell(&c)
		expect(cellIndexes(c.ID, ck))
		agg(ck.tenant).countCell(ck.class, 1)
		if ck.formation != "" {
			if counts[ck.formation] == nil {
				counts[ck.formation] = &projection.CellCounts{}
			}
			countClass(counts[ck.formation], ck.class, 1)
		}
		return nil
	})
	_ = v.tx.Bucket(bucketFormations).ForEach(func(k, rec []byte) error {
		f, err := decodeFormation(string(k), rec, v.names)
		if err != nil {
			add("formation %q: %v", k, err)
			return nil
		}
		fk := keysOfFormation(&f)
		expect(formIndexes(f.ID, fk))
		if fk.live {
			agg(fk.tenant).formations[fk.status]++
		}
		return nil
	})
	for _, name := range []string{string(bucketCellByTenant), string(bucketCellByFormation), string(bucketCellByClass), string(bucketFormByTenant), string(bucketFormByStatus)} {
		keys := want[name]
		_ = v.tx.Bucket([]byte(name)).ForEach(func(k, _ []byte) error {
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
		got, err := decodeCounts(rec)
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
		if !bytes.Equal(rec, w.encode()) {
			got, err := decodeAggregate(rec)
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
