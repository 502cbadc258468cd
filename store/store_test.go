package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"cellos-allinone/projection"
	"cellos-allinone/testutil"
)

func mustOpen(tb testing.TB, path string) *Store {
	tb.Helper()
	s, aside, err := Open(path)
	if err != nil {
		tb.Fatalf("Open(%q): %v", path, err)
	}
	if aside != "" {
		tb.Fatalf("Open(%q) moved a file aside: %s", path, aside)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// openBatch opens a fresh state file in a temporary directory, starts it
// as epoch "e" and returns it with a Batch over it, closed at cleanup.
func openBatch(tb testing.TB) (*Store, *Batch) {
	tb.Helper()
	s := mustOpen(tb, filepath.Join(tb.TempDir(), "cp.db"))
	if err := s.Reset("e"); err != nil {
		tb.Fatal(err)
	}
	b, err := s.Batch()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { b.Close() })
	return s, b
}

// fold applies events with sequences from 1 to a fresh projection.
func fold(events []testutil.Event) *projection.Projection {
	p := projection.New()
	for i, ev := range events {
		p.Apply(projection.Message{Seq: uint64(i + 1), Time: time.Unix(1700000000, 0), Payload: ev.Payload})
	}
	return p
}

// write folds events with sequences from 1 into the store s (a fresh one:
// its epoch is set to epoch), committing every commitEvery events.
func write(tb testing.TB, s *Store, epoch string, events []testutil.Event, commitEvery int) {
	tb.Helper()
	if err := s.Reset(epoch); err != nil {
		tb.Fatal(err)
	}
	b, err := s.Batch()
	if err != nil {
		tb.Fatal(err)
	}
	defer b.Close()
	var dec projection.Decoder
	for i, ev := range events {
		projection.Apply(b, dec.Decode(projection.Message{Seq: uint64(i + 1), Time: time.Unix(1700000000, 0), Payload: ev.Payload}))
		if (i+1)%commitEvery == 0 {
			if err := b.Commit(time.Now()); err != nil {
				tb.Fatal(err)
			}
		}
	}
	if err := b.Commit(time.Now()); err != nil {
		tb.Fatal(err)
	}
}

// checkpointFile is the content of a state file holding a fold of n
// workload events.
func checkpointFile(tb testing.TB, n int) []byte {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "cp.db")
	s := mustOpen(tb, path)
	write(tb, s, "e", testutil.Workload(n), 7)
	s.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// sameAs fails unless the store's last commit serves what the in-memory
// fold p serves.
func sameAs(tb testing.TB, s *Store, p *projection.Projection) {
	tb.Helper()
	err := s.View(func(v *View) error {
		if g, w := string(v.Dump()), string(p.Dump()); g != w {
			tb.Fatalf("store Dump = %.600s\nwant %.600s", g, w)
		}
		if v.Cursor() != p.Cursor() || v.CursorID() != p.CursorID() || !v.Counters().Equal(p.Counters()) {
			tb.Fatalf("store position %d %q %+v, want %d %q %+v", v.Cursor(), v.CursorID(), v.Counters(), p.Cursor(), p.CursorID(), p.Counters())
		}
		if g, w := fmt.Sprint(v.Gaps()), fmt.Sprint(p.Gaps()); g != w {
			tb.Fatalf("store gaps %s, want %s", g, w)
		}
		if v.Pruned() != p.Pruned() {
			tb.Fatalf("store Pruned() = %+v, want %+v", v.Pruned(), p.Pruned())
		}
		// What the dump leaves out: the spans and the pruned cells a
		// formation counts.
		if g, w := registryText(v.Registry()), registryText(p.Registry()); g != w {
			tb.Fatalf("store registry %.800s\nwant %.800s", g, w)
		}
		// The state hash, streamed from the file, is the fold's.
		g, err := projection.Hash(v)
		if err != nil {
			tb.Fatalf("Hash(store): %v", err)
		}
		if w, _ := projection.Hash(p); g != w {
			d, _ := projection.FirstDifference(p, v)
			tb.Fatalf("Hash(store) = %+v, want the fold's %+v (%s)", g, w, d)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// registryText renders every entity of r with what is not served of it,
// ordered by id.
func registryText(r projection.Registry) string {
	var b strings.Builder
	for _, id := range slices.Sorted(maps.Keys(r.Formations)) {
		f := r.Formations[id]
		fmt.Fprintf(&b, "formation %s %+v %+v\n", jsonOf(f), f.Span, f.PrunedCells)
	}
	for _, id := range slices.Sorted(maps.Keys(r.Cells)) {
		c := r.Cells[id]
		fmt.Fprintf(&b, "cell %s %+v\n", jsonOf(c), c.Span)
	}
	return b.String()
}

func TestCommitRoundTrip(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "cp.db"))
	events := testutil.Workload(500)
	write(t, s, "epoch-1", events, 37)
	cp, found, err := s.Info()
	if err != nil || !found {
		t.Fatalf("Info() = found %v, err %v; want found", found, err)
	}
	if cp.Epoch != "epoch-1" || cp.Meta.Cursor != 500 || cp.Schema != SchemaVersion {
		t.Fatalf("Info() = %+v, want epoch-1 cursor 500 schema %d", cp, SchemaVersion)
	}
	sameAs(t, s, fold(events))
}

func TestResetDropsEverything(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "cp.db"))
	write(t, s, "e1", testutil.Workload(100), 10)
	events := testutil.Workload(5)
	write(t, s, "e2", events, 10)
	sameAs(t, s, fold(events))
	if cp, _, _ := s.Info(); cp.Epoch != "e2" {
		t.Fatalf("epoch after the reset = %q, want e2", cp.Epoch)
	}
}

// A commit that fails in the middle of its transaction writes nothing: the
// previous state stays, and the changes go into the next commit.
func TestFailedCommitKeepsThePreviousState(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "cp.db"))
	events := testutil.Workload(80)
	write(t, s, "e1", events[:50], 10)
	b, err := s.Batch()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var dec projection.Decoder
	for i, ev := range events[50:] {
		projection.Apply(b, dec.Decode(projection.Message{Seq: uint64(51 + i), Time: time.Unix(1700000000, 0), Payload: ev.Payload}))
	}
	// A cell whose id bbolt refuses as a key fails the transaction after
	// the other records were put.
	b.SaveCell(projection.Cell{ID: "", State: projection.CellAdmitted})
	if err := b.Commit(time.Now()); err == nil {
		t.Fatal("Commit with an empty key succeeded; want an error")
	}
	sameAs(t, s, fold(events[:50]))
	// Without the bad cell the pending changes all go in.
	delete(b.cells, "")
	b.dCells = slices.DeleteFunc(b.dCells, func(sl *cellSlot) bool { return sl.c.ID == "" })
	if err := b.Commit(time.Now()); err != nil {
		t.Fatal(err)
	}
	sameAs(t, s, fold(events))
}

