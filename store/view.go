package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"strings"

	bolt "go.etcd.io/bbolt"

	"cellos-allinone/projection"
)

// View is one consistent read of the state: the entities, their indexes
// and aggregates, and the position (cursor, epoch) they belong to, all as
// of one commit. It implements projection.Reader and is valid only inside
// the function given to Store.View.
type View struct {
	tx    *bolt.Tx
	cp    Checkpoint
	names []string // the key table, for decoding
	err   error    // the first damaged record met; Store.View returns it

	untenantedRead bool // cp.Meta.Counters.UntenantedOfTenant is read
}

// View calls fn with a read of the last commit. A damaged record met on
// the way is returned as the error (ErrDamaged). Only the View's own reads
// turn a panic into damage — bbolt panics on a page it cannot make sense
// of, and a fault in the mapped file panics too (SetPanicOnFault) — while
// a panic of fn's own code stays a panic.
func (s *Store) View(fn func(*View) error) error {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	floor := s.txFloor()
	if err := s.metaOK(); err != nil {
		return err
	}
	return s.db.View(func(tx *bolt.Tx) error {
		if err := s.checkTx(tx, floor); err != nil {
			return err
		}
		v := &View{tx: tx, names: s.keys.Load().snapshot()}
		if err := v.readInfo(); err != nil {
			return err
		}
		if err := fn(v); err != nil {
			return err
		}
		return v.err
	})
}

func (v *View) readInfo() (err error) {
	defer guard(&err)
	v.cp, _, err = readInfo(v.tx)
	return err
}

func (v *View) fail(err error) {
	if v.err == nil {
		v.err = err
	}
}

// recoverDamage ends a View method that met a page bbolt could not read:
// the method returns its zero values and View returns the damage.
func (v *View) recoverDamage() {
	if r := recover(); r != nil {
		v.fail(fmt.Errorf("%w: %v", ErrDamaged, r))
	}
}

// Epoch is the stream incarnation the state is a fold of.
func (v *View) Epoch() string { return v.cp.Epoch }

// Cursor implements projection.Reader.
func (v *View) Cursor() uint64 { return v.cp.Meta.Cursor }

// CursorID identifies the message at the cursor.
func (v *View) CursorID() string { return v.cp.Meta.CursorID }

// Counters implements projection.Reader. The untenanted-form counts are
// read at the first call: most reads never ask.
func (v *View) Counters() projection.Counters {
	if !v.untenantedRead {
		v.untenantedRead = true
		func() {
			defer v.recoverDamage()
			m, err := readUntenanted(v.tx)
			if err != nil {
				v.fail(fmt.Errorf("%w: %w", ErrDamaged, err))
			}
			v.cp.Meta.Counters.UntenantedOfTenant = m
		}()
	}
	return v.cp.Meta.Counters.Clone()
}

// Gaps implements projection.Reader.
func (v *View) Gaps() []projection.Gap { return append([]projection.Gap(nil), v.cp.Meta.Gaps...) }

// Pruned implements projection.Reader.
func (v *View) Pruned() projection.Pruned { return v.cp.Meta.Pruned }

// Cell implements projection.Reader.
func (v *View) Cell(id string) (_ projection.Cell, _ bool) {
	defer v.recoverDamage()
	b := v.tx.Bucket(bucketCells)
	rec := b.Get([]byte(id))
	if rec == nil {
		v.absent(b, id)
		return projection.Cell{}, false
	}
	c, err := decodeCell(id, rec, v.names)
	if err != nil {
		v.fail(err)
		return projection.Cell{}, false
	}
	return c, true
}

// absent vouches for a point read of id in the record bucket b that
// found nothing (vouchAbsent).
func (v *View) absent(b *bolt.Bucket, id string) {
	if err := vouchAbsent(b, idKey(id)); err != nil {
		v.fail(err)
	}
}

// vouchAbsent vouches for a point read of key in the sealed bucket b
// that found nothing. bbolt's search trusts the keys it meets to be
// ordered: a garbled key in a leaf sits where the search for the key it
// was ends, at the key found or the one before it, and one in a branch
// page sends the search to a neighbouring leaf, whose first or last key
// that is. So both are read: a seal that does not hold, or a key on the
// wrong side of key, is damage, not an absence (the scrub finds any
// garbled key elsewhere). The write side asks it too: a record, count or
// aggregate it reads as absent would be written afresh, sealed, over
// what the log says.
func vouchAbsent(b *bolt.Bucket, key []byte) error {
	c := b.Cursor()
	k, val := c.Seek(key)
	if k != nil {
		if _, ok := unseal(k, val); !ok || bytes.Compare(k, key) <= 0 {
			return fmt.Errorf("key %q (reading %q): %w: the key where it would be is not sealed or out of order", k, key, ErrDamaged)
		}
	}
	if err := checkKeyBefore(b, key); err != nil {
		return fmt.Errorf("reading %q: %w", key, err)
	}
	return nil
}

