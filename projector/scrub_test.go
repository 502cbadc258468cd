package projector

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"

	"cellos-allinone/store"
	"cellos-allinone/testutil"
)

// scrubMetrics reads the scrub's series from reg.
func scrubMetrics(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		if !strings.HasPrefix(f.GetName(), "cellos_scrub_") || len(f.GetMetric()) != 1 {
			continue
		}
		m := f.GetMetric()[0]
		if m.GetCounter() != nil {
			got[f.GetName()] = m.GetCounter().GetValue()
		} else {
			got[f.GetName()] = m.GetGauge().GetValue()
		}
	}
	return got
}

func (r *rig) integrity() IntegrityStatus {
	r.t.Helper()
	st, err := r.p.Status(testutil.Ctx(r.t, 5*time.Second), "test")
	if err != nil {
		r.t.Fatal(err)
	}
	return st.Integrity
}

// dropIndexEntry removes the ix-cell-class entry of a cell from the state
// file at path: damage no read of the cell, its formation or the summary
// meets — only a list by state that passes there.
func dropIndexEntry(t *testing.T, path, cell string) {
	t.Helper()
	mutateBolt(t, path, func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("ix-cell-class"))
		c := b.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if string(k[1:]) == cell {
				return b.Delete(k)
			}
		}
		t.Fatalf("cell %s not in ix-cell-class", cell)
		return nil
	})
}

// After a clean stop no pass runs at start: the next is due an interval
// after the first start that kept the record. ScrubNow runs a whole pass
// and shows it in the status and the metrics.
func TestScrubAfterCleanStartWaitsForItsInterval(t *testing.T) {
	dir, nc, _ := startNATS(t, 300)
	checkpointAtEnd(t, dir, nc)
	reg := prometheus.NewRegistry()
	r := startProjector(t, dir, nc, Config{Registerer: reg, ScrubInterval: time.Hour})
	testutil.WaitFor(t, 10*time.Second, "the next scrub to be scheduled", func() bool { return r.integrity().NextScrub != nil })
	in := r.integrity()
	if in.UncleanStart || in.LastScrub != nil || in.Scrubbing || time.Until(*in.NextScrub) < 50*time.Minute {
		t.Fatalf("integrity after a clean start: %+v, next in %v; want no pass, the next in about an hour", in, time.Until(*in.NextScrub))
	}
	if m := scrubMetrics(t, reg); m["cellos_scrub_passes_total"] != 0 || m["cellos_scrub_running"] != 0 || m["cellos_scrub_last_complete_timestamp_seconds"] != 0 {
		t.Fatalf("metrics before a pass: %v", m)
	}

	rep, err := r.p.ScrubNow(testutil.Ctx(t, 30*time.Second))
	if err != nil || !rep.Complete || rep.Damaged != 0 || rep.Checked < 300 {
		t.Fatalf("ScrubNow = %+v, %v; want a complete pass without damage", rep, err)
	}
	in = r.integrity()
	if in.LastScrub == nil || !in.LastScrub.Equal(rep.Finished.UTC()) || in.Checked != rep.Checked || in.Damaged != 0 || in.LastDamage != "" {
		t.Fatalf("integrity after a pass: %+v, want that of %+v", in, rep)
	}
	m := scrubMetrics(t, reg)
	if m["cellos_scrub_passes_total"] != 1 || m["cellos_scrub_keys_checked_total"] != float64(rep.Checked) ||
		m["cellos_scrub_damage_found_total"] != 0 || m["cellos_scrub_last_complete_timestamp_seconds"] != float64(rep.Finished.UnixNano())/1e9 {
		t.Fatalf("metrics after a pass: %v; report %+v", m, rep)
	}
	// The next run finds the record closed, and the pass's figures.
	r.stop()
	r = startProjector(t, dir, nc, Config{ScrubInterval: time.Hour})
	if in := r.integrity(); in.UncleanStart || in.LastScrub == nil || in.Checked != rep.Checked {
		t.Fatalf("integrity after a restart: %+v, want the last pass's, a clean start", in)
	}
}

