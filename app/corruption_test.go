package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cellos-allinone/api"
	"cellos-allinone/app"
	"cellos-allinone/apptest"
	"cellos-allinone/projection"
	"cellos-allinone/projector"
	"cellos-allinone/store"
	"cellos-allinone/testutil"
)

// The corruption fuzzer (issue 18, docs/durability.md "Corruption"): a
// server over a state file of a few thousand events takes one random
// damage after another — a flipped bit, a zeroed 4 KiB, a garbled half
// page, aimed at meta, freelist, branch, leaf (its header, element
// headers, keys, values) or free pages — into the live file or, every
// restartEvery-th damage, into the stopped one. After each, every
// formation and cell by id, every page of the lists (unfiltered and by
// tenant, formation, status or state), the summaries and the status's
// registry counts must answer what a fold of the stream answers, or 503
// state_damaged; anything else is a wrong answer and fails with the seed.
// Then the damage must be found (on read, by a scrub pass, at start) and
// the state return to the fold.
//
// CELLOS_DAMAGES sets the number of damages (the quick form runs
// quickDamages; the long one, task fuzz-damage, 1,000),
// CELLOS_DAMAGE_SEED the first seed (default 1; damage i has seed
// first+i): one damage is redone with CELLOS_DAMAGES=1
// CELLOS_DAMAGE_SEED=<its seed> (a restart round then too when
// CELLOS_DAMAGE_RESTART=1).

const (
	quickDamages     = 25
	quickDamagesRace = 6
	restartEvery     = 5
	answerTimeout    = 10 * time.Second // one request: a hang past it is a wrong answer
	repairTimeout    = 60 * time.Second // a repair from the stream of this data set
)

// damageDataset: the workload (formations of ten cells each, three
// tenants, every cell destroyed at the end) and live formations in three
// more tenants, published in the tenant form, whose cells are admitted,
// running or completed — so that the state has several leaf pages per
// bucket and branch pages, and every filter has entries.
func damageDataset() []testutil.Event {
	ev := testutil.Workload(3000)
	for f := range 30 {
		fid := fmt.Sprintf("g-%03d", f)
		tenant := fmt.Sprintf("tenant-%d", 3+f%3)
		in := func(e testutil.Event) testutil.Event { return testutil.InTenant(tenant, e) }
		ev = append(ev, in(testutil.Formation(fid, "created", map[string]any{"name": "live " + fid})), in(testutil.Formation(fid, "running", nil)))
		for c := range 12 {
			cid := fmt.Sprintf("%s-c%02d", fid, c)
			ev = append(ev, in(testutil.Cell(cid, "admitted", map[string]any{"formationId": fid})))
			if c%3 > 0 {
				ev = append(ev, in(testutil.Cell(cid, "started", nil)))
			}
			if c%3 == 2 {
				ev = append(ev, in(testutil.Cell(cid, "completed", map[string]any{"exitCode": 0})))
			}
		}
	}
	return ev
}

// oracle answers every request the fuzzer makes from the fold.
type oracle struct {
	fold   *projection.Projection
	epoch  string
	client *http.Client
	base   func() string
}

// answer is what one request got: 0 and "" when it equals the fold's,
// else a description of the difference; damaged when it was 503
// state_damaged.
type answer struct {
	damaged bool
	wrong   string
}

// norm re-encodes a JSON value canonically (object keys sorted).
func norm(b []byte) (string, error) {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return "", err
	}
	out, err := json.Marshal(v)
	return string(out), err
}