// checkKeyBefore checks the key before where key is, or would be, in the
// sealed bucket b: its seal holds and it sorts below key, or ErrDamaged.
// bbolt finds key by binary search over keys it trusts to be ordered, so
// a garbled key can end the search on the wrong side of it; the key at
// the end and the one before are what show it (vouchAbsent, scan). The key
// before is read from a cursor of its own: one moved back from a range's
// first key is not one to go on with.
func checkKeyBefore(b *bolt.Bucket, key []byte) error {
	c := b.Cursor()
	var k, val []byte
	if at, _ := c.Seek(key); at != nil {
		k, val = c.Prev()
	} else {
		k, val = c.Last()
	}
	if k == nil {
		return nil
	}
	if _, ok := unseal(k, val); !ok {
		return fmt.Errorf("key %q: %w: checksum mismatch (the key before %q)", k, ErrDamaged, key)
	}
	if bytes.Compare(k, key) >= 0 {
		return fmt.Errorf("key %q: %w: out of order (the key before %q)", k, ErrDamaged, key)
	}
	return nil
}

// readCounts reads a formation's counts from bucket b (fcounts,
// fpruned): none is zero counts, once vouched for.
func readCounts(b *bolt.Bucket, id string) (projection.CellCounts, error) {
	rec := b.Get(idKey(id))
	if rec == nil {
		if err := vouchAbsent(b, idKey(id)); err != nil {
			return projection.CellCounts{}, err
		}
	}
	return decodeCounts(id, rec)
}

// formation reads one formation as served: with its counts, labels never
// null. Tombstones are returned too (Deleted set).
func (v *View) formation(id string) (projection.Formation, bool) {
	b := v.tx.Bucket(bucketFormations)
	rec := b.Get([]byte(id))
	if rec == nil {
		v.absent(b, id)
		return projection.Formation{}, false
	}
	return v.formationOf(id, rec)
}

// formationOf decodes formation id from its record rec, with its served
// counts.
func (v *View) formationOf(id string, rec []byte) (projection.Formation, bool) {
	f, err := decodeFormation(id, rec, v.names)
	if err != nil {
		v.fail(err)
		return projection.Formation{}, false
	}
	// The served counts: the cells held, and the pruned ones it counts.
	// A formation without counts has none (no cells, none pruned): an
	// absence vouched for, as a garbled key would read as one.
	if f.Cells, err = readCounts(v.tx.Bucket(bucketCounts), id); err == nil {
		f.PrunedCells, err = readCounts(v.tx.Bucket(bucketPrunedCounts), id)
	}
	if err != nil {
		v.fail(fmt.Errorf("formation %q: %w", id, err))
		return projection.Formation{}, false
	}
	f.Cells.Plus(f.PrunedCells)
	if f.Labels == nil {
		f.Labels = map[string]string{}
	}
	return f, true
}

// Formation implements projection.Reader: a live formation. Its cells
// are a page of Cells with a CellFilter of its id: an index scan bounded
// by the page.
func (v *View) Formation(id string) (_ projection.Formation, _ bool) {
	defer v.recoverDamage()
	f, ok := v.formation(id)
	if !ok || f.Deleted {
		return projection.Formation{}, false
	}
	return f, true
}