// A run that did not stop cleanly leaves its record open: the next start
// scrubs as soon as it serves. Damage that pass finds — where no read
// goes — starts the repair: the state is rebuilt from the stream, equals
// the fold, the damaged file is kept aside, and the pass after the repair
// finds nothing.
func TestScrubAfterUncleanStartFindsDamageAndRepairs(t *testing.T) {
	dir, nc, l := startNATS(t, 400)
	r := startProjector(t, dir, nc, Config{ScrubInterval: time.Hour})
	r.waitCursor(400)
	if err := r.p.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	r.crash()
	path := filepath.Join(dir, "checkpoint.db")
	dropIndexEntry(t, path, "f-00003-c04")

	reg := prometheus.NewRegistry()
	r = startProjector(t, dir, nc, Config{Registerer: reg, ScrubInterval: time.Hour, ScrubBudget: 1})
	testutil.WaitFor(t, 30*time.Second, "the scrub to find the damage and the repair to end", func() bool {
		st, err := r.p.Status(testutil.Ctx(t, 5*time.Second), "test")
		return err == nil && !st.Stale && st.Rebuild != nil && st.Rebuild.FinishedAt != nil
	})
	st, err := r.p.Status(testutil.Ctx(t, 5*time.Second), "test")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(st.Rebuild.Reason, RebuildUnreadable) || !strings.Contains(st.Rebuild.Reason, "scrub") || !strings.Contains(st.Rebuild.Reason, "f-00003-c04") {
		t.Fatalf("rebuild %+v: want a repair for what the scrub found", st.Rebuild)
	}
	if !st.Integrity.UncleanStart || !strings.Contains(st.Integrity.LastDamage, "f-00003-c04") {
		t.Fatalf("integrity %+v: want an unclean start and the damage found", st.Integrity)
	}
	if m, _ := filepath.Glob(path + ".bad-*"); len(m) != 1 {
		t.Fatalf("files kept aside: %v, want the damaged one", m)
	}
	want := string(foldStream(t, l).Dump())
	testutil.WaitFor(t, 30*time.Second, "the repaired state to equal a fold of the stream", func() bool {
		return r.dump() == want
	})
	// The pass after the repair checks the rebuilt state.
	testutil.WaitFor(t, 30*time.Second, "a complete pass over the repaired state", func() bool {
		in := r.integrity()
		return in.LastScrub != nil && in.Damaged == 0
	})
	m := scrubMetrics(t, reg)
	if m["cellos_scrub_damage_found_total"] < 1 || m["cellos_scrub_passes_total"] < 2 || m["cellos_scrub_last_complete_timestamp_seconds"] == 0 {
		t.Fatalf("metrics: %v; want the damage and two passes", m)
	}
	r.assertEqualsFold()
}

// ScrubNow finds damage no read meets and asks for the repair at once;
// its report names it, and the state returns to the fold.
func TestScrubNowRepairs(t *testing.T) {
	dir, nc, l := startNATS(t, 300)
	checkpointAtEnd(t, dir, nc)
	path := filepath.Join(dir, "checkpoint.db")
	mutateBolt(t, path, func(tx *bolt.Tx) error {
		// A formation's counts gone: a read of it answers none.
		return tx.Bucket([]byte("fcounts")).Delete([]byte("f-00002"))
	})
	r := startProjector(t, dir, nc, Config{ScrubInterval: -1})
	rep, err := r.p.ScrubNow(testutil.Ctx(t, 30*time.Second))
	if err != nil || rep.Damaged == 0 || !strings.Contains(strings.Join(rep.Damage, "\n"), `formation "f-00002", which has no cell counts`) {
		t.Fatalf("ScrubNow = %+v, %v; want the counts of f-00002", rep, err)
	}
	want := string(foldStream(t, l).Dump())
	testutil.WaitFor(t, 30*time.Second, "the repair", func() bool {
		st, err := r.p.Status(testutil.Ctx(t, 5*time.Second), "test")
		return err == nil && !st.Stale && st.Rebuild != nil && st.Rebuild.FinishedAt != nil && r.dump() == want
	})
	if m, _ := filepath.Glob(path + ".bad-*"); len(m) != 1 {
		t.Fatalf("files kept aside: %v, want the damaged one", m)
	}
	if rep, err := r.p.ScrubNow(testutil.Ctx(t, 30*time.Second)); err != nil || rep.Damaged != 0 || !rep.Complete {
		t.Fatalf("ScrubNow after the repair = %+v, %v", rep, err)
	}
	if in := r.integrity(); in.NextScrub != nil || in.Damaged != 0 || !strings.Contains(in.LastDamage, "f-00002") {
		t.Fatalf("integrity %+v: scrubbing off, the last pass clean, the damage remembered", in)
	}
	if _, err := os.Stat(path + IntegritySuffix); err != nil {
		t.Fatal(err)
	}
}

