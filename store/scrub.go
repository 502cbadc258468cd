package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"cellos-allinone/projection"
)

// The scrub reads the whole state and checks what reads only check where
// they go (docs/durability.md, "The scrub"): an entry no read meets — a
// record whose key was garbled, an index entry whose record is gone, a
// record missing one of its index entries, counts and aggregates that no
// longer match what they count, keys out of order — is found within one
// pass, not when a client happens to ask.
//
// A pass runs in steps. Each step is one short read transaction over a
// bounded run of keys of one bucket (DefaultScrubStepKeys keys or
// DefaultScrubStepTime, whichever comes first) and the next step resumes
// after the last key checked: the fold commits between two steps, and
// within a step everything read is one commit, so a concurrent commit is
// never taken for damage. What a step checks of a key it checks against
// that one commit: a record's seal and decoding, each index key it must
// be filed under (formationFiling, cellFiling: the rules Check and the
// writer use) and that key's seal; an index key's seal, and that the
// record it names files it under exactly that key; a formation's cell
// counts against its ix-cell-formation range; the retention rule. Two
// parts are one transaction each: the tenant aggregates against the
// index keys that carry tenant and class or status (ix-formation-tenant,
// ix-cell-tenant: one walk of keys, no record read), and bbolt's own
// consistency check (Tx.Check), which runs in a write transaction — on a
// read transaction it reads the free list that commits change — so the
// fold's next commit waits for it.
//
// The cost is bounded by a budget, a share of one core: after a step of
// duration d the pass sleeps d·(1/budget − 1), so the steps take at most
// budget of the pass's wall time. d is the step's wall time, which is at
// least its CPU time: the bound holds on average however loaded the
// machine is. A long transaction has a price beyond its CPU time: while
// a read transaction is open, a commit that must grow the file's memory
// mapping (bbolt remaps when the file outgrows it) waits for it. The
// mapping is made 1 GiB at open (initialMmapSize), so that is rare, and
// steps are a few milliseconds; the two single transactions are the
// longest (figures in docs/benchmarks.md, "Scrub").

// Defaults of ScrubOptions.
const (
	DefaultScrubBudget   = 0.05
	DefaultScrubStepKeys = 1000
	DefaultScrubStepTime = 5 * time.Millisecond
	DefaultScrubDamage   = 10
)

// ErrFileChanged ends a scrub pass whose store opened another state (a
// repair or a rebuild swapped in, a file started over): the pass checked
// part of a state that is no longer served. A compaction's swap brings
// the same commit in another file: the pass goes on in it, after the last
// key it checked.
var ErrFileChanged = errors.New("the state file was replaced during the scrub pass")

// ScrubOptions tune a pass; zero values are the defaults.
type ScrubOptions struct {
	// Budget is the share of one core the pass may use, paced by sleeps
	// between steps; 1 or more: no pause (a whole pass at full speed).
	Budget float64
	// StepKeys and StepTime bound one step (one read transaction).
	StepKeys int
	StepTime time.Duration
	// MostDamage: the descriptions a report keeps (every damage is
	// counted).
	MostDamage int
	// Hold, when set, runs each step: the caller keeps the file open
	// meanwhile (the projector takes its served lock, as a read does) and
	// may make the step wait. An error ends the pass with it.
	Hold func(step func()) error
	// OnStep, when set, is told each step's figures after it ran.
	OnStep func(ScrubStep)
	// Checking, when set, is told before bbolt's check (and the bound of
	// its pages, see bolt) starts (true) and after it ended (false): the
	// caller keeps a durable mark of a check
	// under way, so that a run that dies in it is not made to run it
	// again (SkipCheck).
	Checking func(on bool)
	// SkipCheck: do not run bbolt's check; report it as damage (the last
	// run died in it), which asks for a repair.
	SkipCheck bool
}

// ScrubStep is what one step checked and found.
type ScrubStep struct {
	// Part is the bucket the step walked, or "meta", "aggregates",
	// "bbolt" for the parts that are one transaction each.
	Part     string
	Checked  int
	Damaged  int
	Damage   []string // the first ones
	Duration time.Duration
}