// Formations implements projection.Reader: live formations ordered by id,
// through the tenant or status index when filtered.
func (v *View) Formations(fl projection.FormationFilter, pg projection.Page) (_ []projection.Formation, _ string) {
	defer v.recoverDamage()
	limit := pageLimit(pg.Limit)
	sts := statuses(fl.Status)
	if len(sts) == 0 {
		return []projection.Formation{}, "" // a status no formation has
	}
	var ids []string
	var more bool
	var err error
	indexed := false // through an index: a formation it lists must be filed there
	switch {
	case fl.Tenant != "":
		var prefixes [][]byte
		for _, st := range sts {
			prefixes = append(prefixes, group(fl.Tenant, st))
		}
		ids, more, err = scan(v.tx.Bucket(bucketFormByTenant), prefixes, pg.After, fl.Prefix, limit, nil)
		indexed = true
	case fl.Status != "":
		ids, more, err = scan(v.tx.Bucket(bucketFormByStatus), [][]byte{sts}, pg.After, fl.Prefix, limit, nil)
		indexed = true
	default:
		ids, more, err = scan(v.tx.Bucket(bucketFormations), [][]byte{nil}, pg.After, fl.Prefix, limit, func(id string, rec []byte) bool {
			// Not a tombstone (scan checked the seal); a record too short
			// to tell is read, and reported as damaged, rather than
			// skipped.
			return len(rec) <= 2 || rec[2] == 0
		})
	}
	if err != nil {
		v.fail(err)
		return []projection.Formation{}, ""
	}
	out := make([]projection.Formation, 0, len(ids))
	for _, id := range ids {
		f, ok := v.formation(id)
		if v.err != nil {
			return []projection.Formation{}, ""
		}
		if indexed && (!ok || f.Deleted || fl.Tenant != "" && f.TenantID != fl.Tenant || bytes.IndexByte(sts, keysOfFormation(&f).status) < 0) {
			// An index entry whose seal holds but whose record does not
			// file it there: the state contradicts itself.
			v.fail(fmt.Errorf("formation %q: %w: indexed as tenant %q, status in %v; its record: found %v, %+v", id, ErrDamaged, fl.Tenant, sts, ok, keysOfFormation(&f)))
			return []projection.Formation{}, ""
		}
		if ok {
			out = append(out, f)
		}
	}
	return out, next(ids, more)
}

// Cells implements projection.Reader: cells ordered by id, through the
// formation, tenant or class index when filtered.
func (v *View) Cells(fl projection.CellFilter, pg projection.Page) (_ []projection.Cell, _ string) {
	defer v.recoverDamage()
	limit := pageLimit(pg.Limit)
	cls := classes(fl.State, fl.Outcome)
	if len(cls) == 0 {
		return []projection.Cell{}, "" // a state or outcome no cell has
	}
	grouped := func(name string) [][]byte {
		var out [][]byte
		for _, cl := range cls {
			out = append(out, group(name, cl))
		}
		return out
	}
	var ids []string
	var more bool
	var err error
	// The cells the tenant filter decoded already, kept for the answer.
	var decoded map[string]projection.Cell
	// What the index read files: a cell it lists must have it (and a
	// class in cls). Checked inline, not by a func of the cell: a cell
	// whose address a func value takes is an allocation per cell.
	indexed := false
	switch {
	case fl.Formation != "":
		var accept func(string, []byte) bool
		if fl.Tenant != "" {
			decoded = map[string]projection.Cell{}
			accept = func(id string, _ []byte) bool {
				c, ok := v.Cell(id)
				if !ok && v.err == nil {
					v.fail(fmt.Errorf("cell %q: %w: indexed under formation %q, no record", id, ErrDamaged, fl.Formation))
				}
				if ok && c.TenantID == fl.Tenant {
					decoded[id] = c
					return true
				}
				return false
			}
		}
		ids, more, err = scan(v.tx.Bucket(bucketCellByFormation), grouped(fl.Formation), pg.After, fl.Prefix, limit, accept)
		indexed = true
	case fl.Tenant != "":
		ids, more, err = scan(v.tx.Bucket(bucketCellByTenant), grouped(fl.Tenant), pg.After, fl.Prefix, limit, nil)
		indexed = true
	case fl.State != "" || fl.Outcome != "":
		var prefixes [][]byte
		for _, cl := range cls {
			prefixes = append(prefixes, []byte{cl})
		}
		ids, more, err = scan(v.tx.Bucket(bucketCellByClass), prefixes, pg.After, fl.Prefix, limit, nil)
		indexed = true
	default:
		ids, more, err = scan(v.tx.Bucket(bucketCells), [][]byte{nil}, pg.After, fl.Prefix, limit, nil)
	}
	if err == nil {
		err = v.err // met by accept
	}
	if err != nil {
		v.fail(err)
		return []projection.Cell{}, ""
	}
	out := make([]projection.Cell, 0, len(ids))
	for _, id := range ids {
		c, ok := decoded[id]
		if !ok {
			c, ok = v.Cell(id)
		}
		if v.err != nil {
			return []projection.Cell{}, ""
		}
		if !ok || indexed && (fl.Formation != "" && c.FormationID != fl.Formation || fl.Formation == "" && fl.Tenant != "" && c.TenantID != fl.Tenant ||
			bytes.IndexByte(cls, cellClass(c.State, c.Outcome)) < 0) {
			// An id from the cells bucket always has its record; one from
			// an index whose seal holds but whose record does not file it
			// there means the state contradicts itself.
			v.fail(fmt.Errorf("cell %q: %w: listed (filter %+v) but its record (found %v) is filed elsewhere", id, ErrDamaged, fl, ok))
			return []projection.Cell{}, ""
		}
		out = append(out, c)
	}
	return out, next(ids, more)
}