// The store folds like the in-memory projection, whatever the log and
// wherever the commits fall, also across a close and a reopen of the file:
// same entities, counts, position, counters, summary and query answers,
// and derived data that agrees with the records. The logs hold both
// subject forms and tenants that collide: every rule of fold v3 rejects
// some event, and cells inherit a tenant both through the committed index
// and through what joined a formation since the last commit.
func TestStoreEqualsMemoryFold(t *testing.T) {
	seeds := []uint64{1, 2, 3, 42, 1234567}
	n := 60
	if testing.Short() {
		n = 10
	}
	for i := range n {
		seeds = append(seeds, uint64(i)*0x9E3779B97F4A7C15+7)
	}
	rejected := map[projection.Rejection]int{}
	var inherited inheritance
	var pruned projection.Pruned
	t.Cleanup(func() {
		if t.Failed() {
			return
		}
		for _, why := range []projection.Rejection{projection.RejectedSubjectTenant, projection.RejectedEntityTenant, projection.RejectedFormationTenant} {
			if rejected[why] == 0 {
				t.Errorf("no random log had an event rejected by %s", why)
			}
		}
		if pruned.Formations == 0 || pruned.Cells == 0 {
			t.Errorf("the random logs pruned %+v, want formations and cells", pruned)
		}
		if inherited.committed == 0 || inherited.joined == 0 {
			t.Errorf("cells inherited through the index %d times, through what joined since the last commit %d times; want both", inherited.committed, inherited.joined)
		}
	})
	for _, seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, seed^0xC0FFEE))
			log := testutil.RandomLog(r, 1+r.IntN(300))
			path := filepath.Join(t.TempDir(), "cp.db")
			s, _, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Reset("e"); err != nil {
				t.Fatal(err)
			}
			want := projection.New()
			var dec projection.Decoder
			b, _ := s.Batch()
			// Every other log is pruned: at each commit, as the store
			// prunes, at a floor that moves up now and then — also past
			// events still to be applied (read before they expired). One
			// in four prunes a few entities a commit (SetPruneLimit): the
			// Projection prunes at the floor the commit got to.
			pruning := seed%2 == 1
			limit := DefaultPruneLimit
			if seed%4 == 3 {
				limit = 1 + r.IntN(3)
			}
			b.SetPruneLimit(limit)
			var floor uint64
			commit := func(seq uint64) {
				t.Helper()
				if pruning && r.IntN(3) == 0 {
					floor = max(floor, uint64(max(0, int64(seq)+2-r.Int64N(8))))
					b.SetFloor(floor)
				}
				if err := b.Commit(time.Now()); err != nil {
					t.Fatal(err)
				}
				want.Prune(b.Meta().Pruned.Floor)
			}
			for i, m := range log {
				msg := projection.Message{Seq: m.Seq, Subject: m.Subject, Time: m.Time, Payload: m.Payload}
				want.Apply(msg)
				if _, why := projection.Apply(&inheritanceSpy{b, &inherited}, dec.Decode(msg)); why != "" {
					rejected[why]++
				}
				if r.IntN(6) == 0 {
					commit(m.Seq)
				}
				if r.IntN(40) == 0 || i == len(log)/2 {
					// A restart: commit, close, reopen, go on from the file.
					commit(m.Seq)
					b.Close()
					s.Close()
					if s, _, err = Open(path); err != nil {
						t.Fatal(err)
					}
					if b, err = s.Batch(); err != nil {
						t.Fatal(err)
					}
					b.SetPruneLimit(limit)
				}
			}
			commit(log[len(log)-1].Seq)
			b.Close()
			defer s.Close()
			sameAs(t, s, want)
			sameQueries(t, s, want)
			pruned.Formations += want.Pruned().Formations
			pruned.Cells += want.Pruned().Cells
			err = s.View(func(v *View) error {
				if d := v.Check(10); len(d) != 0 {
					t.Errorf("Check() = %q, want nothing", d)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// inheritance counts the cells a Batch listed for a formation that got
// its first tenant: found in the committed index, or joined since.
type inheritance struct{ committed, joined int }

type inheritanceSpy struct {
	*Batch
	n *inheritance
}

func (s *inheritanceSpy) FormationCells(id string) []string {
	s.n.joined += len(s.joined[id])
	ids := s.Batch.FormationCells(id)
	s.n.committed += len(ids) - len(s.joined[id])
	return ids
}

// sameQueries asks the store's view and the in-memory fold the same
// questions: every filter, paged.
func sameQueries(t *testing.T, s *Store, want *projection.Projection) {
	t.Helper()
	tenants := []string{"", "t0", "t1", "t2", "zz"}
	err := s.View(func(v *View) error {
		for _, tenant := range tenants {
			if g, w := jsonOf(v.Summary(tenant)), jsonOf(want.Summary(tenant)); g != w {
				t.Fatalf("Summary(%q) = %s, want %s", tenant, g, w)
			}
			for _, status := range []string{"", projection.FormationRunning, projection.FormationCompleted} {
				for _, prefix := range []string{"", "f1", "x"} {
					fl := projection.FormationFilter{Tenant: tenant, Status: status, Prefix: prefix}
					if g, w := pages(func(pg projection.Page) (any, string) { return v.Formations(fl, pg) }), pages(func(pg projection.Page) (any, string) { return want.Formations(fl, pg) }); g != w {
						t.Fatalf("Formations(%+v) = %s, want %s", fl, g, w)
					}
				}
			}
			for _, formation := range []string{"", "f0", "f2"} {
				for _, state := range []string{"", projection.CellRunning, projection.CellDestroyed} {
					for _, outcome := range []string{"", projection.OutcomeFailed, projection.OutcomeUnset} {
						fl := projection.CellFilter{Tenant: tenant, Formation: formation, State: state, Outcome: outcome, Prefix: []string{"", "c1"}[len(outcome)%2]}
						if g, w := pages(func(pg projection.Page) (any, string) { return v.Cells(fl, pg) }), pages(func(pg projection.Page) (any, string) { return want.Cells(fl, pg) }); g != w {
							t.Fatalf("Cells(%+v) = %s, want %s", fl, g, w)
						}
					}
				}
			}
		}
		for _, id := range []string{"f0", "f1", "f2", "f3", "nope"} {
			gf, gok := v.Formation(id)
			wf, wok := want.Formation(id)
			if g, w := jsonOf([]any{gf, gok}), jsonOf([]any{wf, wok}); g != w {
				t.Fatalf("Formation(%q) = %s, want %s", id, g, w)
			}
		}
		gf, gc := v.Size()
		wf, wc := want.Size()
		if gf != wf || gc != wc {
			t.Fatalf("Size() = %d, %d, want %d, %d", gf, gc, wf, wc)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// pages reads every page of a list, two items at a time, as one string.
func pages(list func(projection.Page) (any, string)) string {
	var out []string
	pg := projection.Page{Limit: 2}
	for range 1000 {
		items, next := list(pg)
		out = append(out, jsonOf(items))
		if next == "" {
			return strings.Join(out, "|")
		}
		pg.After = next
	}
	return "too many pages"
}

func jsonOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "!" + err.Error()
	}
	return string(b)
}

// usedBytes is how much of a state file's content bbolt uses: its
// high-water mark.
func usedBytes(tb testing.TB, content []byte) int {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "used.db")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		tb.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var n int64
	_ = db.View(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
	return int(n)
}

func TestOpenMovesUnreadableFilesAside(t *testing.T) {
	cases := map[string][]byte{
		"foreign":   []byte("this is not a bbolt file, it is a text file that someone put here\n"),
		"truncated": nil, // filled below from a real checkpoint
		"garbage":   []byte(strings.Repeat("\xde\xad\xbe\xef", 4096)),
	}
	{
		b := checkpointFile(t, 200)
		cases["truncated"] = b[:1000]
		// Truncated at a page boundary: bbolt opens it and then reads
		// past the end of the mapping (SIGBUS) unless guarded.
		cases["truncated-at-page"] = b[:4096]
		// Half of what the file uses (bbolt grows its file ahead of use:
		// cutting into the free tail loses nothing).
		cases["truncated-half"] = b[:usedBytes(t, b)/2/4096*4096]
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cp.db")
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			s, aside, err := Open(path)
			if err != nil {
				t.Fatalf("Open(%s file) = %v, want a fresh store", name, err)
			}
			defer s.Close()
			if aside == "" {
				t.Fatalf("Open(%s file) moved nothing aside", name)
			}
			kept, err := os.ReadFile(aside)
			if err != nil || string(kept) != string(content) {
				t.Fatalf("aside file %s does not hold the original bytes (err %v)", aside, err)
			}
			if _, found, err := s.Info(); found || err != nil {
				t.Fatalf("fresh store Info() = found %v err %v, want empty", found, err)
			}
		})
	}
}

func TestOpenZeroLengthFileIsEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cp.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s, aside, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, found, err := s.Info(); found || err != nil {
		t.Fatalf("zero-length file: Info() = found %v err %v (aside %q), want no checkpoint", found, err, aside)
	}
}

func TestOpenLockedFileIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cp.db")
	mustOpen(t, path)
	start := time.Now()
	_, aside, err := Open(path)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	if aside != "" {
		t.Fatalf("a locked file was moved aside to %s", aside)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Open on a locked file took %s", d)
	}
}

func TestInfoReportsOtherSchemas(t *testing.T) {
	for _, schema := range []uint64{0, SchemaVersion + 1} {
		path := filepath.Join(t.TempDir(), "cp.db")
		s := mustOpen(t, path)
		write(t, s, "e", testutil.Workload(10), 3)
		err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySchema, be64(schema)) })
		if err != nil {
			t.Fatal(err)
		}
		cp, found, err := s.Info()
		if err != nil || !found || cp.Schema != schema {
			t.Fatalf("Info() with schema %d = %+v found %v err %v", schema, cp, found, err)
		}
	}
}

func TestQuarantineKeepsTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cp.db")
	s := mustOpen(t, path)
	write(t, s, "e", testutil.Workload(10), 3)
	aside, err := s.Quarantine()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(aside); err != nil {
		t.Fatalf("quarantined file %s: %v", aside, err)
	}
	if _, found, _ := s.Info(); found {
		t.Fatal("after Quarantine the store still has a checkpoint")
	}
}

// A commit in which many cells keep some index keys and change others (the
// formation filled in by a later event, the state unchanged or moved on):
// every kept key stays, every dropped key goes. With more than a dozen
// operations on one index bucket the sort at flush is not stable, so a
// delete and a put of one key would be applied in either order.
func TestCommitKeepsIndexKeysAnEntityStillHas(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "cp.db"))
	var first, second []testutil.Event
	for i := range 40 {
		id := fmt.Sprintf("c%02d", i)
		first = append(first, testutil.Cell(id, "admitted", map[string]any{"tenantId": "t0"}))
		phase := "admitted" // only the formation is filled in
		if i%3 == 0 {
			phase = "started"
		}
		second = append(second, testutil.Cell(id, phase, map[string]any{"formationId": "f0"}))
	}
	second = append(second, testutil.Formation("f0", "created", map[string]any{"tenantId": "t0"}))
	events := append(slices.Clone(first), second...)
	// Two commits: the first holds the cells without their formation.
	write(t, s, "e", events, len(first))
	want := fold(events)
	sameAs(t, s, want)
	sameQueries(t, s, want)
}

