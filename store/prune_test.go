package store

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"cellos-allinone/projection"
	"cellos-allinone/testutil"
)

// The retention rule (docs/design.md §3), run against both States — the
// in-memory Projection and a Batch of this package — with equal results.
// A case is events and floors to prune at between them; it says which
// entities are held after the last floor (tombstones too), the counts of
// the served formations, and what was pruned. A Batch prunes at every
// commit: committing only at the floors it must end where the Projection
// pruned at the same points does, and committing after every event or
// every second one, where a Projection pruned at each of those commits
// does.

// pruneAt is a step that prunes at floor instead of applying an event (it
// takes no sequence).
func pruneAt(floor uint64) step { return step{prune: floor} }

func (s step) floor() (uint64, bool) { return s.prune, s.prune > 0 }

type pruneCase struct {
	name  string
	steps []step
	// held lists the entities held at the end, "f:<id>" and "c:<id>".
	held []string
	// counts are the served formations' cell counts.
	counts map[string]projection.CellCounts
	pruned projection.Pruned
	// tenants, when set, is the summary's tenant list: "id formations cells failed".
	tenants []string
}

func pruneCases() []pruneCase {
	f1 := obj{"formationId": "f1"}
	t1 := obj{"tenantId": "t1"}
	return []pruneCase{
		{name: "a terminal formation goes with its ended cells",
			steps: []step{
				formStep("", "created", "f1", nil), cellStep("", "admitted", "c1", f1), cellStep("", "completed", "c1", nil),
				cellStep("", "admitted", "c2", f1), cellStep("", "failed", "c2", nil), cellStep("", "destroyed", "c2", nil),
				cellStep("", "admitted", "c3", f1), formStep("", "completed", "f1", nil),
				pruneAt(9)},
			held:   []string{"c:c3"},
			pruned: projection.Pruned{Formations: 1, Cells: 2, Floor: 9}},
		{name: "every ended formation status goes",
			steps: []step{
				formStep("", "failed", "f1", nil), formStep("", "cancelled", "f2", nil), formStep("", "deleted", "f3", nil),
				formStep("", "created", "f4", nil), formStep("", "launching", "f5", nil), formStep("", "running", "f6", nil), formStep("", "degraded", "f7", nil),
				pruneAt(100)},
			held:   []string{"f:f4", "f:f5", "f:f6", "f:f7"},
			counts: map[string]projection.CellCounts{"f4": {}, "f5": {}, "f6": {}, "f7": {}},
			pruned: projection.Pruned{Formations: 3, Floor: 100}},
		{name: "live entities stay however old",
			steps: []step{
				formStep("", "created", "f1", nil), cellStep("", "admitted", "c1", f1), cellStep("", "started", "c2", nil),
				cellStep("", "summary", "c3", nil), pruneAt(1000)},
			held:   []string{"f:f1", "c:c1", "c:c2", "c:c3"},
			counts: map[string]projection.CellCounts{"f1": {Total: 1, Admitted: 1}},
			pruned: projection.Pruned{Floor: 1000}},
		{name: "a live formation keeps counting its pruned cells",
			steps: []step{
				formStep("", "running", "f1", nil),
				cellStep("", "admitted", "c1", f1), cellStep("", "failed", "c1", nil), cellStep("", "destroyed", "c1", nil),
				cellStep("", "completed", "c2", f1), cellStep("", "destroyed", "c2", nil),
				cellStep("", "completed", "c3", f1), cellStep("", "started", "c4", f1),
				pruneAt(100)},
			held:   []string{"f:f1", "c:c3", "c:c4"},
			counts: map[string]projection.CellCounts{"f1": {Total: 4, Running: 1, Completed: 2, Failed: 1, Destroyed: 2}},
			pruned: projection.Pruned{Cells: 2, Floor: 100}},
		{name: "a live formation's counts after more cells come and go",
			steps: []step{
				formStep("", "running", "f1", nil), cellStep("", "failed", "c1", f1), cellStep("", "destroyed", "c1", nil),
				pruneAt(4),
				cellStep("", "admitted", "c2", f1), cellStep("", "destroyed", "c2", nil), pruneAt(6),
				cellStep("", "started", "c3", f1)},
			held:   []string{"f:f1", "c:c3"},
			counts: map[string]projection.CellCounts{"f1": {Total: 3, Running: 1, Failed: 1, Destroyed: 2}},
			pruned: projection.Pruned{Cells: 2, Floor: 6}},
		{name: "the cells of a deleted formation go before its tombstone",
			steps: []step{
				formStep("", "running", "f1", nil), cellStep("", "completed", "c1", f1), cellStep("", "failed", "c2", f1),
				cellStep("", "started", "c3", f1), pruneAt(4),
				formStep("", "deleted", "f1", nil), pruneAt(5)},
			held:   []string{"f:f1", "c:c3"},
			pruned: projection.Pruned{Cells: 2, Floor: 5}},
		{name: "a completed cell stays while its formation is served",
			steps: []step{
				formStep("", "running", "f1", nil), cellStep("", "completed", "c1", f1), pruneAt(3),
				formStep("", "completed", "f1", nil), pruneAt(3)},
			held:   []string{"f:f1", "c:c1"},
			counts: map[string]projection.CellCounts{"f1": {Total: 1, Completed: 1}},
			pruned: projection.Pruned{Floor: 3}},
		{name: "a cell outliving its pruned formation goes once its own last event expires",
			steps: []step{
				formStep("", "running", "f1", nil), cellStep("", "failed", "c1", f1), formStep("", "failed", "f1", nil),
				cellStep("", "summary", "c1", obj{"passed": true}), pruneAt(4), pruneAt(5)},
			held:   nil,
			pruned: projection.Pruned{Formations: 1, Cells: 1, Floor: 5}},
		{name: "a cell outliving its pruned formation, before its own last event expires",
			steps: []step{
				formStep("", "running", "f1", nil), cellStep("", "failed", "c1", f1), formStep("", "failed", "f1", nil),
				cellStep("", "summary", "c1", obj{"passed": true}), pruneAt(4)},
			held:   []string{"c:c1"},
			pruned: projection.Pruned{Formations: 1, Floor: 4}},
		{name: "a completed cell without a formation, or of one never created",
			steps: []step{
				cellStep("", "completed", "c1", nil), cellStep("", "failed", "c2", obj{"formationId": "nowhere"}),
				cellStep("", "started", "c3", obj{"formationId": "nowhere"}), pruneAt(10)},
			held:   []string{"c:c3"},
			pruned: projection.Pruned{Cells: 2, Floor: 10}},
		{name: "a completed cell stays when its formation is created after it",
			steps: []step{
				cellStep("", "completed", "c1", f1), formStep("", "created", "f1", nil), pruneAt(10)},
			held:   []string{"f:f1", "c:c1"},
			counts: map[string]projection.CellCounts{"f1": {Total: 1, Completed: 1}},
			pruned: projection.Pruned{Floor: 10}},
		{name: "an event that changes nothing keeps an ended cell",
			steps: []step{
				cellStep("", "admitted", "c1", nil), cellStep("", "destroyed", "c1", nil), cellStep("", "started", "c1", nil),
				pruneAt(3)},
			held:   []string{"c:c1"},
			pruned: projection.Pruned{Floor: 3}},
		{name: "an event that changes nothing: pruned once it expires",
			steps: []step{
				cellStep("", "admitted", "c1", nil), cellStep("", "destroyed", "c1", nil), cellStep("", "started", "c1", nil),
				pruneAt(4)},
			pruned: projection.Pruned{Cells: 1, Floor: 4}},
		{name: "a cell event naming an ended formation keeps it",
			steps: []step{
				formStep("", "completed", "f1", nil), cellStep("", "admitted", "c1", f1), cellStep("", "destroyed", "c1", nil),
				pruneAt(2)},
			held:   []string{"f:f1", "c:c1"},
			counts: map[string]projection.CellCounts{"f1": {Total: 1, Destroyed: 1}},
			pruned: projection.Pruned{Floor: 2}},
		{name: "an event rejected for its tenant keeps the ended entity it names",
			steps: []step{
				formStep("", "created", "f1", t1), formStep("", "cancelled", "f1", nil), cellStep("t1", "destroyed", "c1", nil),
				formStep("t2", "running", "f1", nil).rejected(byEntity), cellStep("t2", "summary", "c1", nil).rejected(byEntity),
				pruneAt(4)},
			held:   []string{"f:f1", "c:c1"},
			counts: map[string]projection.CellCounts{"f1": {}},
			pruned: projection.Pruned{Floor: 4}},
		{name: "an event rejected for its formation's tenant keeps both",
			steps: []step{
				formStep("", "created", "f1", t1), formStep("", "cancelled", "f1", nil),
				cellStep("t2", "destroyed", "c1", nil), cellStep("t2", "summary", "c1", f1).rejected(byFormation),
				pruneAt(4)},
			held:   []string{"f:f1", "c:c1"},
			counts: map[string]projection.CellCounts{"f1": {}},
			pruned: projection.Pruned{Floor: 4}},
		{name: "a tombstone goes, and a later event for its id starts a new formation",
			steps: []step{
				formStep("", "created", "f1", t1), formStep("", "deleted", "f1", nil), pruneAt(3),
				formStep("t2", "running", "f1", nil)},
			held:   []string{"f:f1"},
			counts: map[string]projection.CellCounts{"f1": {}},
			pruned: projection.Pruned{Formations: 1, Floor: 3}},
		{name: "a pruned cell's id starts a new cell",
			steps: []step{
				cellStep("", "admitted", "c1", f1), cellStep("", "destroyed", "c1", nil), pruneAt(3),
				cellStep("", "started", "c1", nil)},
			held:   []string{"c:c1"},
			pruned: projection.Pruned{Cells: 1, Floor: 3}},
		{name: "a deleted formation's pruned counts go with it",
			steps: []step{
				formStep("", "running", "f1", nil), cellStep("", "failed", "c1", f1), cellStep("", "destroyed", "c1", nil),
				pruneAt(4), formStep("", "deleted", "f1", nil), pruneAt(5)},
			pruned: projection.Pruned{Formations: 1, Cells: 1, Floor: 5}},
		{name: "the summary after pruning",
			steps: []step{
				formStep("", "created", "fa", t1), cellStep("", "failed", "ca", obj{"formationId": "fa"}), formStep("", "completed", "fa", nil),
				formStep("", "running", "fb", obj{"tenantId": "t2"}), cellStep("", "failed", "cb", obj{"formationId": "fb"}),
				cellStep("", "destroyed", "cb", nil), cellStep("", "started", "cc", obj{"formationId": "fb"}),
				cellStep("t3", "destroyed", "cd", nil), pruneAt(100)},
			held:    []string{"f:fb", "c:cc"},
			counts:  map[string]projection.CellCounts{"fb": {Total: 2, Running: 1, Failed: 1, Destroyed: 1}},
			pruned:  projection.Pruned{Formations: 1, Cells: 3, Floor: 100},
			tenants: []string{"t2 1 1 0"}},
		{name: "a floor below the last one prunes at the last one",
			steps: []step{
				cellStep("", "destroyed", "c1", nil), pruneAt(5), cellStep("", "destroyed", "c2", nil), pruneAt(2)},
			held:   nil,
			pruned: projection.Pruned{Cells: 2, Floor: 5}},
	}
}