// ScrubReport is what a pass checked and found.
type ScrubReport struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Complete: every part of the pass ran (it was not cut short by its
	// context, Hold, or a change of file).
	Complete bool `json:"complete"`
	// Checked counts the keys checked (records, index entries, counts,
	// aggregates, key table and meta entries).
	Checked uint64 `json:"checked"`
	// Damaged counts the damage found; Damage describes the first.
	Damaged int      `json:"damaged"`
	Damage  []string `json:"damage"`
	Steps   int      `json:"steps"`
	// Busy is the steps' summed wall time, CPU their CPU time (of the
	// thread that ran them; bbolt's check, which runs on a goroutine of
	// its own, counted by its wall time), Duration the pass's wall time,
	// pauses included.
	Busy     time.Duration `json:"busyNs"`
	CPU      time.Duration `json:"cpuNs"`
	Duration time.Duration `json:"durationNs"`
}

// Scrub runs one pass over the state (see above) and reports what it
// found. Damage is in the report, not the error; the error says why the
// pass ended early (ctx, Hold, ErrFileChanged) or that the file could not
// be read at all (closed).
func (s *Store) Scrub(ctx context.Context, opt ScrubOptions) (ScrubReport, error) {
	if opt.Budget <= 0 {
		opt.Budget = DefaultScrubBudget
	}
	if opt.StepKeys <= 0 {
		opt.StepKeys = DefaultScrubStepKeys
	}
	if opt.StepTime <= 0 {
		opt.StepTime = DefaultScrubStepTime
	}
	if opt.MostDamage <= 0 {
		opt.MostDamage = DefaultScrubDamage
	}
	sc := &scrub{s: s, opt: opt, rep: ScrubReport{Started: time.Now(), Damage: []string{}}}
	var err error
	for sc.phase < len(scrubPhases) {
		if err = ctx.Err(); err != nil {
			break
		}
		var d time.Duration
		if d, err = sc.step(); err != nil {
			break
		}
		if opt.Budget < 1 {
			pause := time.Duration(float64(d) * (1/opt.Budget - 1))
			t := time.NewTimer(pause)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
	}
	sc.rep.Finished = time.Now()
	sc.rep.Duration = sc.rep.Finished.Sub(sc.rep.Started)
	sc.rep.Complete = err == nil
	return sc.rep, err
}

// scrub is one pass under way.
type scrub struct {
	s       *Store
	opt     ScrubOptions
	rep     ScrubReport
	gen     uint64 // the file the pass checks (Store.gen)
	started bool
	phase   int    // index in scrubPhases
	resume  []byte // the phase's last key checked; nil: from its start
	keyNo   uint32 // the key table's number last met
}

// scrubPhase is one part of a pass: a bucket walked in steps (key), or
// one transaction (whole, returning the keys it checked).
type scrubPhase struct {
	name   string
	bucket []byte
	key    func(st *scrubStep, k, v []byte)
	whole  func(st *scrubStep) int
	write  bool // whole runs in a write transaction, rolled back
	// offThread: the work runs on another goroutine; its CPU time is
	// counted as its wall time.
	offThread bool
}

var scrubPhases []scrubPhase

func init() {
	indexPhase := func(b []byte) scrubPhase {
		return scrubPhase{name: string(b), bucket: b, key: func(st *scrubStep, k, v []byte) { st.index(string(b), k, v) }}
	}
	scrubPhases = []scrubPhase{
		{name: "meta", whole: (*scrubStep).meta},
		{name: string(bucketKeys), bucket: bucketKeys, key: (*scrubStep).keyEntry},
		{name: string(bucketFormations), bucket: bucketFormations, key: (*scrubStep).formation},
		{name: string(bucketCells), bucket: bucketCells, key: (*scrubStep).cell},
		{name: string(bucketCounts), bucket: bucketCounts, key: (*scrubStep).counts},
		{name: string(bucketPrunedCounts), bucket: bucketPrunedCounts, key: (*scrubStep).prunedCounts},
		indexPhase(bucketCellByTenant),
		indexPhase(bucketCellByFormation),
		indexPhase(bucketCellByClass),
		indexPhase(bucketFormByTenant),
		indexPhase(bucketFormByStatus),
		indexPhase(bucketEnded),
		{name: "aggregates", whole: (*scrubStep).aggregates},
		{name: "bbolt", whole: (*scrubStep).bolt, write: true, offThread: true},
	}
}

// step runs the next step of the pass and returns its wall time.
func (sc *scrub) step() (time.Duration, error) {
	var d time.Duration
	var err error
	run := func() { d, err = sc.stepHeld() }
	if sc.opt.Hold != nil {
		if herr := sc.opt.Hold(run); herr != nil {
			return d, herr
		}
	} else {
		run()
	}
	return d, err
}

// stepHeld is step with the file kept open.
func (sc *scrub) stepHeld() (time.Duration, error) {
	if !sc.started {
		sc.gen, sc.started = sc.s.gen.Load(), true
	} else if sc.s.gen.Load() != sc.gen {
		return 0, ErrFileChanged
	}
	ph := &scrubPhases[sc.phase]
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// The CPU time is read inside the wall time's span.
	start := time.Now()
	cpu0, cpuOK := threadCPU()
	st := &scrubStep{scrub: sc, buckets: map[string]*bolt.Bucket{}}
	done, err := st.run(ph)
	cpu1, _ := threadCPU()
	d := time.Since(start)
	if err != nil {
		return d, err
	}
	if ph.offThread || !cpuOK {
		sc.rep.CPU += d
	} else {
		sc.rep.CPU += cpu1 - cpu0
	}
	sc.rep.Busy += d
	sc.rep.Steps++
	sc.rep.Checked += uint64(st.checked)
	sc.rep.Damaged += st.found
	sc.rep.Damage = append(sc.rep.Damage, st.damage...)
	if done {
		sc.phase++
		sc.resume = nil
	}
	if sc.opt.OnStep != nil {
		sc.opt.OnStep(ScrubStep{Part: ph.name, Checked: st.checked, Damaged: st.found, Damage: st.damage, Duration: d})
	}
	return d, nil
}

// scrubStep is one step: one transaction, what it checked and found.
type scrubStep struct {
	*scrub
	tx      *bolt.Tx
	names   []string
	cp      Checkpoint
	metaOK  bool // cp was read: the retention rule can be checked
	buckets map[string]*bolt.Bucket
	checked int
	found   int
	damage  []string
	// group is the formation of the last ix-cell-formation key of the
	// step (whose counts were looked up), hadGroup whether there was one.
	group    string
	hadGroup bool
}

// damaged records one damage.
func (st *scrubStep) damaged(format string, args ...any) {
	st.found++
	if len(st.rep.Damage)+len(st.damage) < st.opt.MostDamage {
		st.damage = append(st.damage, fmt.Sprintf(format, args...))
	}
}

func (st *scrubStep) bucket(name string) *bolt.Bucket {
	b, ok := st.buckets[name]
	if !ok {
		b = st.tx.Bucket([]byte(name))
		st.buckets[name] = b
	}
	return b
}

// run runs one step of phase ph in its transaction; done when the phase
// is over. A page bbolt cannot read (it panics, or the mapped file
// faults) is damage, and ends the phase: going on in that bucket would
// meet it again.
func (st *scrubStep) run(ph *scrubPhase) (done bool, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	if ph.bucket == nil && ph.write && st.rep.Damaged > 0 {
		// bbolt's check follows every page reference on a goroutine of
		// its own, where a fault of a reference out of the file cannot be
		// caught; damage found already asks for a repair. (The walks do
		// not meet all it reads: see bolt.)
		return true, nil
	}
	if ph.write && st.s.wedged.Load() {
		// Its writer lock is held for ever (wedge.go): a repair is asked
		// for already.
		return true, errWedged
	}
	if err := st.s.metaOK(); err != nil {
		return true, err
	}
	tx, err := st.s.db.Begin(ph.write)
	if err != nil {
		return false, err
	}
	defer func() { _ = tx.Rollback() }()
	st.tx = tx
	st.names = st.s.keys.Load().snapshot()
	defer func() {
		if r := recover(); r != nil {
			where := "a whole-state check"
			if ph.bucket != nil {
				where = fmt.Sprintf("bucket %s after key %q", ph.bucket, st.resume)
			}
			st.damaged("%s: %v: %v", where, ErrDamaged, r)
			done = true
		}
	}()
	cp, _, ierr := readInfo(tx)
	st.cp, st.metaOK = cp, ierr == nil && cp.Schema == SchemaVersion
	if ph.bucket == nil {
		st.checked += ph.whole(st)
		return true, nil
	}
	return st.walk(ph), nil
}

// walk checks the next run of keys of ph's bucket, from after the last
// key checked; done when none is left. Keys must come in strictly
// increasing order, the first after the one the last step ended at. A key
// out of order ends the walk of the bucket: bbolt's search trusts the
// order, so resuming after it could meet the same keys again, and the
// damage asks for a repair anyway.
func (st *scrubStep) walk(ph *scrubPhase) bool {
	b := st.tx.Bucket(ph.bucket)
	if b == nil {
		st.damaged("bucket %s: missing", ph.bucket)
		return true
	}
	c := b.Cursor()
	var k, v []byte
	if st.resume == nil {
		k, v = c.First()
	} else if k, v = c.Seek(st.resume); k != nil && bytes.Equal(k, st.resume) {
		k, v = c.Next()
	}
	prev := st.resume
	start := time.Now()
	n := 0
	for ; k != nil; k, v = c.Next() {
		switch {
		case v == nil:
			st.damaged("bucket %s: key %q is a bucket", ph.bucket, k)
		case prev != nil && bytes.Compare(k, prev) <= 0:
			st.damaged("bucket %s: key %q after %q: out of order", ph.bucket, k, prev)
			st.checked++
			return true
		default:
			ph.key(st, k, v)
		}
		st.checked++
		prev = k
		if n++; n >= st.opt.StepKeys || n%8 == 0 && time.Since(start) >= st.opt.StepTime {
			st.resume = bytes.Clone(k)
			return false
		}
	}
	return true
}

// filed checks that index key e of an entity (what, id) is stored and
// sealed.
func (st *scrubStep) filed(e indexEntry, what, id string) {
	val := st.bucket(e.bucket).Get(e.key)
	switch {
	case val == nil:
		st.damaged("%s %q: its index %s key %q is missing", what, id, e.bucket, e.key)
	case !indexSealed(e.key, val):
		st.damaged("index %s: key %q: checksum mismatch", e.bucket, e.key)
	}
}

func (st *scrubStep) formation(k, v []byte) {
	f, err := decodeFormation(string(k), v, st.names)
	if err != nil {
		st.damaged("formation %q: %v", k, err)
		return
	}
	for _, e := range formationFiling(&f) {
		st.filed(e, "formation", f.ID)
	}
	if st.metaOK {
		if why := formationHeld(&f, st.cp.Meta.Pruned.Floor, st.cp.Meta.Cursor); why != "" {
			st.damaged("%s", why)
		}
	}
}

func (st *scrubStep) cell(k, v []byte) {
	c, err := decodeCell(string(k), v, st.names)
	if err != nil {
		st.damaged("cell %q: %v", k, err)
		return
	}
	served := c.FormationID != "" && servedIn(st.tx, c.FormationID)
	for _, e := range cellFiling(&c, served) {
		st.filed(e, "cell", c.ID)
	}
	if st.metaOK {
		if why := cellHeld(&c, served, st.cp.Meta.Pruned.Floor, st.cp.Meta.Cursor); why != "" {
			st.damaged("%s", why)
		}
	}
}

// classCount is how many classes there are.
var classCount = byte(len(cellStates) * len(cellOutcomes))

// counts checks a formation's cell counts against the cells its
// ix-cell-formation range files, class by class, in the same
// transaction.
func (st *scrubStep) counts(k, v []byte) {
	id := string(k)
	got, err := decodeCounts(id, v)
	if err != nil {
		st.damaged("cell counts of formation %q: %v", k, err)
		return
	}
	g := group(id, 0)
	prefix := g[:len(g)-1] // the length-prefixed id: every class
	var want projection.CellCounts
	c := st.bucket(string(bucketCellByFormation)).Cursor()
	for ck, _ := c.Seek(prefix); ck != nil && bytes.HasPrefix(ck, prefix); ck, _ = c.Next() {
		if len(ck) <= len(prefix) || ck[len(prefix)] >= classCount {
			continue // the index's own walk reports the key
		}
		countClass(&want, ck[len(prefix)], 1)
	}
	switch {
	case want == projection.CellCounts{}:
		st.damaged("cell counts of formation %q: stored %+v, no cell is filed under it", k, got)
	case got != want:
		st.damaged("cell counts of formation %q: stored %+v, its cells count %+v", k, got, want)
	}
}

func (st *scrubStep) prunedCounts(k, v []byte) {
	got, err := decodeCounts(string(k), v)
	switch {
	case err != nil:
		st.damaged("pruned cell counts of formation %q: %v", k, err)
	case st.bucket(string(bucketFormations)).Get(k) == nil:
		st.damaged("pruned cell counts of formation %q: stored %+v, no such formation", k, got)
	case !prunedCounts(got):
		st.damaged("pruned cell counts of formation %q: %+v cannot count ended cells", k, got)
	}
}

// index checks key k of index bucket b: sealed, and filed by the record
// it names under exactly this key. A cell filed under a formation needs
// that formation's counts (looked up once per formation and step).
func (st *scrubStep) index(b string, k, v []byte) {
	if !indexSealed(k, v) {
		st.damaged("index %s: key %q: checksum mismatch", b, k)
		return
	}
	var id []byte
	cell := true
	switch b {
	case string(bucketCellByTenant), string(bucketCellByFormation), string(bucketFormByTenant):
		name, _, rest, ok := splitGroup(k)
		if ok {
			id = rest
		}
		cell = b != string(bucketFormByTenant)
		if ok && b == string(bucketCellByFormation) && (!st.hadGroup || name != st.group) {
			st.group, st.hadGroup = name, true
			if st.bucket(string(bucketCounts)).Get([]byte(name)) == nil {
				st.damaged("index %s: cells filed under formation %q, which has no cell counts", b, name)
			}
		}
	case string(bucketCellByClass), string(bucketFormByStatus):
		id = k[1:]
		cell = b == string(bucketCellByClass)
	case string(bucketEnded):
		if _, kind, rest, ok := splitEnded(k); ok {
			id, cell = rest, kind == endedCell
		}
	}
	if len(id) == 0 {
		st.damaged("index %s: key %q does not parse", b, k)
		return
	}
	var filing []indexEntry
	what := "formation"
	if cell {
		what = "cell"
		rec := st.bucket(string(bucketCells)).Get(id)
		if rec == nil {
			st.damaged("index %s: key %q: no cell %q", b, k, id)
			return
		}
		c, err := decodeCell(string(id), rec, st.names)
		if err != nil {
			st.damaged("index %s: key %q: %v", b, k, err)
			return
		}
		filing = cellFiling(&c, c.FormationID != "" && servedIn(st.tx, c.FormationID))
	} else {
		rec := st.bucket(string(bucketFormations)).Get(id)
		if rec == nil {
			st.damaged("index %s: key %q: no formation %q", b, k, id)
			return
		}
		f, err := decodeFormation(string(id), rec, st.names)
		if err != nil {
			st.damaged("index %s: key %q: %v", b, k, err)
			return
		}
		filing = formationFiling(&f)
	}
	if !containsEntry(filing, indexEntry{b, k}) {
		st.damaged("index %s: key %q: the record of %s %q does not file it there", b, k, what, id)
	}
}

// keyEntry checks an entry of the key table: numbered 1, 2, … in order,
// sealed, and what the open file decodes records with.
func (st *scrubStep) keyEntry(k, v []byte) {
	if len(k) != 4 {
		st.damaged("key table: key %q is not a number", k)
		return
	}
	n := binary.BigEndian.Uint32(k)
	if n != st.keyNo+1 {
		st.damaged("key table: number %d after %d", n, st.keyNo)
	}
	st.keyNo = n
	val, ok := unseal(k, v)
	switch {
	case !ok:
		st.damaged("key table entry %d: checksum mismatch", n)
	case n >= 1 && int(n) <= len(st.names) && st.names[n-1] != string(val):
		st.damaged("key table entry %d: %q in the file, %q in use", n, val, st.names[n-1])
	}
}

// meta checks the tree of buckets and the meta entries: each one known,
// sealed (but the schema, which is this binary's), and readable as the
// position.
func (st *scrubStep) meta() int {
	known := map[string]bool{}
	for _, b := range allBuckets {
		known[string(b)] = true
		if st.tx.Bucket(b) == nil {
			st.damaged("bucket %s: missing", b)
		}
	}
	_ = st.tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
		if !known[string(name)] {
			st.damaged("bucket %q: not one of the state's", name)
		}
		return nil
	})
	m := st.tx.Bucket(bucketMeta)
	if m == nil {
		return 0
	}
	n := 0
	_ = m.ForEach(func(k, v []byte) error {
		n++
		switch {
		case bytes.Equal(k, keySchema):
			if len(v) != 8 || binary.BigEndian.Uint64(v) != SchemaVersion {
				st.damaged("meta schema: %x, this binary's is %d", v, SchemaVersion)
			}
		case slices.ContainsFunc(sealedMetaKeys, func(m []byte) bool { return bytes.Equal(m, k) }):
			if _, ok := unseal(k, v); !ok {
				st.damaged("meta %q: checksum mismatch", k)
			}
		default:
			st.damaged("meta: key %q is not one of the state's", k)
		}
		return nil
	})
	if _, _, err := readInfo(st.tx); err != nil {
		st.damaged("meta: %v", err)
	}
	if _, err := readUntenanted(st.tx); err != nil {
		st.damaged("meta: %v", err)
	}
	return n
}