// Check finds nothing in a state this package wrote, and names each
// derived key or counter that disagrees with the records.
func TestCheckFindsDerivedDataThatDisagrees(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "cp.db"))
	write(t, s, "e", testutil.Workload(2000), 97)
	check := func() []string {
		var diffs []string
		if err := s.View(func(v *View) error { diffs = v.Check(10); return nil }); err != nil {
			t.Fatal(err)
		}
		return diffs
	}
	if d := check(); len(d) != 0 {
		t.Fatalf("Check of a written state: %q", d)
	}
	// Tamper with the derived data behind the store's back: an index key
	// goes, a stray one comes, a formation's counts and a tenant's
	// aggregate change.
	err := s.db.Update(func(tx *bolt.Tx) error {
		ix := tx.Bucket(bucketCellByClass)
		k, _ := ix.Cursor().First()
		if err := ix.Delete(append([]byte(nil), k...)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketFormByStatus).Put([]byte{1, 'z', 'z'}, indexValue([]byte{1, 'z', 'z'})); err != nil {
			return err
		}
		if err := tx.Bucket(bucketCounts).Put([]byte("f-00001"), encodeCounts("f-00001", projection.CellCounts{Total: 99})); err != nil {
			return err
		}
		return tx.Bucket(bucketAggregates).Put(aggKey("tenant-2"), (&aggregate{}).encode(aggKey("tenant-2")))
	})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(check(), "\n")
	for _, want := range []string{"ix-cell-class: key", "missing", `ix-formation-status: key "\x01zz" belongs to no record`, `cell counts of formation "f-00001"`, `aggregate of tenant "tenant-2"`} {
		if !strings.Contains(got, want) {
			t.Errorf("Check after tampering lacks %q:\n%s", want, got)
		}
	}
}