// ask GETs path and compares the answer with want (encoded as JSON), or
// with a 404 when want is nil.
func (o *oracle) ask(path string, want any) answer {
	resp, err := o.client.Get(o.base() + path)
	if err != nil {
		return answer{wrong: fmt.Sprintf("GET %s: %v", path, err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{wrong: fmt.Sprintf("GET %s: reading the body: %v", path, err)}
	}
	if resp.StatusCode == http.StatusServiceUnavailable {
		var e struct {
			Error struct{ Code string } `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error.Code == "state_damaged" {
			return answer{damaged: true}
		}
		return answer{wrong: fmt.Sprintf("GET %s: 503 that is not state_damaged: %s", path, body)}
	}
	wantStatus := http.StatusOK
	if want == nil {
		wantStatus = http.StatusNotFound
	}
	if resp.StatusCode != wantStatus {
		return answer{wrong: fmt.Sprintf("GET %s: status %d, want %d: %.300s", path, resp.StatusCode, wantStatus, body)}
	}
	if want == nil {
		return answer{}
	}
	w, err := json.Marshal(want)
	if err != nil {
		panic(err)
	}
	ws, _ := norm(w)
	gs, err := norm(body)
	if err != nil {
		return answer{wrong: fmt.Sprintf("GET %s: not JSON (%v): %.300s", path, err, body)}
	}
	if gs != ws {
		at := 0
		for at < len(gs) && at < len(ws) && gs[at] == ws[at] {
			at++
		}
		from := max(0, at-200)
		return answer{wrong: fmt.Sprintf("GET %s: differs at byte %d:\n got …%.500s\nwant …%.500s", path, at, gs[from:], ws[from:])}
	}
	return answer{}
}

// readAll makes every request of the round and returns how many answered
// 503 state_damaged and the wrong answers.
func (o *oracle) readAll() (damaged int, wrong []string) {
	p, cur, ep := o.fold, o.fold.Cursor(), o.epoch
	note := func(a answer) {
		if a.damaged {
			damaged++
		}
		if a.wrong != "" {
			wrong = append(wrong, a.wrong)
		}
	}
	stop := func() bool { return len(wrong) >= 3 } // enough to tell; a hanging server would take 10 s per request
	// Lists, page by page as a client follows next (the fold's next,
	// which a right answer carries).
	formationLists := []projection.FormationFilter{{}, {Tenant: "tenant-0"}, {Tenant: "tenant-4"}, {Status: "completed"}, {Status: "running"}}
	for _, fl := range formationLists {
		after := ""
		for range 1000 {
			pg := projection.Page{After: after, Limit: 7}
			fs, next := p.Formations(fl, pg)
			q := url.Values{"limit": {"7"}}
			set := func(k, v string) {
				if v != "" {
					q.Set(k, v)
				}
			}
			set("after", after)
			set("tenant", fl.Tenant)
			set("status", fl.Status)
			a := o.ask("/v1/formations?"+q.Encode(), api.FormationList{Cursor: cur, Epoch: ep, Formations: nonNil(fs), Next: next})
			note(a)
			if next == "" || a.wrong != "" {
				break
			}
			after = next
		}
	}
	cellLists := []projection.CellFilter{{}, {Tenant: "tenant-1"}, {Tenant: "tenant-5"}, {Formation: "f-00007"}, {Formation: "g-004"},
		{State: projection.CellDestroyed}, {State: "running"}, {State: "admitted"}, {Formation: "g-011", Tenant: "tenant-5"}}
	for _, fl := range cellLists {
		after := ""
		for range 1000 {
			pg := projection.Page{After: after, Limit: 50}
			cs, next := p.Cells(fl, pg)
			q := url.Values{"limit": {"50"}}
			set := func(k, v string) {
				if v != "" {
					q.Set(k, v)
				}
			}
			set("after", after)
			set("tenant", fl.Tenant)
			set("formation", fl.Formation)
			set("state", fl.State)
			a := o.ask("/v1/cells?"+q.Encode(), api.CellList{Cursor: cur, Epoch: ep, Cells: nonNil(cs), Next: next})
			note(a)
			if next == "" || a.wrong != "" {
				break
			}
			after = next
		}
	}
	for _, tenant := range []string{"", "tenant-2", "tenant-3"} {
		path := "/v1/summary"
		if tenant != "" {
			path += "?tenant=" + tenant
		}
		note(o.ask(path, api.Summary{Cursor: cur, Epoch: ep, Summary: p.Summary(tenant)}))
	}
	// Every formation and cell by id, and ids that do not exist (the
	// point read of an absent id is the one a garbled key could fool).
	all, _ := p.Formations(projection.FormationFilter{}, projection.Page{Limit: projection.MaxLimit})
	for _, f := range all {
		if stop() {
			return damaged, wrong
		}
		cells, next := p.Cells(projection.CellFilter{Formation: f.ID}, projection.Page{Limit: 100})
		note(o.ask("/v1/formations/"+f.ID, api.FormationDetail{Cursor: cur, Epoch: ep, Formation: f, Cells: nonNil(cells), CellsNext: next}))
	}
	// The cells by id, four requests at a time: most of a round's
	// requests, and the server answers them concurrently anyway.
	var cells []projection.Cell
	for after := ""; ; {
		cs, next := p.Cells(projection.CellFilter{}, projection.Page{After: after, Limit: projection.MaxLimit})
		cells = append(cells, cs...)
		if next == "" {
			break
		}
		after = next
	}
	answers := make([]answer, len(cells))
	var wg sync.WaitGroup
	var nextCell atomic.Int64
	for range 4 {
		wg.Go(func() {
			for i := int(nextCell.Add(1) - 1); i < len(cells); i = int(nextCell.Add(1) - 1) {
				answers[i] = o.ask("/v1/cells/"+cells[i].ID, api.CellDetail{Cursor: cur, Epoch: ep, Cell: cells[i]})
				if answers[i].wrong != "" {
					nextCell.Store(int64(len(cells))) // enough to tell
				}
			}
		})
	}
	wg.Wait()
	for _, a := range answers {
		if note(a); stop() {
			return damaged, wrong
		}
	}
	for _, id := range []string{"f-00003-c0", "f-00003-c045", "g-0", "zz", "f-00009-c10"} {
		note(o.ask("/v1/cells/"+id, nil))
	}
	note(o.ask("/v1/formations/f-0000", nil))
	// The status's registry counts.
	damagedStatus, st, wrongStatus := o.status()
	switch {
	case wrongStatus != "":
		wrong = append(wrong, wrongStatus)
	case damagedStatus:
		damaged++
	default:
		fs, cs := p.Size()
		if st.Registry.Formations != fs || st.Registry.Cells != cs || st.Cursor != cur {
			wrong = append(wrong, fmt.Sprintf("/v1/status: cursor %d registry %d formations %d cells, want %d, %d, %d", st.Cursor, st.Registry.Formations, st.Registry.Cells, cur, fs, cs))
		}
	}
	return damaged, wrong
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// status reads /v1/status: damaged on a 503 state_damaged, else the
// status, or what was wrong with the answer.
func (o *oracle) status() (damaged bool, st projector.Status, wrong string) {
	resp, err := o.client.Get(o.base() + "/v1/status")
	if err != nil {
		return false, st, fmt.Sprintf("GET /v1/status: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusServiceUnavailable && bytes.Contains(body, []byte(`"state_damaged"`)) {
		return true, st, ""
	}
	if resp.StatusCode != http.StatusOK {
		return false, st, fmt.Sprintf("GET /v1/status: %d %.300s", resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return false, st, fmt.Sprintf("GET /v1/status: %v: %.300s", err, body)
	}
	return false, st, ""
}

// damageTally counts what became of the damages.
type damageTally struct {
	tried, caughtOnRead, caughtByScrub, caughtAtStart, noEffect, notCaught, restarts int
	finalCommit                                                                      int // stops whose final commit met earlier damage
	byTarget                                                                         map[string]int
	repairs                                                                          []time.Duration
}

func TestCorruptionFuzzer(t *testing.T) {
	n := quickDamages
	if raceDetector {
		// CI's -race run: a few rounds for the race detector's sake;
		// .ci/run runs the quick form without it.
		n = quickDamagesRace
	}
	if s := os.Getenv("CELLOS_DAMAGES"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			t.Fatalf("CELLOS_DAMAGES=%q: %v", s, err)
		}
	}
	// Seeds from 1 unless told: the quick form in CI draws the same
	// damages every run (a file's layout differs by a few bytes at most),
	// so it fails on a change of the code, not on the luck of a draw.
	first := uint64(1)
	if s := os.Getenv("CELLOS_DAMAGE_SEED"); s != "" {
		var err error
		if first, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("CELLOS_DAMAGE_SEED=%q: %v", s, err)
		}
	}
	forceRestart := os.Getenv("CELLOS_DAMAGE_RESTART") == "1"
	t.Logf("%d damages from seed %d", n, first)

	dir := t.TempDir()
	cfg := app.Config{DataDir: dir}
	a := apptest.Start(t, cfg)
	events := damageDataset()
	seqs := a.Publish(events...)
	a.WaitCursor(seqs[len(seqs)-1])
	// A clean restart: the state file as a server leaves it.
	a.Stop()
	a = apptest.Start(t, cfg)
	fold := foldOf(t, a.Events)
	if dumpOf(a) != string(fold.Dump()) {
		t.Fatal("before any damage the served state differs from the fold")
	}
	o := &oracle{fold: fold, epoch: a.Events.Epoch(), client: &http.Client{Timeout: answerTimeout}, base: func() string { return a.URL() }}
	if damaged, wrong := o.readAll(); damaged > 0 || len(wrong) > 0 {
		t.Fatalf("before any damage: %d damaged answers, wrong answers:\n%s", damaged, strings.Join(wrong, "\n"))
	}
	path := filepath.Join(dir, app.CheckpointFile)
	if m, err := testutil.MapBolt(path); err == nil {
		t.Logf("state file: %d pages of %d bytes: %s", len(m.Pages), m.PageSize, m.Classes())
	} else {
		t.Fatal(err)
	}

	tally := damageTally{byTarget: map[string]int{}}
	began := time.Now()
	for i := range n {
		seed := first + uint64(i)
		restart := forceRestart || i%restartEvery == restartEvery-1
		m, err := testutil.MapBolt(path)
		if err != nil {
			t.Fatalf("damage %d (seed %d): the repaired file does not map: %v", i, seed, err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		d := testutil.DrawDamage(seed, m, data)
		if only := os.Getenv("CELLOS_DAMAGE_CLASS"); only != "" {
			// Aim at one page class (and kind: "branch/flip"): seeds are
			// drawn until one hits it; each printed damage is still
			// redone by its own seed.
			for k := uint64(1); !strings.HasPrefix(d.Class+"/"+d.Kind, only) && k < 1000; k++ {
				seed = first + uint64(i) + k*1_000_003
				d = testutil.DrawDamage(seed, m, data)
			}
		}
		where := "live"
		if restart {
			where = "stopped"
		}
		// Before it is applied: a crash of the process still names it.
		fmt.Fprintf(os.Stderr, "damage %d (%s file): %v\n", i, where, d)
		fail := func(format string, args ...any) {
			t.Helper()
			if msg := fmt.Sprintf(format, args...); strings.Contains(msg, "Timeout exceeded") {
				_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 2) // where a request hangs
			}
			t.Fatalf("damage %d (%s file) %v\n(redo: CELLOS_DAMAGES=1 CELLOS_DAMAGE_SEED=%d CELLOS_DAMAGE_RESTART=%d go test -run TestCorruptionFuzzer ./app/)\n%s",
				i, where, d, seed, map[bool]int{true: 1}[restart], fmt.Sprintf(format, args...))
		}
		tally.tried++
		tally.byTarget[d.Class+"/"+d.Kind]++
		caughtAtStart := false
		if restart {
			tally.restarts++
			// The final commit meets damage an earlier round left in
			// what no read uses (a freelist page): an error that says
			// so is right; the start then finds it.
			if err := a.StopErr(); err != nil && !errors.Is(err, store.ErrDamaged) {
				fail("stop: %v", err)
			} else if err != nil {
				tally.finalCommit++
			}
			if err := d.Apply(path); err != nil {
				t.Fatal(err)
			}
			// It must start and serve: a damaged file costs a rebuild
			// or 503s, never a crash loop.
			a = startOrFail(t, cfg, fail)
			if ds, st, w := o.status(); w == "" && !ds && st.Boot.Rebuild != "" {
				caughtAtStart = true
			}
		} else if err := d.Apply(path); err != nil {
			t.Fatal(err)
		}
		damaged, wrong := o.readAll()
		noEffect := false // every answer the fold's, and the full read clean
		if len(wrong) > 0 {
			fail("%d wrong answers, the first:\n%s", len(wrong), strings.Join(wrong[:min(3, len(wrong))], "\n"))
		}
		switch {
		case caughtAtStart:
			tally.caughtAtStart++
		case damaged > 0:
			tally.caughtOnRead++
		default:
			// Nothing read noticed: a scrub pass (which asks for the
			// repair when it finds damage). A clean one is checked by
			// a full read of every record and the state's cross-check
			// of what it keeps beside them (store.View.Check): what
			// that finds, the scrub missed.
			ctx, cancel := context.WithTimeout(context.Background(), repairTimeout)
			rep, err := a.Proj.ScrubNow(ctx)
			cancel()
			if err != nil && rep.Damaged == 0 {
				fail("ScrubNow: %v", err)
			}
			if rep.Damaged > 0 {
				tally.caughtByScrub++
				break
			}
			switch fullRead(a) {
			case scrubDamaged:
				// A damaged record the scrub passed: the full read asked
				// for the repair.
				tally.notCaught++
				t.Logf("damage %d missed by the scrub, found by a full read: %v", i, d)
			case scrubLatent:
				// The cross-check only: it stays in the file until
				// something repairs it; start this round's server over
				// on a rebuilt file so the next damage meets a clean one.
				tally.notCaught++
				t.Logf("damage %d missed by the scrub, found by the cross-check: %v", i, d)
				if err := a.StopErr(); err != nil && !errors.Is(err, store.ErrDamaged) {
					fail("stop: %v", err)
				}
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
				a = startOrFail(t, cfg, fail)
			default:
				tally.noEffect++
				noEffect = true
			}
		}
		start := time.Now()
		if !repaired(o, a, !noEffect) {
			damaged, wrong := o.readAll()
			ds, st, ws := o.status()
			_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 2) // where it is stuck, running goroutines too
			fail("the state did not return to the fold within %v: %d damaged answers, wrong: %s\nstatus: damaged %v %s ready %v stale %v rebuild %+v boot %+v",
				repairTimeout, damaged, strings.Join(wrong[:min(3, len(wrong))], "\n"), ds, ws, st.Ready, st.Stale, st.Rebuild, st.Boot)
		}
		if took := time.Since(start); took > 50*time.Millisecond {
			tally.repairs = append(tally.repairs, took)
		}
		if dumpOf(a) != string(fold.Dump()) {
			fail("after the repair the served state differs from the fold")
		}
		removeAside(t, dir)
	}
	sort.Slice(tally.repairs, func(i, j int) bool { return tally.repairs[i] < tally.repairs[j] })
	var targets []string
	for k, v := range tally.byTarget {
		targets = append(targets, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(targets)
	median := time.Duration(0)
	if len(tally.repairs) > 0 {
		median = tally.repairs[len(tally.repairs)/2]
	}
	t.Logf("damages tried %d (%d into a stopped file), caught on read %d, caught by the scrub %d, caught at start %d, no effect %d, missed by the scrub %d, wrong answers 0, crashes 0; %d stops whose final commit met earlier damage; %d repairs waited for (median %v); %v in all\nby target: %s",
		tally.tried, tally.restarts, tally.caughtOnRead, tally.caughtByScrub, tally.caughtAtStart, tally.noEffect, tally.notCaught, tally.finalCommit,
		len(tally.repairs), median.Round(time.Millisecond), time.Since(began).Round(time.Second), strings.Join(targets, ", "))
}

// startOrFail starts the program on cfg's data dir, failing with fail
// when it cannot (a crash loop's first turn).
func startOrFail(t *testing.T, cfg app.Config, fail func(string, ...any)) *apptest.App {
	t.Helper()
	a := apptest.StartNotReady(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), repairTimeout)
	defer cancel()
	if err := a.Proj.WaitReady(ctx); err != nil {
		fail("the program did not get ready after a start: %v", err)
	}
	return a
}

// Outcomes of fullRead.
const (
	scrubClean = iota
	scrubDamaged
	scrubLatent
)

// fullRead reads the whole state through the projector (every record,
// and the state's cross-check of indexes, counts and aggregates against
// them): the check of a scrub that found nothing. A damaged record met
// starts a repair (the projector's Read asks for it).
func fullRead(a *apptest.App) int {
	var diffs []string
	err := a.Proj.Read(func(v projector.View) {
		sv := v.Reader.(*store.View)
		sv.Dump()
		diffs = sv.Check(5)
	})
	switch {
	case err != nil:
		return scrubDamaged
	case len(diffs) > 0:
		return scrubLatent
	}
	return scrubClean
}

// repaired waits until the status says no repair is under way and every
// answer equals the fold's.
// With reread false (no answer of the round met damage) the answers are
// not read again: the round's were the fold's.
func repaired(o *oracle, a *apptest.App, reread bool) bool {
	return testutil.Poll(repairTimeout, 20*time.Millisecond, func() bool {
		damaged, st, wrong := o.status()
		if damaged || wrong != "" || st.Stale || !a.Proj.Ready() {
			return false
		}
		if !reread {
			return true
		}
		d, w := o.readAll()
		return d == 0 && len(w) == 0
	})
}

// removeAside removes the damaged files a repair kept aside (a thousand
// damages would keep a thousand), checking that they are there.
func removeAside(t *testing.T, dir string) {
	t.Helper()
	aside, err := filepath.Glob(filepath.Join(dir, app.CheckpointFile+".bad-*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range aside {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
}

// The status of a state whose damage a read met answers 503
// state_damaged, as the reads do, not 503 unavailable (the fuzzer found
// it: the status read the registry counts from an older commit's meta
// page fallback), and answers again once the repair is done.
func TestStatusOfDamagedStateIsStateDamaged(t *testing.T) {
	dir := t.TempDir()
	a := apptest.Start(t, app.Config{DataDir: dir})
	seqs := a.Publish(testutil.Workload(300)...)
	a.WaitCursor(seqs[len(seqs)-1])
	a.Publish(testutil.Workload(400)[300:]...) // a second commit: the meta pages differ
	a.WaitCursor(400)
	path := filepath.Join(dir, app.CheckpointFile)
	d, err := testutil.NewestMetaDamage(path)
	if err == nil {
		err = d.Apply(path)
	}
	if err != nil {
		t.Fatal(err)
	}
	o := &oracle{client: &http.Client{Timeout: answerTimeout}, base: a.URL}
	damaged, _, wrong := o.status()
	if !damaged {
		t.Fatalf("/v1/status with the newest meta page zeroed: %s, want 503 state_damaged", wrong)
	}
	if !testutil.Poll(repairTimeout, 20*time.Millisecond, func() bool {
		damaged, st, wrong := o.status()
		return !damaged && wrong == "" && !st.Stale && st.Cursor == 400 && st.Registry.Cells > 0
	}) {
		t.Fatal("the status did not answer the repaired state")
	}
}
