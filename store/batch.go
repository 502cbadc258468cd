package store

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"cellos-allinone/projection"
)

// DefaultCacheEntities and DefaultCacheBytes bound the entities a Batch
// keeps in memory after they were committed (the recently used ones, which
// the next events most likely touch again): by count, and by their size —
// an entity may carry a compliance summary of up to an event's size.
const (
	DefaultCacheEntities = 50_000
	DefaultCacheBytes    = 32 << 20
)

// Batch is the write side of a Store and a projection.State: the fold
// changes entities here, in memory, and Commit writes every change with
// the position it belongs to in one transaction — so the file always
// holds the state of one cursor. Entities the fold reads are loaded from
// the file once and kept while they are used. A Batch belongs to one
// goroutine.
type Batch struct {
	s      *Store
	epoch  string
	meta   projection.Meta
	cells  map[string]*cellSlot
	forms  map[string]*formSlot
	dCells []*cellSlot // changed since the last commit
	dForms []*formSlot
	// joined lists, per formation id, the cells that got that formationId
	// since the last commit: the ones its index range does not hold yet.
	joined map[string][]string
	rtx    *bolt.Tx // for loads; never open during a commit
	gen    uint64   // commits so far: the age of cached entities
	limit  int      // entities cached after a commit
	// bytes is the size of the cached entities (slotSize), limitBytes its
	// bound after a commit.
	bytes, limitBytes int
	// floor is the stream's first sequence as last told (SetFloor): the
	// next commit prunes at it, at most pruneLimit entities of it.
	floor      uint64
	pruneLimit int
}

type cellSlot struct {
	c       projection.Cell
	size    int      // what it holds in memory, about (cellSize)
	exists  bool     // c is an entity (not a cached absence)
	stored  cellKeys // where the file has it filed, when inStore
	inStore bool
	dirty   bool
	used    uint64
	// lastEvent is the file's c.LastEvent, when inStore: where ix-ended
	// may file it.
	lastEvent uint64
}

type formSlot struct {
	f       projection.Formation
	size    int
	exists  bool
	stored  formKeys
	inStore bool
	dirty   bool
	used    uint64
	// ended is the file's ix-ended key of f, when inStore (nil: none).
	ended []byte
}

// Batch starts the write side at the position the file holds. Only one
// Batch may write a Store.
func (s *Store) Batch() (*Batch, error) {
	cp, _, err := s.Info()
	if err != nil {
		return nil, err
	}
	return &Batch{
		s: s, epoch: cp.Epoch, meta: cp.Meta,
		cells: map[string]*cellSlot{}, forms: map[string]*formSlot{}, joined: map[string][]string{},
		limit: DefaultCacheEntities, limitBytes: DefaultCacheBytes, pruneLimit: DefaultPruneLimit,
	}, nil
}

// Meta implements projection.State.
func (b *Batch) Meta() *projection.Meta { return &b.meta }

// Epoch is the stream incarnation the state is a fold of.
func (b *Batch) Epoch() string { return b.epoch }

// Pending is how many entities changed since the last commit.
func (b *Batch) Pending() int { return len(b.dCells) + len(b.dForms) }

func (b *Batch) readTx() (*bolt.Tx, error) {
	if b.rtx == nil {
		floor := b.s.txFloor()
		if err := b.s.metaOK(); err != nil {
			return nil, err
		}
		tx, err := b.s.db.Begin(false)
		if err != nil {
			return nil, err
		}
		if err := b.s.checkTx(tx, floor); err != nil {
			_ = tx.Rollback()
			return nil, err
		}
		b.rtx = tx
	}
	return b.rtx, nil
}

func (b *Batch) closeReadTx() {
	if b.rtx != nil {
		_ = b.rtx.Rollback()
		b.rtx = nil
	}
}