// aggregates checks each tenant's aggregate against the index keys that
// carry tenant and status or class: live formations by status
// (ix-formation-tenant files only live ones), cells by class
// (ix-cell-tenant files every cell) — what Check counts from the records,
// counted from keys alone in one transaction. The index walks check that
// those keys agree with the records.
func (st *scrubStep) aggregates() int {
	tally := map[string]*aggregate{}
	agg := func(tenant string) *aggregate {
		a := tally[tenant]
		if a == nil {
			a = &aggregate{}
			tally[tenant] = a
		}
		return a
	}
	_ = st.tx.Bucket(bucketFormByTenant).ForEach(func(k, _ []byte) error {
		tenant, status, _, ok := splitGroup(k)
		if ok && int(status) < len(formationStatuses) {
			agg(tenant).formations[status]++
		}
		return nil
	})
	_ = st.tx.Bucket(bucketCellByTenant).ForEach(func(k, _ []byte) error {
		tenant, class, _, ok := splitGroup(k)
		if ok && class < classCount {
			agg(tenant).countCell(class, 1)
		}
		return nil
	})
	n := 0
	_ = st.tx.Bucket(bucketAggregates).ForEach(func(k, v []byte) error {
		n++
		if len(k) == 0 || k[0] != 't' {
			st.damaged("tenant aggregate: key %q is not a tenant's", k)
			return nil
		}
		tenant := string(k[1:])
		w := tally[tenant]
		delete(tally, tenant)
		if w == nil {
			w = &aggregate{}
		}
		if !bytes.Equal(v, w.encode(k)) {
			got, err := decodeAggregate(k, v)
			st.damaged("aggregate of tenant %q: stored %+v (%v), its index keys count %+v", tenant, got, err, *w)
		}
		return nil
	})
	for _, t := range sortedKeys(tally) {
		if !tally[t].zero() {
			st.damaged("aggregate of tenant %q: missing, its index keys count %+v", t, *tally[t])
		}
	}
	return n
}

