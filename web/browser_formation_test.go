package web_test

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"cellos-allinone/testutil"
)

// TestBrowserFormationPagesItsCells: a formation with more cells than a
// page shows them a page at a time, Next and Previous walking them in id
// order (Next continuing after the server's cellsNext), a live cell
// joining the last page; and no read of the page asks for an answer
// without a bound.
func TestBrowserFormationPagesItsCells(t *testing.T) {
	const n = 250
	ctx := newBrowser(t, 1280, 900)
	a := startProgram(t, t.TempDir(), "")
	p := newProducer(t, a)
	events := []testutil.Event{p.event("formation", "f-wide", "created", map[string]any{"name": "Wide formation"})}
	for i := range n {
		events = append(events, p.event("cell", cellOf(i), "admitted", map[string]any{"formationId": "f-wide"}))
	}
	seqs := a.Publish(events...)
	a.WaitCursor(seqs[len(seqs)-1])
	// The server's detail: its first page of cells ends where the page's
	// Next must continue.
	detail := apiGet[struct {
		Cells     []apiCell `json:"cells"`
		CellsNext string    `json:"cellsNext"`
	}](t, a.URL(), "/v1/formations/f-wide?limit=100")
	if len(detail.Cells) != 100 || detail.CellsNext != cellOf(99) {
		t.Fatalf("GET /v1/formations/f-wide?limit=100 = %d cells, cellsNext %q; want 100 and %q", len(detail.Cells), detail.CellsNext, cellOf(99))
	}

	rows := `[...document.querySelectorAll('.view.formation table.grid.cells tbody tr')].map(tr => decodeURIComponent(tr.dataset.href.split('/').pop()))`
	info := `document.querySelector('.view.formation .pageinfo').textContent`
	button := func(label string) string {
		return fmt.Sprintf(`[...document.querySelectorAll('.view.formation nav.pager button')].find(b => b.textContent.includes(%q))`, label)
	}
	// onPage waits for page k (from 1) of the cells: the ids from first to
	// last, in order, and the pager saying where it is.
	onPage := func(k, first, last int) {
		t.Helper()
		want := make([]string, 0, last-first+1)
		for i := first; i <= last; i++ {
			want = append(want, cellOf(i))
		}
		pageWait(t, ctx, fmt.Sprintf("page %d: cells %s to %s", k, cellOf(first), cellOf(last)),
			fmt.Sprintf(`__cellos.settled() && JSON.stringify(%s) === %q`, rows, jsonText(t, want)), 10*time.Second)
		wantInfo := fmt.Sprintf("%d–%d of %d · page %d of %d", first+1, last+1, n, k, (n+99)/100)
		if got := pageEval[string](t, ctx, info); got != wantInfo {
			t.Errorf("page %d: the pager says %q, want %q", k, got, wantInfo)
		}
	}

	pageDo(t, ctx, chromedp.Navigate(a.URL()+"/#/formations/f-wide"))
	pageWait(t, ctx, "live", `__cellos.state().phase === 'live'`, 10*time.Second)
	onPage(1, 0, 99)
	pageDo(t, ctx, chromedp.Evaluate[chromedp.Void](button("Next")+`.click()`))
	onPage(2, 100, 199)
	pageDo(t, ctx, chromedp.Evaluate[chromedp.Void](button("Next")+`.click()`))
	onPage(3, 200, n-1)
	if !pageEval[bool](t, ctx, button("Next")+`.disabled`) {
		t.Error("Next is enabled on the last page")
	}
	// A cell admitted now sorts after the others: the last page shows it.
	p.pub("cell", cellOf(n), "admitted", map[string]any{"formationId": "f-wide"})
	pageWait(t, ctx, "the new cell on the last page", fmt.Sprintf(`%s.at(-1) === %q`, rows, cellOf(n)), 10*time.Second)
	pageDo(t, ctx, chromedp.Evaluate[chromedp.Void](button("Previous")+`.click()`))
	pageWait(t, ctx, "page 2 again", fmt.Sprintf(`%s[0] === %q && %s.length === 100`, rows, cellOf(100), rows), 10*time.Second)

	// Every read of the registry the page made asked for a bounded answer.
	urls := pageEval[[]string](t, ctx, `performance.getEntriesByType('resource').map(e => e.name).filter(u => /\/v1\/(formations|cells)/.test(u))`)
	if len(urls) == 0 {
		t.Fatal("the page read no formation or cell")
	}
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if limit, err := strconv.Atoi(u.Query().Get("limit")); err != nil || limit < 1 || limit > 100 {
			t.Errorf("the page read %s: want a limit of at most 100", raw)
		}
	}
	if !slices.Contains(urls, a.URL()+"/v1/formations/f-wide?limit=1") {
		t.Errorf("the page did not read the formation with limit=1: %v", urls)
	}
	// Next from the first page continued where the server's cellsNext
	// says: the formation's cells after it.
	second := a.URL() + "/v1/cells?" + url.Values{"formation": {"f-wide"}, "after": {detail.CellsNext}, "limit": {"100"}}.Encode()
	found := false
	for _, raw := range urls {
		u, _ := url.Parse(raw)
		found = found || u.Scheme+"://"+u.Host+u.Path+"?"+u.Query().Encode() == second
	}
	if !found {
		t.Errorf("the page did not read the second page as %s: %v", second, urls)
	}
}

func cellOf(i int) string { return fmt.Sprintf("c-%04d", i) }