// Passes of a few keys a step while events are published and committed
// between the steps: each step is one commit, so nothing is taken for
// damage.
func TestScrubUnderLiveIngestFindsNothing(t *testing.T) {
	dir, nc, _ := startNATS(t, 500)
	r := startProjector(t, dir, nc, Config{ScrubInterval: -1, scrubStepKeys: 7, CheckpointInterval: 5 * time.Millisecond})
	published := make(chan struct{})
	go func() {
		defer close(published)
		events := testutil.Workload(6000)[500:]
		for i := 0; i < len(events); i += 20 {
			testutil.MustPublish(t, nc, events[i:min(i+20, len(events))]...)
		}
	}()
	before := r.cursor()
	passes, during := 0, 0
	for done := false; !done || passes < 3; passes++ {
		select {
		case <-published:
			done = true
		default:
		}
		from := r.cursor()
		rep, err := r.p.ScrubNow(testutil.Ctx(t, 60*time.Second))
		if err != nil || rep.Damaged != 0 || !rep.Complete {
			<-published
			t.Fatalf("pass %d under live ingest: %+v, %v", passes, rep, err)
		}
		if r.cursor() > from {
			during++
		}
	}
	t.Logf("%d passes, %d with commits during them; cursor %d to %d", passes, during, before, r.cursor())
	if during == 0 {
		t.Fatalf("no commit during %d passes", passes)
	}
	r.assertEqualsFold()
}

// A slow write of the record (a file and a directory synced on an SD
// card) does not hold the status or the metrics: they read a copy.
func TestSlowRecordWriteDoesNotHoldTheStatus(t *testing.T) {
	dir, nc, _ := startNATS(t, 100)
	checkpointAtEnd(t, dir, nc)
	reg := prometheus.NewRegistry()
	// Set before the projector runs and put back after it stopped (the
	// first cleanup runs last): its goroutines read it.
	var slow atomic.Bool
	entered, release := make(chan struct{}, 1), make(chan struct{})
	writeRecord = func(path string, rec integrityRecord) error {
		if slow.Load() {
			select {
			case entered <- struct{}{}:
			default:
			}
			<-release
		}
		return writeRecordFile(path, rec)
	}
	t.Cleanup(func() { writeRecord = writeRecordFile })
	r := startProjector(t, dir, nc, Config{Registerer: reg, ScrubInterval: -1})
	slow.Store(true)
	passed := make(chan error, 1)
	go func() {
		_, err := r.p.ScrubNow(testutil.Ctx(t, 30*time.Second))
		passed <- err
	}()
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the pass did not write its record")
	}
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		_, _ = r.p.Status(context.Background(), "test")
		_, _ = reg.Gather()
	}()
	select {
	case <-answered:
	case <-time.After(5 * time.Second):
		t.Error("the status and the metrics waited for the record's write")
	}
	close(release)
	if err := <-passed; err != nil {
		t.Fatal(err)
	}
	<-answered
	r.stop()
}

// readRecord reads the integrity record beside the state file in dir.
func readRecord(t *testing.T, dir string) integrityRecord {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "checkpoint.db") + IntegritySuffix)
	if err != nil {
		t.Fatal(err)
	}
	var rec integrityRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