// bolt runs bbolt's consistency check: every page reachable once, none
// both reachable and free, none lost, keys ordered in every page and
// between a branch and its children.
//
// bbolt's check trusts each page header's overflow count, which no
// cursor reads: it marks page id+i reachable for every i up to it, one
// map entry each, on a goroutine of its own. One garbled count (a bit of
// its top byte) makes that billions of entries: seconds of CPU, or the
// process killed for its memory (the corruption fuzzer found a scrub that
// never ended), and the same again at every start. So first, here, with
// faults caught, the overflow counts are bounded, and anything beyond is
// damage and the check does not run: every page header read in order
// (tx.Page): a page in use whose overflow runs past the file; the
// freelist page (checkFreelist, as before every write); and the pages the
// check will follow counted with their overflow (Bucket.Stats reads the
// same headers and follows the same references, without the loop) — more
// than the file holds (this also catches counts the first read skipped
// over, trusting a garbled one before them).
func (st *scrubStep) bolt() int {
	if st.opt.SkipCheck {
		st.damaged("bbolt: %v: its check did not end the last time it ran (the run died in it); it is not run again before a repair", ErrDamaged)
		return 0
	}
	if st.opt.Checking != nil {
		// From here: the bound's walk follows the same references as the
		// check, outside the walks' sight too.
		st.opt.Checking(true)
		defer st.opt.Checking(false)
	}
	used := int(st.tx.Size() / int64(st.tx.DB().Info().PageSize))
	for id := 2; id < used; id++ {
		info, err := st.tx.Page(id)
		if err != nil || info == nil {
			break
		}
		if info.Type != "free" && id+info.OverflowCount >= used {
			st.damaged("bbolt: page %d (%s) claims %d overflow pages, past the %d pages in use", id, info.Type, info.OverflowCount, used)
			return 0
		}
		if info.Type != "free" {
			id += info.OverflowCount // its overflow pages have no header
		}
	}
	if err := checkFreelist(st.tx, st.s.path); err != nil {
		st.damaged("bbolt: %v", err)
		return 0
	}
	if !st.pagesFit() {
		return 0
	}
	for err := range st.tx.Check() {
		st.damaged("bbolt: %v", err)
	}
	return 0
}