// Size implements projection.Reader: live formations and cells, from the
// aggregates.
func (v *View) Size() (formations, cells int) {
	defer v.recoverDamage()
	var total aggregate
	for _, a := range v.aggregates() {
		total.add(&a)
	}
	return int(total.liveFormations()), int(total.cells())
}

// Summary implements projection.Reader, from the aggregates: nothing is
// counted entity by entity.
func (v *View) Summary(tenant string) (_ projection.Summary) {
	defer v.recoverDamage()
	return summary(v.aggregates(), tenant)
}

func (v *View) aggregates() map[string]aggregate {
	out := map[string]aggregate{}
	_ = v.tx.Bucket(bucketAggregates).ForEach(func(k, rec []byte) error {
		a, err := decodeAggregate(k, rec)
		if err == nil && len(k) == 0 {
			err = fmt.Errorf("tenant aggregate with an empty key: %w", ErrDamaged)
		}
		if err != nil {
			v.fail(err)
			return nil
		}
		out[string(k[1:])] = a
		return nil
	})
	return out
}

// Dump implements projection.Reader: every formation (tombstones
// included) and every cell, ordered by id — the same encoding as a
// projection.Projection's, so that the two compare byte for byte. It
// walks as the state hash does (EachFormation, EachCell): a key out of
// order is damage, not a record read through it and one skipped.
func (v *View) Dump() (_ []byte) {
	defer v.recoverDamage()
	type entry struct {
		Formations []projection.Formation `json:"formations"`
		Cells      []projection.Cell      `json:"cells"`
	}
	var d entry
	// Damage is v's error (View returns it); nothing else ends a walk.
	_ = v.EachFormation(func(f projection.Formation) error { d.Formations = append(d.Formations, f); return nil })
	_ = v.EachCell(func(c projection.Cell) error { d.Cells = append(d.Cells, c); return nil })
	b, err := json.Marshal(d)
	if err != nil {
		v.fail(fmt.Errorf("encode the state: %w", err))
	}
	return b
}

func pageLimit(limit int) int {
	if limit <= 0 || limit > projection.MaxLimit {
		return projection.MaxLimit
	}
	return limit
}

func next(ids []string, more bool) string {
	if !more || len(ids) == 0 {
		return ""
	}
	return ids[len(ids)-1]
}

// scan returns, in id order, up to limit ids greater than after and
// starting with idPrefix, from the union of the key ranges of b that
// start with one of prefixes (each key is a prefix and an id; a nil
// prefix is the whole bucket, keyed by id), and whether more follow.
// accept, when set, sees each id with its value and may leave it out.
//
// b is a sealed bucket (seal.go): a record bucket, whose values are
// sealed under their key, or an index, whose values are their key's seal.
// Every key the scan meets — the one that ends a range too, which a
// garbled key could end early — must have a value whose seal holds, or the
// scan is ErrDamaged and returns no id. bbolt finds where a range starts
// by binary search over keys it trusts to be ordered; a garbled key (in a
// leaf or a branch page) can send the search past keys that belong to the
// range. So the key before the one found is checked too: sealed, and
// below where the range starts, or ErrDamaged; and the key found must not
// be below it.
func scan(b *bolt.Bucket, prefixes [][]byte, after, idPrefix string, limit int, accept func(id string, val []byte) bool) (ids []string, more bool, err error) {
	type head struct {
		c      *bolt.Cursor
		prefix []byte
		id     string
		val    []byte
		ok     bool
	}
	damaged := func(k []byte, why string) {
		if err == nil {
			err = fmt.Errorf("key %q: %w: %s", k, ErrDamaged, why)
		}
	}
	advance := func(h *head, k, val []byte) {
		for ; k != nil; k, val = h.c.Next() {
			if _, ok := unseal(k, val); !ok {
				damaged(k, "checksum mismatch")
				break
			}
			if !bytes.HasPrefix(k, h.prefix) {
				break
			}
			id := string(k[len(h.prefix):])
			if id <= after {
				continue
			}
			if !strings.HasPrefix(id, idPrefix) {
				break // ids are ordered: none further has the prefix
			}
			h.id, h.val, h.ok = id, val, true
			return
		}
		h.ok = false
	}
	start := after
	if idPrefix > start {
		start = idPrefix
	}
	heads := make([]*head, 0, len(prefixes))
	for _, p := range prefixes {
		h := &head{c: b.Cursor(), prefix: p}
		from := append(append([]byte(nil), p...), start...)
		k, val := h.c.Seek(from)
		if k != nil && bytes.Compare(k, from) < 0 {
			// A branch key garbled upwards sends the search one leaf
			// early; bbolt then steps to the next leaf and returns its
			// first key, below from: the range would read as empty.
			damaged(k, "below where the range starts")
		}
		if e := checkKeyBefore(b, from); e != nil && err == nil {
			err = e
		}
		advance(h, k, val)
		heads = append(heads, h)
	}
	for {
		var lowest *head
		for _, h := range heads {
			if h.ok && (lowest == nil || h.id < lowest.id) {
				lowest = h
			}
		}
		if err != nil {
			return nil, false, err
		}
		if lowest == nil {
			return ids, false, nil
		}
		if accept == nil || accept(lowest.id, lowest.val) {
			if len(ids) == limit {
				return ids, true, nil
			}
			ids = append(ids, lowest.id)
		}
		k, val := lowest.c.Next()
		advance(lowest, k, val)
	}
}