// load reads one record; a damaged file panics on the mapped read, which
// is turned into an error.
func (b *Batch) load(bucket []byte, id string) (rec []byte, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer guard(&err)
	tx, err := b.readTx()
	if err != nil {
		return nil, err
	}
	bk := tx.Bucket(bucket)
	if rec = bk.Get([]byte(id)); rec == nil {
		// A garbled key would make the fold start the entity afresh.
		err = vouchAbsent(bk, idKey(id))
	}
	return rec, err
}

// LoadCell implements projection.State.
func (b *Batch) LoadCell(id string) (projection.Cell, bool) {
	sl := b.cells[id]
	if sl == nil {
		sl = &cellSlot{}
		rec, err := b.load(bucketCells, id)
		if err != nil {
			panic(fmt.Errorf("store: read cell %q: %w", id, err))
		}
		if rec != nil {
			c, err := decodeCell(id, rec, b.s.keys.Load().snapshot())
			if err != nil {
				panic(fmt.Errorf("store: %w", err))
			}
			sl.c, sl.exists, sl.stored, sl.inStore, sl.lastEvent = c, true, keysOfCell(&c), true, c.LastEvent
		}
		b.resizeCell(sl)
		b.cells[id] = sl
	}
	sl.used = b.gen
	return sl.c, sl.exists
}

// SaveCell implements projection.State.
func (b *Batch) SaveCell(c projection.Cell) {
	sl := b.cells[c.ID]
	if sl == nil {
		sl = &cellSlot{}
		b.cells[c.ID] = sl
	}
	if sl.c.FormationID == "" && c.FormationID != "" {
		// A formationId is set once: the committed index cannot hold it.
		b.joined[c.FormationID] = append(b.joined[c.FormationID], c.ID)
	}
	sl.c, sl.exists, sl.used = c, true, b.gen
	b.resizeCell(sl)
	if !sl.dirty {
		sl.dirty = true
		b.dCells = append(b.dCells, sl)
	}
}

// LoadFormation implements projection.State.
func (b *Batch) LoadFormation(id string) (projection.Formation, bool) {
	sl := b.forms[id]
	if sl == nil {
		sl = &formSlot{}
		rec, err := b.load(bucketFormations, id)
		if err != nil {
			panic(fmt.Errorf("store: read formation %q: %w", id, err))
		}
		if rec != nil {
			f, err := decodeFormation(id, rec, b.s.keys.Load().snapshot())
			if err != nil {
				panic(fmt.Errorf("store: %w", err))
			}
			sl.f, sl.exists, sl.stored, sl.inStore, sl.ended = f, true, keysOfFormation(&f), true, formationEnded(&f)
		}
		b.resizeFormation(sl)
		b.forms[id] = sl
	}
	sl.used = b.gen
	return sl.f, sl.exists
}

// FormationCells implements projection.State: the cells the file files
// under the formation (its ix-cell-formation range, every class) and those
// that joined it since the last commit. A formation without committed
// cells costs one read of its counts; one with some, a range per class.
func (b *Batch) FormationCells(id string) []string {
	ids, err := b.committedCells(id)
	if err != nil {
		panic(fmt.Errorf("store: read the cells of formation %q: %w", id, err))
	}
	return append(ids, b.joined[id]...)
}

func (b *Batch) committedCells(id string) (ids []string, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer guard(&err)
	tx, err := b.readTx()
	if err != nil {
		return nil, err
	}
	if counts := tx.Bucket(bucketCounts); counts.Get([]byte(id)) == nil {
		return nil, vouchAbsent(counts, idKey(id)) // no committed cell counts in it
	}
	var prefixes [][]byte
	for _, cl := range classes("", "") {
		prefixes = append(prefixes, group(id, cl))
	}
	ids, _, err = scan(tx.Bucket(bucketCellByFormation), prefixes, "", "", math.MaxInt, nil)
	return ids, err
}