// pagesFit tells whether the pages bbolt's check follows, each with its
// overflow pages, fit in the pages the file uses: the two meta pages, the
// root bucket's pages, every page of every bucket. In a sound file they
// are distinct pages, so their sum is at most the file's. A false is
// recorded as damage.
func (st *scrubStep) pagesFit() bool {
	ps := int64(st.s.db.Info().PageSize)
	used := st.tx.Size() / ps
	n, err := rootPages(st.tx, st.s.path, used)
	if err != nil {
		st.damaged("bbolt: %v", err)
		return false
	}
	n += 2
	_ = st.tx.ForEach(func(_ []byte, b *bolt.Bucket) error {
		s := b.Stats()
		n += int64(s.BranchPageN) + int64(s.BranchOverflowN) + int64(s.LeafPageN) + int64(s.LeafOverflowN)
		return nil
	})
	if n > used {
		st.damaged("bbolt: %v: its pages with their overflow pages reach beyond the file: %d pages, the file uses %d (a page header's overflow count is garbled)", ErrDamaged, n, used)
		return false
	}
	return true
}

// rootPages counts the pages of the root bucket (the bucket of bucket
// names; the small buckets are inline in it, so it may take a few pages),
// each with its overflow pages, of the commit write transaction tx starts
// from, in the file at path whose commit uses used pages. No cursor shows
// them, so they are read from the file (as few pages as the root holds).
func rootPages(tx *bolt.Tx, path string, used int64) (int64, error) {
	ps := int64(tx.DB().Info().PageSize)
	f, err := os.Open(path) // not db.Path(): a compacted copy is renamed under its handle
	if err != nil {
		return 0, err
	}
	defer f.Close()
	le := binary.LittleEndian
	damaged := func(format string, args ...any) error {
		return fmt.Errorf("%w: root bucket: %s", ErrDamaged, fmt.Sprintf(format, args...))
	}
	// After the page header (16): magic, version, page size, flags (4
	// each), the root bucket (8 its page, 8 its sequence), the freelist,
	// the high water mark, the commit (8 each), the checksum of it all.
	root, found := int64(0), false
	meta := make([]byte, 64)
	for page := range int64(2) {
		if _, err := f.ReadAt(meta, page*ps+16); err != nil {
			return 0, damaged("meta page %d: %v", page, err)
		}
		h := fnv.New64a()
		_, _ = h.Write(meta[:56])
		if h.Sum64() == le.Uint64(meta[56:]) && le.Uint64(meta[48:]) == uint64(tx.ID())-1 {
			root, found = int64(le.Uint64(meta[16:])), true
		}
	}
	if !found {
		return 0, damaged("no meta page holds commit %d", tx.ID()-1)
	}
	const branchFlag, leafFlag, branchElement = 0x01, 0x02, 16
	seen := map[int64]bool{}
	var n int64
	var walk func(id int64, depth int) error
	walk = func(id int64, depth int) error {
		if id < 2 || id >= used || seen[id] || depth > 8 {
			return damaged("page %d: not a page of the tree (%d pages in use, depth %d)", id, used, depth)
		}
		seen[id] = true
		hdr := make([]byte, 16)
		if _, err := f.ReadAt(hdr, id*ps); err != nil {
			return damaged("page %d: %v", id, err)
		}
		flags, count, overflow := le.Uint16(hdr[8:]), int64(le.Uint16(hdr[10:])), int64(le.Uint32(hdr[12:]))
		if le.Uint64(hdr) != uint64(id) || id+overflow >= used {
			return damaged("page %d: header says page %d, %d overflow pages (%d pages in use)", id, le.Uint64(hdr), overflow, used)
		}
		n += 1 + overflow
		switch {
		case flags == leafFlag:
			return nil
		case flags != branchFlag || 16+count*branchElement > (1+overflow)*ps:
			return damaged("page %d: flags %#x, %d elements", id, flags, count)
		}
		elems := make([]byte, count*branchElement)
		if _, err := f.ReadAt(elems, id*ps+16); err != nil {
			return damaged("page %d: %v", id, err)
		}
		for i := range count {
			// An element: its key's position and size (4 each), the child's page.
			if err := walk(int64(le.Uint64(elems[i*branchElement+8:])), depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return n, walk(root, 0)
}
