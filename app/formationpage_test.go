package app_test

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"cellos-allinone/api"
	"cellos-allinone/app"
	"cellos-allinone/apptest"
	"cellos-allinone/testutil"
)

// formationWithCells publishes formation id with n cells, c-000000 on, and
// returns the last sequence.
func formationWithCells(t *testing.T, a *apptest.App, id string, n int) uint64 {
	t.Helper()
	events := make([]testutil.Event, 0, n+1)
	events = append(events, testutil.Formation(id, "created", map[string]any{"name": "wide", "tenantId": "acme"}))
	for i := range n {
		events = append(events, testutil.Cell(fmt.Sprintf("%s-c%06d", id, i), "admitted", map[string]any{"formationId": id}))
	}
	seqs := a.Publish(events...)
	return seqs[len(seqs)-1]
}

func cellID(f string, i int) string { return fmt.Sprintf("%s-c%06d", f, i) }

// GET /v1/formations/{id} holds the first page of the formation's cells;
// cellsNext continues them with /v1/cells?formation={id}&after=, to the
// last page.
func TestFormationDetailPages(t *testing.T) {
	a := apptest.Start(t, app.Config{})
	last := formationWithCells(t, a, "f-wide", 250)
	formationWithCells(t, a, "f-narrow", 3)
	a.WaitCursor(last + 4)

	var d api.FormationDetail
	if status := getJSON(t, a, "/v1/formations/f-wide", &d); status != 200 {
		t.Fatalf("GET /v1/formations/f-wide = %d", status)
	}
	if d.Formation.Cells.Total != 250 || len(d.Cells) != 100 || d.Cells[0].ID != cellID("f-wide", 0) || d.CellsNext != cellID("f-wide", 99) {
		t.Fatalf("first page: %d of %d cells from %s, cellsNext %q; want 100 of 250 from %s, cellsNext %s",
			len(d.Cells), d.Formation.Cells.Total, d.Cells[0].ID, d.CellsNext, cellID("f-wide", 0), cellID("f-wide", 99))
	}
	// The continuation, to the last page.
	seen := len(d.Cells)
	for next, pages := d.CellsNext, 1; next != ""; pages++ {
		var pg api.CellList
		getJSON(t, a, "/v1/cells?formation=f-wide&after="+next, &pg)
		if len(pg.Cells) == 0 || pg.Cells[0].ID != cellID("f-wide", seen) {
			t.Fatalf("page %d after %s starts at %+v, want %s", pages+1, next, pg.Cells, cellID("f-wide", seen))
		}
		seen += len(pg.Cells)
		next = pg.Next
	}
	if seen != 250 {
		t.Fatalf("paged through %d cells, want 250", seen)
	}

	for _, tc := range []struct {
		path      string
		cells     int
		cellsNext string
	}{
		{"/v1/formations/f-wide?limit=7", 7, cellID("f-wide", 6)},
		{"/v1/formations/f-wide?limit=250", 250, ""},
		{"/v1/formations/f-wide?limit=1000", 250, ""},
		{"/v1/formations/f-narrow", 3, ""},
		{"/v1/formations/f-narrow?limit=3", 3, ""},
		{"/v1/formations/f-narrow?limit=2", 2, cellID("f-narrow", 1)},
	} {
		var d api.FormationDetail
		if status := getJSON(t, a, tc.path, &d); status != 200 || len(d.Cells) != tc.cells || d.CellsNext != tc.cellsNext {
			t.Errorf("GET %s = %d: %d cells, cellsNext %q; want %d, %q", tc.path, status, len(d.Cells), d.CellsNext, tc.cells, tc.cellsNext)
		}
	}
	// A formation without cells: an empty page, never null.
	seq := post(t, a, testutil.Formation("f-empty", "created", nil))
	_, _, body := get(t, a, "/v1/formations/f-empty?min_seq="+strconv.FormatUint(seq, 10))
	if want := `"cells":[],"cellsNext":""`; !strings.Contains(string(body), want) {
		t.Errorf("GET /v1/formations/f-empty = %s, want %s", body, want)
	}
	// Through the client: one page, and every cell.
	ctx := testutil.Ctx(t, 30*time.Second)
	one, err := a.Client().Formation(ctx, "f-wide")
	if err != nil || len(one.Cells) != 100 || one.CellsNext != cellID("f-wide", 99) {
		t.Fatalf("client Formation = %v, want 100 cells and cellsNext", err)
	}
	all, err := a.Client().FormationAll(ctx, "f-wide")
	if err != nil || len(all.Cells) != 250 || all.CellsNext != "" || all.Cells[249].ID != cellID("f-wide", 249) {
		t.Fatalf("client FormationAll = %v, %d cells, want 250", err, len(all.Cells))
	}
}

// A formation of 100,000 cells answers its first page in bounded time and
// size: the store reads the page, never every cell.
func TestFormationOf100kCells(t *testing.T) {
	if testing.Short() {
		t.Skip("publishes 100,000 events")
	}
	const n = 100_000
	// JetStream fsyncs on an interval: 100,000 acknowledged one fsync at a
	// time would take minutes.
	a := apptest.Start(t, app.Config{Sync: app.SyncPolicyInterval})
	last := formationWithCells(t, a, "f-huge", n)
	a.WaitCursor(last)
	// What one page weighs, from a formation of 100 cells.
	small := formationWithCells(t, a, "f-small", 100)
	a.WaitCursor(small)
	_, _, ref := get(t, a, "/v1/formations/f-small")

	var took []time.Duration
	var body []byte
	for range 5 {
		var status int
		start := time.Now()
		status, _, body = get(t, a, "/v1/formations/f-huge")
		took = append(took, time.Since(start))
		if status != 200 {
			t.Fatalf("GET /v1/formations/f-huge = %d %.300s", status, body)
		}
	}
	var d api.FormationDetail
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	if d.Formation.Cells.Total != n || len(d.Cells) != 100 || d.CellsNext != cellID("f-huge", 99) {
		t.Fatalf("f-huge: %d of %d cells, cellsNext %q; want the first 100 of %d", len(d.Cells), d.Formation.Cells.Total, d.CellsNext, n)
	}
	// The size of one page (ids one character longer), not of 100,000
	// cells (some 25 MB).
	if len(body) > len(ref)+len(ref)/10 {
		t.Fatalf("f-huge's answer is %d bytes, want about one page's (%d bytes for 100 cells)", len(body), len(ref))
	}
	fastest := took[0]
	for _, d := range took {
		fastest = min(fastest, d)
	}
	t.Logf("GET /v1/formations/f-huge: %d bytes, %v (fastest of %v)", len(body), fastest, took)
	if fastest > 500*time.Millisecond {
		t.Fatalf("GET /v1/formations/f-huge took at least %v, want a page's time (well under 500 ms)", fastest)
	}
	// The last page, through the continuation.
	var pg api.CellList
	getJSON(t, a, "/v1/cells?formation=f-huge&limit=1000&after="+cellID("f-huge", n-1001), &pg)
	if len(pg.Cells) != 1000 || pg.Next != "" || pg.Cells[999].ID != cellID("f-huge", n-1) {
		t.Fatalf("the last page: %d cells next %q, want the last 1000 and no next", len(pg.Cells), pg.Next)
	}
}