// SaveFormation implements projection.State.
func (b *Batch) SaveFormation(f projection.Formation) {
	f.Cells = projection.CellCounts{} // derived, kept apart
	sl := b.forms[f.ID]
	if sl == nil {
		sl = &formSlot{}
		b.forms[f.ID] = sl
	}
	sl.f, sl.exists, sl.used = f, true, b.gen
	b.resizeFormation(sl)
	if !sl.dirty {
		sl.dirty = true
		b.dForms = append(b.dForms, sl)
	}
}

// slotOverhead is what a cached slot costs beside its strings and JSON:
// the slot, the entity's fixed fields, the map entry.
const slotOverhead = 256

// resizeCell and resizeFormation keep b.bytes in step with what a slot
// holds.
func (b *Batch) resizeCell(sl *cellSlot) {
	c := &sl.c
	n := slotOverhead + 2*len(c.ID) + len(c.FormationID) + len(c.TenantID) + len(c.SpecID) + len(c.RunID) +
		len(c.Reason) + len(c.Correlation) + len(c.Compliance)
	b.bytes += n - sl.size
	sl.size = n
}

func (b *Batch) resizeFormation(sl *formSlot) {
	f := &sl.f
	n := slotOverhead + 2*len(f.ID) + len(f.Name) + len(f.TenantID)
	for k, v := range f.Labels {
		n += len(k) + len(v) + 32
	}
	b.bytes += n - sl.size
	sl.size = n
}

// SetFloor tells the batch the stream's first sequence: the next commit
// prunes what the retention rule removes at it (prune.go). A lower floor
// than one told before changes nothing.
func (b *Batch) SetFloor(floor uint64) { b.floor = max(b.floor, floor) }

// PruneDue reports whether a commit would prune, even with nothing else
// pending: a floor was told above the one the file was last pruned at,
// and the file files an entity below it. (A floor that prunes nothing is
// recorded by the next commit that writes anyway.)
func (b *Batch) PruneDue() bool {
	if b.floor <= b.meta.Pruned.Floor {
		return false
	}
	k, err := b.firstEnded()
	if err != nil {
		panic(fmt.Errorf("store: read ix-ended: %w", err))
	}
	return len(k) >= 8 && binary.BigEndian.Uint64(k) < b.floor
}

func (b *Batch) firstEnded() (k []byte, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer guard(&err)
	tx, err := b.readTx()
	if err != nil {
		return nil, err
	}
	k, _ = tx.Bucket(bucketEnded).Cursor().First()
	return k, nil
}

// SetPruneLimit bounds the entities one commit prunes (DefaultPruneLimit).
func (b *Batch) SetPruneLimit(n int) { b.pruneLimit = max(n, 1) }

// Commit writes every change since the last commit, the derived counts,
// indexes and aggregates that follow from them, and the position, in one
// bbolt transaction (fsynced); in the same transaction it prunes at the
// floor (SetFloor). On an error nothing of it is written: the changes stay
// pending and go into the next commit. A commit with nothing changed still
// records the position when it moved.
func (b *Batch) Commit(at time.Time) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer guard(&err)
	b.closeReadTx()
	var keysWritten func()
	var pr pruning
	floor := b.s.txFloor()
	var commit uint64
	err = b.s.update(func(tx *bolt.Tx) error {
		// Never on top of an older commit than the last (txfloor.go).
		if err := b.s.checkTx(tx, floor); err != nil {
			return err
		}
		commit = uint64(tx.ID())
		if pr, err = b.write(tx, at); err != nil {
			return err
		}
		// After the records: they may have numbered new keys.
		keysWritten, err = b.s.keys.Load().persist(tx)
		return err
	})
	if err != nil {
		return err
	}
	b.s.sawTx(commit)
	keysWritten()
	for _, sl := range b.dCells {
		sl.stored, sl.inStore, sl.dirty, sl.lastEvent = keysOfCell(&sl.c), true, false, sl.c.LastEvent
	}
	for _, sl := range b.dForms {
		sl.stored, sl.inStore, sl.dirty, sl.ended = keysOfFormation(&sl.f), true, false, formationEnded(&sl.f)
	}
	b.dCells, b.dForms = b.dCells[:0], b.dForms[:0]
	b.forget(pr)
	b.meta.Pruned = pr.meta
	clear(b.joined)
	b.gen++
	b.evict()
	return nil
}