var _ projection.Reader = (*View)(nil)

// Entities returns the served registry as comparable records, the form
// projection.DiffEntities compares with a reference fold. It walks as
// Dump does.
func (v *View) Entities() (e projection.Entities) {
	e = projection.NewEntities()
	defer v.recoverDamage()
	_ = v.EachFormation(func(f projection.Formation) error {
		if !f.Deleted {
			e.AddFormation(f)
		}
		return nil
	})
	_ = v.EachCell(func(c projection.Cell) error { e.AddCell(c); return nil })
	return e
}

// Registry returns every entity the state holds, tombstones included,
// with their spans: the whole state in memory, for snapshot verify. It
// walks as Dump does.
func (v *View) Registry() (r projection.Registry) {
	r = projection.Registry{Formations: map[string]projection.Formation{}, Cells: map[string]projection.Cell{}}
	defer v.recoverDamage()
	_ = v.EachFormation(func(f projection.Formation) error { r.Formations[f.ID] = f; return nil })
	_ = v.EachCell(func(c projection.Cell) error { r.Cells[c.ID] = c; return nil })
	return r
}

// EachFormation implements projection.Walker: every formation record in
// key order, which is id order, with its served counts; tombstones too.
// A record whose seal does not hold, or a key out of order (a garbled key
// bbolt's cursor walks past), ends the walk with ErrDamaged.
func (v *View) EachFormation(fn func(projection.Formation) error) error {
	return each(v, bucketFormations, func(id string, rec []byte) (projection.Formation, bool) {
		return v.formationOf(id, rec)
	}, fn)
}

// EachCell implements projection.Walker: every cell record in id order.
func (v *View) EachCell(fn func(projection.Cell) error) error {
	return each(v, bucketCells, func(id string, rec []byte) (projection.Cell, bool) {
		c, err := decodeCell(id, rec, v.names)
		if err != nil {
			v.fail(err)
		}
		return c, err == nil
	}, fn)
}

// each calls fn with every record of the bucket name, decoded, checking
// that the keys ascend; damage, or fn's first error, ends it. Only the
// View's own reads — the cursor and the decoding — turn a panic into
// damage (as View says): a panic of fn stays one.
func each[E any](v *View, name []byte, decode func(id string, rec []byte) (E, bool), fn func(E) error) error {
	var c *bolt.Cursor
	var prev []byte
	step := func() (e E, ok bool) {
		defer v.recoverDamage()
		var k, rec []byte
		if c == nil {
			c = v.tx.Bucket(name).Cursor()
			k, rec = c.First()
		} else {
			k, rec = c.Next()
		}
		if k == nil {
			return e, false
		}
		if prev != nil && bytes.Compare(prev, k) >= 0 {
			v.fail(fmt.Errorf("key %q after %q in %s: %w: out of order", k, prev, name, ErrDamaged))
			return e, false
		}
		prev = append(prev[:0], k...)
		return decode(string(k), rec)
	}
	for {
		e, ok := step()
		if v.err != nil {
			return v.err
		}
		if !ok {
			return nil
		}
		if err := fn(e); err != nil {
			return err
		}
	}
}

var _ projection.Walker = (*View)(nil)
