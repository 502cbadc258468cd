package app_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"cellos-allinone/app"
	"cellos-allinone/apptest"
	"cellos-allinone/projection"
	"cellos-allinone/projector"
	"cellos-allinone/store"
	"cellos-allinone/testutil"
)

// historyHour is one simulated hour of an edge box: a formation that
// launches four cells, runs them to their end and finishes (or is
// cancelled, or deleted), and one more cell of the formation that runs all
// along, which comes and goes too.
func historyHour(day, hour int) []testutil.Event {
	fid := fmt.Sprintf("d%d-h%02d", day, hour)
	out := []testutil.Event{testutil.Formation(fid, "created", map[string]any{"name": fid, "tenantId": fmt.Sprintf("t%d", hour%3)}),
		testutil.Formation(fid, "launching", nil), testutil.Formation(fid, "running", nil)}
	for c := range 4 {
		cid := fmt.Sprintf("%s-c%d", fid, c)
		end := "completed"
		if c == 3 {
			end = "failed"
		}
		out = append(out, testutil.Cell(cid, "admitted", map[string]any{"formationId": fid}), testutil.Cell(cid, "started", nil),
			testutil.Cell(cid, end, map[string]any{"exitCode": c % 2, "reason": "oom"}), testutil.Cell(cid, "destroyed", nil))
	}
	switch {
	case hour%5 == 0:
		out = append(out, testutil.Formation(fid, "deleted", nil))
	case hour%7 == 0:
		out = append(out, testutil.Formation(fid, "cancelled", nil))
	default:
		out = append(out, testutil.Formation(fid, "completed", nil))
	}
	cid := "keep-" + fid
	return append(out, testutil.Cell(cid, "admitted", map[string]any{"formationId": "keep"}), testutil.Cell(cid, "started", nil),
		testutil.Cell(cid, "completed", map[string]any{"exitCode": 0}), testutil.Cell(cid, "destroyed", nil))
}

// A week of history on a box whose stream keeps only its last 256 KiB
// (about 850 events, a day and a half of this traffic): once it has run,
// the state holds what the retained window and the live entities need and
// no more, its pages and its file stop growing after the first days, and
// what it holds is what the retained log proves (snapshot verify's
// comparison). A longer history: CELLOS_HISTORY_DAYS=<days>.
func TestAWeekOfHistoryStaysBounded(t *testing.T) {
	days := 7
	if s := os.Getenv("CELLOS_HISTORY_DAYS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 3 {
			t.Fatalf("CELLOS_HISTORY_DAYS=%q: want a number of days, at least 3", s)
		}
		days = n
	}
	// Not about durability: the stream fsyncs on an interval, not at every
	// publish, so that the week takes seconds.
	a := apptest.Start(t, app.Config{MaxBytes: 256 << 10, Sync: app.SyncPolicyInterval})
	// Live all along: a formation and its five services, whose events
	// expire on the first day.
	a.Publish(testutil.Formation("keep", "running", map[string]any{"name": "services"}))
	for i := range 5 {
		a.Publish(testutil.Cell(fmt.Sprintf("svc-%d", i), "started", map[string]any{"formationId": "keep"}))
	}
	var day2 retainedFigures
	created := 6
	for day := 1; day <= days; day++ {
		var events []testutil.Event
		for hour := range 24 {
			events = append(events, historyHour(day, hour)...)
		}
		created += 24 * (1 + 4 + 1)
		seqs := a.Publish(events...)
		a.WaitCursor(seqs[len(seqs)-1])
		if day == 2 || day == days {
			f := checkRetained(t, a)
			t.Logf("day %d: %d entities held, %d needed (%d named by the retained window); the state takes %d KiB of its %d KiB file (%d KiB free); %d created so far",
				day, f.held, f.need, f.window, f.liveBytes>>10, f.fileBytes>>10, f.freeBytes>>10, created)
			if f.held > f.need {
				t.Errorf("day %d: %d entities held, more than the %d the retained window and the live ones need", day, f.held, f.need)
			}
			if day == 2 {
				day2 = f
				continue
			}
			if limit := day2.held + day2.held/4; f.held > limit {
				t.Errorf("day %d: %d entities held, more than a quarter above day 2's %d: the registry grows with time", day, f.held, day2.held)
			}
			// Its pages (the free ones, which later commits reuse, are
			// what a compaction gives back).
			if limit := day2.liveBytes * 3 / 2; f.liveBytes > limit {
				t.Errorf("day %d: the state takes %d bytes, more than half again day 2's %d: it grows with time", day, f.liveBytes, day2.liveBytes)
			}
			if f.fileBytes > day2.fileBytes {
				t.Errorf("day %d: state file %d bytes, day 2's was %d: it grows with time", day, f.fileBytes, day2.fileBytes)
			}
		}
	}
	// The live formation counts every cell it ever had, held or pruned.
	var keep projection.Formation
	a.Proj.Read(func(v projector.View) { keep, _ = v.Formation("keep") })
	if want := (projection.CellCounts{Total: 5 + 24*days, Running: 5, Completed: 24 * days, Destroyed: 24 * days}); keep.Cells != want {
		t.Errorf("formation keep counts %+v, want %+v", keep.Cells, want)
	}
}

// retainedFigures is what checkRetained measured.
type retainedFigures struct {
	held, need, window              int
	liveBytes, freeBytes, fileBytes int64
}

// checkRetained waits until the served state is pruned at the stream's
// floor, then checks it against a fold of the retained window: what it
// proves (snapshot verify's comparison) and that every entity held is
// needed — named by a retained event, live, or a finished cell its served
// formation still holds. It returns the figures.
func checkRetained(t *testing.T, a *apptest.App) retainedFigures {
	t.Helper()
	ctx := testutil.Ctx(t, 30*time.Second)
	st, err := a.Events.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, fmt.Sprintf("the state to be pruned at the floor %d", st.FirstSeq), func() bool {
		var pr projection.Pruned
		a.Proj.Read(func(v projector.View) { pr = v.Pruned() })
		return pr.Floor >= st.FirstSeq
	})
	var held projection.Registry
	var meta projection.Meta
	var checked []string
	var f retainedFigures
	a.Proj.Read(func(v projector.View) {
		sv := v.Reader.(*store.View)
		held, checked = sv.Registry(), sv.Check(10)
		meta.Cursor, meta.Pruned = v.Cursor(), v.Pruned()
	})
	if len(checked) != 0 {
		t.Fatalf("Check() of the served state = %q, want nothing", checked)
	}
	window, floor, err := projector.FoldWindow(ctx, a.Events, meta.Cursor)
	if err != nil {
		t.Fatal(err)
	}
	if diffs, _ := projection.CompareRetained(projection.FromRegistry(held, meta), window, floor, 10); len(diffs) != 0 {
		t.Fatalf("the state differs from what the retained window proves:\n%s", strings.Join(diffs, "\n"))
	}
	named := window.Registry()
	f.held, f.window = len(held.Formations)+len(held.Cells), len(named.Formations)+len(named.Cells)
	for id, fm := range held.Formations {
		if _, ok := named.Formations[id]; ok || !fm.Ended() {
			f.need++
		}
	}
	for id, c := range held.Cells {
		fm, ok := held.Formations[c.FormationID]
		if _, named := named.Cells[id]; named || !c.Ended() || c.State != projection.CellDestroyed && ok && !fm.Deleted {
			f.need++
		}
	}
	status, err := a.Proj.Status(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	f.liveBytes, f.freeBytes, f.fileBytes = status.StateFile.LiveBytes, status.StateFile.FreeBytes, status.StateFile.FileBytes
	return f
}