func TestPruneRule(t *testing.T) {
	for _, tc := range pruneCases() {
		t.Run(tc.name, func(t *testing.T) {
			mem := projection.New()
			runPruneSteps(t, "Projection", mem, tc.steps, 0, func(floor uint64) { mem.Prune(floor) })
			checkPruneCase(t, "Projection", mem, tc)
			for _, every := range []int{0, 1, 2} {
				for _, limit := range []int{DefaultPruneLimit, 1} {
					runPruneCaseOnBatch(t, tc, every, limit)
				}
			}
		})
	}
}

// runPruneCaseOnBatch runs tc on a Batch that commits every every events
// (0: only at the floors) and prunes at most limit entities a commit: at
// a floor it commits until nothing is left to prune, and a Projection
// pruned at the floor each commit got to must end up equal.
func runPruneCaseOnBatch(t *testing.T, tc pruneCase, every, limit int) {
	t.Helper()
	name := fmt.Sprintf("Batch committing every %d, pruning at most %d a commit", every, limit)
	s, b := openBatch(t)
	b.SetPruneLimit(limit)
	mirror := projection.New()
	var dec projection.Decoder
	seq := uint64(0)
	runPruneSteps(t, name, b, tc.steps, every, func(floor uint64) {
		b.SetFloor(floor)
		for first := true; first || b.PruneDue(); first = false {
			if err := b.Commit(time.Now()); err != nil {
				t.Fatal(err)
			}
			for ; seq < b.Meta().Cursor; seq++ {
				st := tc.steps[eventIndex(tc.steps, seq+1)]
				projection.Apply(mirror, dec.Decode(projection.Message{Seq: seq + 1, Subject: st.subject, Time: stepTime(seq + 1), Payload: st.payload}))
			}
			mirror.Prune(b.Meta().Pruned.Floor)
		}
	})
	b.Close()
	sameAs(t, s, mirror)
	err := s.View(func(v *View) error {
		if every == 0 {
			checkPruneCase(t, name, v, tc)
		}
		if d := v.Check(10); len(d) != 0 {
			t.Errorf("%s: Check() = %q, want nothing", name, d)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// eventIndex is the index in steps of the event applied as seq.
func eventIndex(steps []step, seq uint64) int {
	n := uint64(0)
	for i, s := range steps {
		if _, ok := s.floor(); !ok {
			if n++; n == seq {
				return i
			}
		}
	}
	panic(fmt.Sprintf("no event %d", seq))
}

// runPruneSteps applies the events of steps to st as sequences 1..n,
// checking what Apply says of each, and calls prune at each floor of the
// steps, after every every events (0: never), and at the end (with the
// floor so far).
func runPruneSteps(t *testing.T, name string, st projection.State, steps []step, every int, prune func(floor uint64)) {
	t.Helper()
	var dec projection.Decoder
	var seq, floor uint64
	for _, s := range steps {
		if f, ok := s.floor(); ok {
			floor = max(floor, f)
			prune(floor)
			continue
		}
		seq++
		out, why := projection.Apply(st, dec.Decode(projection.Message{Seq: seq, Subject: s.subject, Time: stepTime(seq), Payload: s.payload}))
		if out != s.out || why != s.why {
			t.Errorf("%s: Apply(seq %d, %s %s) = %v %q, want %v %q", name, seq, s.subject, s.payload, out, why, s.out, s.why)
		}
		if every > 0 && seq%uint64(every) == 0 {
			prune(floor)
		}
	}
	prune(floor)
}

// registryReader is what a case reads: the Projection or a View.
type registryReader interface {
	projection.Reader
	Registry() projection.Registry
}

func checkPruneCase(t *testing.T, name string, r registryReader, tc pruneCase) {
	t.Helper()
	reg := r.Registry()
	var held []string
	for id := range reg.Formations {
		held = append(held, "f:"+id)
	}
	for id := range reg.Cells {
		held = append(held, "c:"+id)
	}
	slices.Sort(held)
	want := slices.Sorted(slices.Values(tc.held))
	if !slices.Equal(held, want) {
		t.Errorf("%s: held %q, want %q", name, held, want)
	}
	counts := map[string]projection.CellCounts{}
	for id, f := range reg.Formations {
		if !f.Deleted {
			counts[id] = f.Cells
			if sf, ok := r.Formation(id); !ok || sf.Cells != f.Cells {
				t.Errorf("%s: Formation(%q) = %+v, %v; want counts %+v", name, id, sf.Cells, ok, f.Cells)
			}
		}
	}
	if tc.counts == nil {
		tc.counts = map[string]projection.CellCounts{}
	}
	if !maps.Equal(counts, tc.counts) {
		t.Errorf("%s: served formations count %+v, want %+v", name, counts, tc.counts)
	}
	if got := r.Pruned(); got != tc.pruned {
		t.Errorf("%s: Pruned() = %+v, want %+v", name, got, tc.pruned)
	}
	if tc.tenants != nil {
		var got []string
		for _, ts := range r.Summary("").Tenants {
			got = append(got, fmt.Sprintf("%s %d %d %d", ts.ID, ts.Formations, ts.Cells, ts.Failed))
		}
		if strings.Join(got, ", ") != strings.Join(tc.tenants, ", ") {
			t.Errorf("%s: Summary(\"\").Tenants = %q, want %q", name, got, tc.tenants)
		}
	}
}

// Check finds a state that breaks the retention rule or files ix-ended and
// the pruned counts otherwise than its records say.
func TestCheckFindsWhatTheRetentionRuleRemoves(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "cp.db"))
	write(t, s, "e", testutil.Workload(2000), 97)
	// Prune at 1000: what ended before it goes, the rest is filed.
	b, err := s.Batch()
	if err != nil {
		t.Fatal(err)
	}
	b.SetFloor(1000)
	if err := b.Commit(time.Now()); err != nil {
		t.Fatal(err)
	}
	b.Close()
	check := func() string {
		var diffs []string
		if err := s.View(func(v *View) error { diffs = v.Check(100_000); return nil }); err != nil {
			t.Fatal(err)
		}
		return strings.Join(diffs, "\n")
	}
	if d := check(); d != "" {
		t.Fatalf("Check of a pruned state: %s", d)
	}
	cp, _, err := s.Info()
	if err != nil || cp.Meta.Pruned.Formations == 0 || cp.Meta.Pruned.Cells == 0 {
		t.Fatalf("Info() = %+v, %v; want formations and cells pruned", cp.Meta.Pruned, err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		// The position claims a higher floor than the state was pruned at.
		m := cp.Meta
		m.Pruned.Floor = 1500
		if err := putMeta(tx, cp.Epoch, m, cp.At); err != nil {
			return err
		}
		ix := tx.Bucket(bucketEnded)
		k, _ := ix.Cursor().Last()
		if err := ix.Delete(bytes.Clone(k)); err != nil {
			return err
		}
		return tx.Bucket(bucketPrunedCounts).Put([]byte("nowhere"), encodeCounts("nowhere", projection.CellCounts{Total: 1, Admitted: 1}))
	})
	if err != nil {
		t.Fatal(err)
	}
	got := check()
	for _, want := range []string{"with its last event", "below the floor 1500: the retention rule removes it", "ix-ended: key", "missing",
		`pruned cell counts of formation "nowhere"`} {
		if !strings.Contains(got, want) {
			t.Errorf("Check after tampering lacks %q:\n%s", want, got)
		}
	}
}

// A commit prunes at most its limit of entities, whole groups of one last
// event at a time, and records the floor it got to; PruneDue says more is
// left until a commit reached the floor told.
func TestPruneInSteps(t *testing.T) {
	s, b := openBatch(t)
	b.SetPruneLimit(2)
	// Three destroyed cells, last events 1..3; a terminal formation and
	// a cell destroyed naming it share last event 5: one group.
	var steps []step
	for i := range 3 {
		steps = append(steps, cellStep("", "destroyed", fmt.Sprintf("c%d", i+1), nil))
	}
	steps = append(steps, formStep("", "completed", "f1", nil), cellStep("", "destroyed", "c4", obj{"formationId": "f1"}))
	runPruneSteps(t, "Batch", b, steps, 0, func(uint64) {})
	if err := b.Commit(time.Now()); err != nil {
		t.Fatal(err)
	}
	b.SetFloor(100)
	var floors []uint64
	var held []int
	for b.PruneDue() {
		if len(floors) == 10 {
			t.Fatalf("still due after 10 commits: floors %v", floors)
		}
		if err := b.Commit(time.Now()); err != nil {
			t.Fatal(err)
		}
		floors = append(floors, b.Meta().Pruned.Floor)
		if err := s.View(func(v *View) error {
			r := v.Registry()
			held = append(held, len(r.Formations)+len(r.Cells))
			if d := v.Check(10); len(d) != 0 {
				t.Errorf("Check() after pruning to %d = %q, want nothing", b.Meta().Pruned.Floor, d)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	// c1 c2 | c3 f1 c4: the group of 5 goes whole, past the limit.
	if want := []uint64{3, 100}; !slices.Equal(floors, want) {
		t.Errorf("floors after each commit %v, want %v", floors, want)
	}
	if want := []int{3, 0}; !slices.Equal(held, want) {
		t.Errorf("entities held after each commit %v, want %v", held, want)
	}
	if got, want := b.Meta().Pruned, (projection.Pruned{Formations: 1, Cells: 4, Floor: 100}); got != want {
		t.Errorf("Pruned = %+v, want %+v", got, want)
	}
	// Nothing filed below a higher floor: not due, and a commit records it.
	b.SetFloor(200)
	if b.PruneDue() {
		t.Error("PruneDue() with nothing filed below the floor = true, want false")
	}
}

// What a commit prunes leaves the batch's cache too, with its bytes: a
// batch that prunes as much as it folds keeps a cache the size of what is
// held, not of everything it ever folded.
func TestPruneLeavesTheCache(t *testing.T) {
	s, b := openBatch(t)
	var dec projection.Decoder
	for i, ev := range testutil.Workload(3000) {
		seq := uint64(i + 1)
		projection.Apply(b, dec.Decode(projection.Message{Seq: seq, Subject: ev.Subject, Time: stepTime(seq), Payload: ev.Payload}))
	}
	if err := b.Commit(time.Now()); err != nil {
		t.Fatal(err)
	}
	cached, entities := b.CachedBytes(), len(b.cells)+len(b.forms)
	b.SetFloor(3001)
	for b.PruneDue() {
		if err := b.Commit(time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	held := 0
	if err := s.View(func(v *View) error { r := v.Registry(); held = len(r.Formations) + len(r.Cells); return nil }); err != nil {
		t.Fatal(err)
	}
	if got := len(b.cells) + len(b.forms); got > held {
		t.Errorf("%d entities cached after pruning, more than the %d held (%d before)", got, held, entities)
	}
	if got, want := b.CachedBytes(), cached*held/entities+held*slotOverhead; got > want {
		t.Errorf("CachedBytes() after pruning = %d (%d before, %d of %d entities held), want at most %d", got, cached, held, entities, want)
	}
}

// An ix-ended key without an id is damage to the prune, as to the scrub
// (splitEnded): no entity has an empty id.
func TestPruneTakesAnEndedKeyWithoutIDForDamage(t *testing.T) {
	s, b := openBatch(t)
	runPruneSteps(t, "Batch", b, []step{cellStep("", "destroyed", "c1", nil)}, 0, func(uint64) {})
	if err := b.Commit(time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		k := endedKey(0, endedCell, "")
		return tx.Bucket(bucketEnded).Put(k, indexValue(k))
	}); err != nil {
		t.Fatal(err)
	}
	b.SetFloor(100)
	if err := b.Commit(time.Now()); !errors.Is(err, ErrDamaged) {
		t.Fatalf("a prune over an ix-ended key without an id: Commit() = %v, want ErrDamaged", err)
	}
}