// A panic of the caller's own code inside View stays a panic: only the
// View's reads of the file are damage.
func TestViewPanicOfTheCallerIsNoDamage(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "cp.db"))
	write(t, s, "e", testutil.Workload(100), 10)
	defer func() {
		if r := recover(); r != "caller bug" {
			t.Fatalf("recovered %v, want the caller's panic", r)
		}
	}()
	err := s.View(func(v *View) error { panic("caller bug") })
	t.Fatalf("View returned %v instead of panicking", err)
}

// A filter on a status or state no entity can have selects nothing.
func TestViewUnknownFilterValuesSelectNothing(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "cp.db"))
	write(t, s, "e", testutil.Workload(300), 10)
	err := s.View(func(v *View) error {
		if f, next := v.Formations(projection.FormationFilter{Status: "bogus"}, projection.Page{}); len(f) != 0 || next != "" {
			t.Errorf("Formations(status bogus) = %d formations, next %q", len(f), next)
		}
		if c, _ := v.Cells(projection.CellFilter{State: "bogus"}, projection.Page{}); len(c) != 0 {
			t.Errorf("Cells(state bogus) = %d cells", len(c))
		}
		if c, _ := v.Cells(projection.CellFilter{Outcome: "bogus"}, projection.Page{}); len(c) != 0 {
			t.Errorf("Cells(outcome bogus) = %d cells", len(c))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The cache of a Batch is bounded by the bytes its entities hold, not
// only by their number: cells with large compliance summaries are evicted
// once committed, and read back from the file as they were.
func TestBatchCacheIsBoundedInBytes(t *testing.T) {
	_, b := openBatch(t)
	b.limitBytes = 1 << 20
	big := `{"report":"` + strings.Repeat("x", 64<<10) + `"}`
	for i := range 100 {
		b.SaveCell(projection.Cell{ID: fmt.Sprintf("c-%03d", i), State: projection.CellAdmitted, Compliance: json.RawMessage(big), LastSeq: uint64(i + 1)})
	}
	if b.CachedBytes() < 100*64<<10 {
		t.Fatalf("CachedBytes = %d before the commit, want at least the 100 summaries", b.CachedBytes())
	}
	b.Meta().Cursor = 100
	if err := b.Commit(time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := b.CachedBytes(); got > b.limitBytes {
		t.Errorf("CachedBytes = %d after the commit, want at most %d", got, b.limitBytes)
	}
	c, ok := b.LoadCell("c-042")
	if !ok || string(c.Compliance) != big {
		t.Errorf("c-042 read back: found %v, compliance of %d bytes; want the summary of %d", ok, len(c.Compliance), len(big))
	}
}