// A start that fails leaves the record as it found it: not open, so that
// the next start is not taken for one after an unclean stop.
func TestFailedStartLeavesTheRecordClosed(t *testing.T) {
	dir, nc, _ := startNATS(t, 100)
	checkpointAtEnd(t, dir, nc)
	st, _, err := store.Open(filepath.Join(dir, "checkpoint.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := New(openLog(t, nc), st, Config{Logger: testutil.Logger()}).Run(ctx); err == nil {
		t.Fatal("Run with a cancelled context started")
	}
	if rec := readRecord(t, dir); rec.Open {
		t.Fatalf("record %+v after a failed start: open", rec)
	}
}

// A run that ended during bbolt's check (the record says it was under
// way) does not run it again at the next start: the first pass reports it
// as damage and the state is rebuilt. A check that dies (a fault, a loop
// over a garbled page) cannot become a crash loop.
func TestScrubAfterADeathInBboltsCheckRepairsWithoutIt(t *testing.T) {
	dir, nc, l := startNATS(t, 300)
	checkpointAtEnd(t, dir, nc)
	rec := readRecord(t, dir)
	rec.Open, rec.Checking = true, true
	if err := writeRecord(filepath.Join(dir, "checkpoint.db")+IntegritySuffix, rec); err != nil {
		t.Fatal(err)
	}
	r := startProjector(t, dir, nc, Config{ScrubInterval: time.Hour, ScrubBudget: 1})
	testutil.WaitFor(t, 30*time.Second, "the repair the first pass asks for", func() bool {
		st, err := r.p.Status(testutil.Ctx(t, 5*time.Second), "test")
		return err == nil && st.Rebuild != nil && st.Rebuild.FinishedAt != nil
	})
	st, err := r.p.Status(testutil.Ctx(t, 5*time.Second), "test")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(st.Rebuild.Reason, "check did not end") {
		t.Fatalf("rebuild %+v: want one for the check that did not end", st.Rebuild)
	}
	// The pass after the repair runs the check, and clears the mark.
	testutil.WaitFor(t, 30*time.Second, "a complete pass over the repaired state", func() bool {
		in := r.integrity()
		return in.LastScrub != nil && in.Damaged == 0
	})
	if rec := readRecord(t, dir); rec.Checking {
		t.Fatalf("record %+v: the check is still taken for under way", rec)
	}
	want := string(foldStream(t, l).Dump())
	if got := r.dump(); got != want {
		t.Fatal("the repaired state differs from the fold")
	}
}

// The same finding on the state its repair rebuilt is no damage of the
// disk: it is not repaired again, it stays in the status and the metrics,
// and the next pass backs off. (scrubSkipCheck makes every pass find the
// same thing.)
func TestScrubFindingThatSurvivesItsRepairIsNotRepairedAgain(t *testing.T) {
	dir, nc, _ := startNATS(t, 300)
	r := startProjector(t, dir, nc, Config{ScrubInterval: time.Hour})
	r.waitCursor(300)
	if err := r.p.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	r.crash() // the next start scrubs at once
	reg := prometheus.NewRegistry()
	r = startProjector(t, dir, nc, Config{Registerer: reg, ScrubInterval: time.Hour, ScrubBudget: 1, scrubSkipCheck: true})
	var first time.Time
	testutil.WaitFor(t, 30*time.Second, "the repair, then a pass that finds the same and backs off", func() bool {
		st, err := r.p.Status(testutil.Ctx(t, 5*time.Second), "test")
		if err != nil || st.Rebuild == nil || st.Rebuild.FinishedAt == nil {
			return false
		}
		if first.IsZero() {
			first = st.Rebuild.StartedAt
		}
		return scrubMetrics(t, reg)["cellos_scrub_passes_total"] >= 2 && st.Integrity.NextScrub != nil
	})
	st, err := r.p.Status(testutil.Ctx(t, 5*time.Second), "test")
	if err != nil {
		t.Fatal(err)
	}
	in := st.Integrity
	// A repair the pass asked for is asked before the pass is recorded.
	if r.p.repair.active() {
		t.Fatal("the repeated finding asked for another repair")
	}
	if until := time.Until(*in.NextScrub); until < 30*time.Second || until > scrubRepeatBackoff {
		t.Fatalf("next pass in %v, want the backoff's %v", until, scrubRepeatBackoff)
	}
	if !st.Rebuild.StartedAt.Equal(first) || in.Damaged == 0 || !strings.Contains(in.LastDamage, "check did not end") {
		t.Fatalf("rebuild %+v, integrity %+v: want one repair, the finding kept", st.Rebuild, in)
	}
	if m := scrubMetrics(t, reg); m["cellos_scrub_damage_found_total"] < 2 {
		t.Fatalf("metrics %v: want both findings counted", m)
	}
}