func (b *Batch) write(tx *bolt.Tx, at time.Time) (pruning, error) {
	w := newWriter(tx, b.s.keys.Load(), func(id string) bool { return b.served(tx, id) })
	// In key order: bbolt appends to a node instead of shifting it. The
	// formations first: a cell's filing in ix-ended depends on whether its
	// formation is served.
	slices.SortFunc(b.dCells, func(x, y *cellSlot) int { return strings.Compare(x.c.ID, y.c.ID) })
	slices.SortFunc(b.dForms, func(x, y *formSlot) int { return strings.Compare(x.f.ID, y.f.ID) })
	for _, sl := range b.dForms {
		if err := w.formation(sl); err != nil {
			return pruning{}, err
		}
	}
	for _, sl := range b.dCells {
		if err := w.cell(sl); err != nil {
			return pruning{}, err
		}
	}
	if err := w.flush(); err != nil {
		return pruning{}, err
	}
	if err := w.refile(); err != nil {
		return pruning{}, err
	}
	pr, err := w.prune(max(b.floor, b.meta.Pruned.Floor), b.meta.Pruned, b.pruneLimit)
	if err != nil {
		return pruning{}, err
	}
	if err := w.flush(); err != nil {
		return pruning{}, err
	}
	meta := b.meta
	meta.Pruned = pr.meta
	return pr, putMeta(tx, b.epoch, meta, at)
}

// served reports whether formation id is held and not deleted, as this
// commit leaves it: the batch's copy when it has one (every formation the
// commit writes), else the file's.
func (b *Batch) served(tx *bolt.Tx, id string) bool {
	if sl := b.forms[id]; sl != nil {
		return sl.exists && !sl.f.Deleted
	}
	return servedIn(tx, id)
}

// forget drops what a commit pruned from the batch's cache (and its size
// from the cache's bytes): the entities are gone, as from the file.
func (b *Batch) forget(pr pruning) {
	for _, id := range pr.formations {
		if sl := b.forms[id]; sl != nil {
			b.bytes -= sl.size
			delete(b.forms, id)
		}
	}
	for _, id := range pr.cells {
		if sl := b.cells[id]; sl != nil {
			b.bytes -= sl.size
			delete(b.cells, id)
		}
	}
}

// evict drops clean entities unused since the last commit when the cache
// holds more than its limits (entities or bytes), then, if still over,
// every clean one.
func (b *Batch) evict() {
	over := func() bool { return len(b.cells)+len(b.forms) > b.limit || b.bytes > b.limitBytes }
	if !over() {
		return
	}
	for _, cutoff := range []uint64{b.gen - 1, b.gen + 1} {
		for id, sl := range b.cells {
			if !sl.dirty && sl.used < cutoff {
				b.bytes -= sl.size
				delete(b.cells, id)
			}
		}
		for id, sl := range b.forms {
			if !sl.dirty && sl.used < cutoff {
				b.bytes -= sl.size
				delete(b.forms, id)
			}
		}
		if !over() {
			return
		}
	}
}

// CachedBytes is what the cached entities hold in memory, about.
func (b *Batch) CachedBytes() int { return b.bytes }

// Close ends the batch's read transaction; pending changes are dropped.
func (b *Batch) Close() { b.closeReadTx() }

// Release ends the batch's read transaction, which closing its store's
// file (SwapIn) waits for; the batch goes on, its next read opens
// another. After a SwapIn, whose new file holds the state the batch last
// committed, its cached entities are still right.
func (b *Batch) Release() { b.closeReadTx() }
