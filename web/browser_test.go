package web_test

// Browser tests of the web view (issue #4): the whole program serves the
// page, headless Chromium loads it, events go into NATS as a supervisor
// publishes them, and the page must show them — live, after a restart,
// after the log was purged below it, and with 10,000 cells.
//
// Without Chromium these tests skip (and fail when CI=true). The
// screenshots are taken only with CELLOS_SCREENSHOTS=<dir> set (`task
// screenshots` writes them into docs/, which holds the committed ones).

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go/jetstream"

	"cellos-allinone/demo"
	"cellos-allinone/event"
	"cellos-allinone/testutil"
	"cellos-allinone/web"
)

// TestBrowserLiveUpdates: the page shows an empty state, then formations
// and cells as their events are published, each within 2 s.
func TestBrowserLiveUpdates(t *testing.T) {
	ctx := newBrowser(t, 1280, 900)
	a := startProgram(t, t.TempDir(), "")
	p := newProducer(t, a)

	pageDo(t, ctx, chromedp.Navigate(a.URL()+"/"))
	pageWait(t, ctx, "connected", `__cellos.state().phase === 'live'`, 5*time.Second)
	pageWait(t, ctx, "empty state", `document.querySelector('.empty')?.textContent.includes('cellos-allinone demo')`, 2*time.Second)

	p.pub("formation", "pay-batch", "created", map[string]any{"name": "Payments batch", "tenantId": "acme"})
	p.pub("formation", "pay-batch", "launching", nil)
	p.pub("formation", "pay-batch", "running", nil)
	p.pub("cell", "c-1", "admitted", map[string]any{"formationId": "pay-batch", "specId": "spec-a", "runId": "run-1"})
	p.pub("cell", "c-2", "admitted", map[string]any{"formationId": "pay-batch"})
	p.pub("cell", "c-3", "admitted", map[string]any{"formationId": "pay-batch"})
	p.pub("cell", "c-1", "started", nil)
	p.pub("cell", "c-1", "completed", map[string]any{"exitCode": 0})
	p.pub("cell", "c-2", "started", nil)
	p.pub("cell", "c-2", "failed", map[string]any{"reason": "OOMKilled"})
	// A late start after completion is a no-op (fold rule 3).
	p.pub("cell", "c-1", "started", nil)

	pageWait(t, ctx, "formation row with status running",
		`[...document.querySelectorAll('table.formations tbody tr')].some(tr => tr.textContent.includes('Payments batch') && tr.querySelector('.badge')?.textContent === 'running')`,
		2*time.Second)
	pageWait(t, ctx, "cell counts in the row", `document.querySelector('table.formations .stack')?.getAttribute('aria-label') === '1 admitted, 1 completed, 1 failed'`, 2*time.Second)

	pageDo(t, ctx, chromedp.Evaluate[chromedp.Void](`location.hash = '#/formations/pay-batch'`))
	pageWait(t, ctx, "the formation's cells", `document.querySelectorAll('.view.formation table.grid tbody tr').length === 3`, 2*time.Second)
	rows := pageEval[map[string]string](t, ctx, `Object.fromEntries([...document.querySelectorAll('.view.formation table.grid tbody tr')].map(tr =>
		[tr.querySelector('td').textContent, [...tr.querySelectorAll('td')].slice(1, 5).map(td => td.textContent).join('|')]))`)
	want := map[string]string{"c-1": "completed|completed|0|—", "c-2": "failed|failed|—|OOMKilled", "c-3": "admitted|—|—|—"}
	for id, w := range want {
		if rows[id] != w {
			t.Errorf("formation page row %s = %q, want %q (all rows %v)", id, rows[id], w, rows)
		}
	}

	// A new event reaches the feed within 2 s.
	seq := p.pub("cell", "c-3", "started", nil)
	pageWait(t, ctx, fmt.Sprintf("event #%d in the feed", seq), fmt.Sprintf(`!!document.querySelector('aside ol.events li[data-seq="%d"]')`, seq), 2*time.Second)
	pageWait(t, ctx, "c-3 running on the formation page",
		`[...document.querySelectorAll('.view.formation tbody tr')].some(tr => tr.textContent.startsWith('c-3') && tr.querySelector('.badge').textContent === 'running')`, 2*time.Second)

	// Each feed entry opens to its CloudEvent JSON.
	pageDo(t, ctx, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector('aside li[data-seq="%d"] summary').click()`, seq)))
	pageWait(t, ctx, "event JSON", fmt.Sprintf(`document.querySelector('aside li[data-seq="%d"] pre')?.textContent.includes('"cellId": "c-3"')`, seq), 2*time.Second)

	// Pause holds the feed still while events keep being applied.
	pageDo(t, ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector('aside .feedhead button').click()`))
	held := p.pub("cell", "c-3", "completed", map[string]any{"exitCode": 2})
	pageWait(t, ctx, "paused feed says an event is held back", `document.querySelector('aside .feednote').textContent.includes('1 new event held back')`, 2*time.Second)
	if pageEval[bool](t, ctx, fmt.Sprintf(`!!document.querySelector('aside li[data-seq="%d"]')`, held)) {
		t.Error("a paused feed showed a new event")
	}
	pageWait(t, ctx, "c-3 completed while paused", `[...document.querySelectorAll('.view.formation tbody tr')].some(tr => tr.textContent.startsWith('c-3') && tr.querySelector('.badge').textContent === 'completed')`, 2*time.Second)
	pageDo(t, ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector('aside .feedhead button').click()`))
	pageWait(t, ctx, "held event shown on resume", fmt.Sprintf(`!!document.querySelector('aside li[data-seq="%d"]')`, held), 2*time.Second)

	// Every control has a name, and nothing hijacks the tab order.
	if bad := pageEval[[]string](t, ctx, `(() => {
		const bad = [];
		for (const el of document.querySelectorAll('input, select')) if (!el.labels?.length) bad.push(el.outerHTML.slice(0, 80));
		for (const el of document.querySelectorAll('button, a[href], [role=img]')) if (!el.textContent.trim() && !el.getAttribute('aria-label')) bad.push(el.outerHTML.slice(0, 80));
		for (const el of document.querySelectorAll('[tabindex]')) if (+el.getAttribute('tabindex') > 0) bad.push(el.outerHTML.slice(0, 80));
		return bad;
	})()`); len(bad) > 0 {
		t.Errorf("controls without an accessible name, or with a positive tabindex: %q", bad)
	}

	// Filters: by status and by search, kept in the URL.
	pageDo(t, ctx, chromedp.Evaluate[chromedp.Void](`location.hash = '#/cells?state=failed'`))
	pageWait(t, ctx, "cells filtered by state", `(() => { const r = document.querySelectorAll('table.cells tbody tr'); return r.length === 1 && r[0].textContent.startsWith('c-2'); })()`, 2*time.Second)

	// "/" moves the focus to the search box.
	pageDo(t, ctx, chromedp.Evaluate[chromedp.Void](`document.activeElement.blur()`), chromedp.KeyEvent("/"))
	pageWait(t, ctx, "search focused by /", `document.activeElement?.type === 'search'`, time.Second)
}

// TestBrowserOutcomeSurvivesTeardown: fold v2 on the page. Once its cells
// are destroyed a formation still counts its failures, the outcome column
// and filter find the destroyed failures, and the empty states say what
// the server holds instead of "nothing published".
func TestBrowserOutcomeSurvivesTeardown(t *testing.T) {
	ctx := newBrowser(t, 1280, 900)
	a := startProgram(t, t.TempDir(), "")
	p := newProducer(t, a)

	// Cells of a formation whose lifecycle events never came.
	p.pub("cell", "orphan-1", "admitted", map[string]any{"formationId": "ghost"})
	p.pub("cell", "orphan-2", "started", nil)
	pageDo(t, ctx, chromedp.Navigate(a.URL()+"/"))
	pageWait(t, ctx, "connected", `__cellos.state().phase === 'live'`, 5*time.Second)
	pageWait(t, ctx, "a true empty state", `(() => { const e = document.querySelector('.empty')?.textContent || '';
		return e.includes('2 cells but no formation') && !e.includes('Nothing has been published'); })()`, 2*time.Second)

	p.pub("formation", "batch", "created", map[string]any{"name": "Nightly batch"})
	for i, end := range []string{"failed", "failed", "completed", ""} {
		id := fmt.Sprintf("b-%d", i)
		p.pub("cell", id, "started", map[string]any{"formationId": "batch"})
		switch end {
		case "failed":
			p.pub("cell", id, "failed", map[string]any{"reason": "oom-killed"})
		case "completed":
			p.pub("cell", id, "completed", map[string]any{"exitCode": 0})
		}
		p.pub("cell", id, "destroyed", nil)
	}
	pageWait(t, ctx, "failures counted after teardown",
		`document.querySelector('table.formations .stack')?.getAttribute('aria-label')?.includes('2 failed')`, 2*time.Second)
	pageDo(t, ctx, chromedp.Evaluate[chromedp.Void](`location.hash = '#/cells?outcome=failed'`))
	pageWait(t, ctx, "the failed filter finds destroyed failures", `(() => {
		const rows = [...document.querySelectorAll('table.cells tbody tr')].map(tr => tr.querySelector('td').textContent + ':' + tr.querySelector('.badge').textContent);
		return rows.join(',') === 'b-0:destroyed,b-1:destroyed'; })()`, 2*time.Second)
	pageDo(t, ctx, chromedp.Evaluate[chromedp.Void](`location.hash = '#/cells?outcome=none'`))
	pageWait(t, ctx, "cells without an outcome", `[...document.querySelectorAll('table.cells tbody tr')].map(tr => tr.querySelector('td').textContent).join(',') === 'b-3,orphan-1,orphan-2'`, 2*time.Second)
}

// TestBrowserResyncsAfterStreamRecreated: the stream is deleted under the
// page (nats stream rm); the server creates it again, the page's socket
// ends with 4410 naming the new epoch, and the page resyncs by itself and
// shows the events of the new incarnation.
func TestBrowserResyncsAfterStreamRecreated(t *testing.T) {
	ctx := newBrowser(t, 1280, 900)
	a := startProgram(t, t.TempDir(), "")
	p := newProducer(t, a)
	p.pub("formation", "before", "created", map[string]any{"name": "Before the removal"})
	pageDo(t, ctx, chromedp.Navigate(a.URL()+"/"))
	pageWait(t, ctx, "live with the first formation", `__cellos.state().phase === 'live' && __cellos.sync.store.formations.has('before')`, 5*time.Second)
	oldEpoch := pageEval[string](t, ctx, `__cellos.sync.store.epoch`)

	testutil.RemoveStream(t, a.Events)
	pageWait(t, ctx, "resynced to a new epoch", fmt.Sprintf(`__cellos.state().phase === 'live' && __cellos.sync.store.epoch !== %q && !__cellos.sync.store.formations.has('before')`, oldEpoch), 15*time.Second)
	p.pub("formation", "after", "created", map[string]any{"name": "After the removal"})
	pageWait(t, ctx, "the new incarnation's formation", `[...document.querySelectorAll('table.formations tbody tr')].some(tr => tr.textContent.includes('After the removal'))`, 3*time.Second)
}

// TestBrowserResumesAfterRestart: the server stops (the header says so),
// starts again on the same data dir and port, and the page carries on
// without a reload, with every row once and no event missing.
func TestBrowserResumesAfterRestart(t *testing.T) {
	ctx := newBrowser(t, 1280, 900)
	dir := t.TempDir()
	a := startProgram(t, dir, "")
	addr := a.HTTP.Addr()
	p := newProducer(t, a)
	for i := range 5 {
		p.pub("cell", fmt.Sprintf("r-%d", i), "admitted", map[string]any{"formationId": "restart"})
	}
	p.pub("formation", "restart", "running", map[string]any{"name": "Restart drill"})

	pageDo(t, ctx, chromedp.Navigate(a.URL()+"/#/cells"))
	pageWait(t, ctx, "connected", `__cellos.state().phase === 'live'`, 5*time.Second)
	pageDo(t, ctx, chromedp.Evaluate[chromedp.Void](`window.__notReloaded = true`))
	last := p.pub("cell", "r-0", "started", nil)
	pageWait(t, ctx, "live event applied", fmt.Sprintf(`__cellos.state().cursor === %d`, last), 2*time.Second)

	a.Stop()
	pageWait(t, ctx, "header shows reconnecting", `document.getElementById('conn').dataset.state === 'reconnecting' && /Reconnecting/.test(document.getElementById('conn').textContent)`, 5*time.Second)

	a2 := startProgram(t, dir, addr)
	p2 := newProducer(t, a2)
	for i := 5; i < 10; i++ {
		p2.pub("cell", fmt.Sprintf("r-%d", i), "admitted", map[string]any{"formationId": "restart"})
	}
	p2.pub("cell", "r-1", "started", nil)
	p2.pub("cell", "r-1", "failed", map[string]any{"reason": "node lost"})
	last = p2.pub("cell", "r-0", "completed", map[string]any{"exitCode": 0})

	// The page's backoff is at most a few seconds after a short outage.
	pageWait(t, ctx, "resumed and caught up", fmt.Sprintf(`__cellos.state().phase === 'live' && __cellos.state().cursor === %d`, last), 20*time.Second)
	if !pageEval[bool](t, ctx, `window.__notReloaded === true`) {
		t.Fatal("the page was reloaded")
	}
	sameStates(t, "after restart", pageEval[map[string]string](t, ctx, pageCellsJS), serverCells(t, a2.URL()))
	checkFeedGapless(t, pageEval[[]uint64](t, ctx, feedSeqsJS))
	// The table shows each cell once.
	pageWait(t, ctx, "10 rows", `document.querySelectorAll('table.cells tbody tr').length === 10`, 2*time.Second)
	ids := pageEval[[]string](t, ctx, `[...document.querySelectorAll('table.cells tbody tr')].map(tr => tr.querySelector('td').textContent)`)
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("cell %s shown twice: %v", id, ids)
		}
		seen[id] = true
	}
}

// TestBrowserResyncsAfterPurge: while the page is cut off, the stream is
// purged above its cursor; on reconnect the server closes with 4410 and
// the page reloads the snapshot and goes on, saying so briefly.
func TestBrowserResyncsAfterPurge(t *testing.T) {
	ctx := newBrowser(t, 1280, 900)
	a := startProgram(t, t.TempDir(), "")
	p := newProducer(t, a)
	proxy := newCutProxy(t, a.HTTP.Addr())
	for i := range 3 {
		p.pub("cell", fmt.Sprintf("p-%d", i), "admitted", map[string]any{"formationId": "purge"})
	}
	pageDo(t, ctx, chromedp.Navigate("http://"+proxy.addr()+"/#/cells"))
	pageWait(t, ctx, "connected", `__cellos.state().phase === 'live'`, 5*time.Second)
	pageDo(t, ctx, chromedp.Evaluate[chromedp.Void](`window.__notReloaded = true`))

	proxy.cut()
	pageWait(t, ctx, "header shows reconnecting", `document.getElementById('conn').dataset.state === 'reconnecting'`, 5*time.Second)
	for i := range 3 {
		p.pub("cell", fmt.Sprintf("p-%d", i), "started", nil)
	}
	p.pub("cell", "p-0", "completed", map[string]any{"exitCode": 3})
	last := p.pub("cell", "p-9", "admitted", map[string]any{"formationId": "purge"})
	a.WaitCursor(last)
	if err := a.Events.Handle().Purge(t.Context(), jetstream.WithPurgeKeep(1)); err != nil {
		t.Fatal(err)
	}
	proxy.restore()

	pageWait(t, ctx, "resynced notice", `document.getElementById('toast').textContent.includes('Resynced')`, 20*time.Second)
	pageWait(t, ctx, "live at the server's cursor", fmt.Sprintf(`__cellos.state().phase === 'live' && __cellos.state().cursor === %d`, last), 5*time.Second)
	if !pageEval[bool](t, ctx, `window.__notReloaded === true`) {
		t.Fatal("the page was reloaded")
	}
	sameStates(t, "after resync", pageEval[map[string]string](t, ctx, pageCellsJS), serverCells(t, a.URL()))
	pageWait(t, ctx, "p-0 completed in the table",
		`[...document.querySelectorAll('table.cells tbody tr')].some(tr => tr.textContent.startsWith('p-0') && tr.querySelector('.badge').textContent === 'completed')`, 2*time.Second)
	pageWait(t, ctx, "resync marked in the feed", `!!document.querySelector('aside li.mark')?.textContent.includes('Resynced')`, 2*time.Second)
}

// TestBrowserFoldMatchesServer: the page folds events itself (docs/design.md §3)
// on top of a snapshot loaded while demo traffic flows, so that its pages
// are read at different cursors. Once both are at the same cursor, every
// formation and cell on the page equals the server's, field by field.
func TestBrowserFoldMatchesServer(t *testing.T) {
	ctx := newBrowser(t, 1280, 900)
	a := startProgram(t, t.TempDir(), "")
	p := newProducer(t, a)
	g := demo.New(demo.Options{Seed: 11, Step: time.Second, Formations: 40, Tenants: 6})
	next := func(n int) []testutil.Event {
		out := make([]testutil.Event, 0, n)
		for range n {
			out = append(out, demoEvent(t, g.Next()))
		}
		return out
	}
	// A formation deleted before the page opens: its tombstone is in no
	// snapshot, and a later event for it must not bring it back.
	p.pub("formation", "zombie", "created", map[string]any{"name": "Deleted long ago"})
	p.pub("formation", "zombie", "deleted", nil)
	// Enough traffic that the cells snapshot takes two pages.
	a.WaitCursor(p.pubRaw(next(6500)))
	if n := len(serverCells(t, a.URL())); n <= 1000 {
		t.Fatalf("the demo made %d cells, want more than one page (1000)", n)
	}

	// Keep publishing while the page loads its snapshot; some payloads are
	// not CloudEvents at all, which must advance the cursor all the same.
	// (The page loads in a goroutine: only the test's may fail the test.)
	navigated := make(chan error, 1)
	go func() { navigated <- chromedp.Do(ctx, chromedp.Navigate(a.URL()+"/")) }()
	for i := range 40 {
		batch := next(50)
		if i%10 == 0 {
			batch = append(batch, testutil.Event{Subject: "cellos.events.cell.junk.x", Payload: []byte("not json")})
		}
		p.pubRaw(batch)
	}
	last := p.pub("formation", "zombie", "running", nil)
	if err := <-navigated; err != nil {
		t.Fatalf("load the page: %v", err)
	}
	pageWait(t, ctx, "page at the last event", fmt.Sprintf(`__cellos.state().phase === 'live' && __cellos.state().cursor === %d`, last), 10*time.Second)
	a.WaitCursor(last)
	pageWait(t, ctx, "tombstone found", `__cellos.sync.store.born.length === 0 && __cellos.sync.store.formations.get('zombie')?.deleted === true`, 8*time.Second)
	t.Logf("snapshot page cursors (formations, cells): %s", pageEval[string](t, ctx, `JSON.stringify(__cellos.sync.store.pageCursors)`))

	type entity = map[string]any
	page := pageEval[map[string][]entity](t, ctx, `(() => {
		const s = __cellos.sync.store;
		return {
			formations: s.liveFormations().map(f => ({ ...f, cells: s.countsOf(f.id) })),
			cells: [...s.cells.values()],
		};
	})()`)
	server := map[string][]entity{}
	for _, kind := range []string{"formations", "cells"} {
		after := ""
		for {
			body := apiGet[map[string]any](t, a.URL(), "/v1/"+kind+"?limit=1000&after="+after)
			for _, e := range body[kind].([]any) {
				server[kind] = append(server[kind], e.(entity))
			}
			if after = body["next"].(string); after == "" {
				break
			}
		}
	}
	for _, kind := range []string{"formations", "cells"} {
		byID := map[string]entity{}
		for _, e := range page[kind] {
			byID[e["id"].(string)] = e
		}
		if len(page[kind]) != len(server[kind]) {
			t.Errorf("%s: page has %d, server %d", kind, len(page[kind]), len(server[kind]))
		}
		for _, want := range server[kind] {
			id := want["id"].(string)
			got, ok := byID[id]
			if !ok {
				t.Errorf("%s %s: on the server, not on the page", kind, id)
				continue
			}
			for k, w := range want {
				if diff := fieldDiff(k, got[k], w); diff != "" {
					t.Errorf("%s %s field %s: %s", kind, id, k, diff)
				}
			}
		}
	}
	t.Logf("compared %d formations and %d cells at cursor %d", len(server["formations"]), len(server["cells"]), last)
}

// fieldDiff compares one field of the page's entity with the server's:
// times as instants (the page keeps milliseconds, the server nanoseconds),
// empty strings and absent fields alike.
func fieldDiff(key string, got, want any) string {
	if strings.HasSuffix(key, "At") {
		g, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(got))
		w, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(want))
		if !g.Equal(w) {
			return fmt.Sprintf("page %v, server %v", got, want)
		}
		return ""
	}
	if want == "" && got == nil {
		return ""
	}
	gj, _ := json.Marshal(got)
	wj, _ := json.Marshal(want)
	if string(gj) != string(wj) {
		return fmt.Sprintf("page %s, server %s", gj, wj)
	}
	return ""
}

// TestBrowserTenThousandCells: the first render of 10,000 cells stays
// under 2 s, and a burst of events is drawn in a few frames, not one
// render per event.
func TestBrowserTenThousandCells(t *testing.T) {
	ctx := newBrowser(t, 1280, 900)
	a := startProgram(t, t.TempDir(), "")
	p := newProducer(t, a)
	const cells, formations = 10000, 20
	var msgs []testutil.Event
	for f := range formations {
		msgs = append(msgs, p.event("formation", fmt.Sprintf("bulk-%02d", f), "created", map[string]any{"name": fmt.Sprintf("Bulk %02d", f), "tenantId": demo.TenantNames[f%4]}))
	}
	for i := range cells {
		msgs = append(msgs, p.event("cell", fmt.Sprintf("cell-%05d", i), "admitted", map[string]any{
			"formationId": fmt.Sprintf("bulk-%02d", i%formations), "tenantId": demo.TenantNames[i%formations%4], "specId": "spec-bulk",
		}))
	}
	last := p.pubRaw(msgs)
	a.WaitCursor(last)

	// Two figures: the first rows on screen (the snapshot's first page is
	// drawn as soon as it arrives) and the whole registry loaded and drawn.
	// Each is the best of up to three loads: this machine may be busy with
	// other tests, and one slow load says more about them than about us.
	type figures struct{ FirstRows, FirstRender, FirstPaint float64 }
	var best figures
	for attempt := 1; attempt <= 3 && (attempt == 1 || best.FirstRows > 2000 || best.FirstPaint > 5000); attempt++ {
		pageDo(t, ctx, chromedp.Navigate(fmt.Sprintf("%s/?load=%d#/cells", a.URL(), attempt)))
		pageWait(t, ctx, "whole snapshot drawn", `__cellos.perf.firstPaint > 0`, 15*time.Second)
		f := pageEval[figures](t, ctx, `__cellos.perf`)
		t.Logf("load %d of 10,000 cells: first rows drawn %.0f ms, whole registry drawn %.0f ms (painted %.0f ms) after navigation start; %s",
			attempt, f.FirstRows, f.FirstRender, f.FirstPaint, pageEval[string](t, ctx, `(() => {
				const r = performance.getEntriesByType('resource').filter(e => /\/v1\/(cells|formations)/.test(e.name));
				const first = Math.min(...r.map(e => e.startTime)), last = Math.max(...r.map(e => e.responseEnd));
				const dup = r.length - new Set(r.map(e => e.name)).size;
				return 'snapshot: ' + r.length + ' requests from ' + first.toFixed(0) + ' to ' + last.toFixed(0) + ' ms (server time ' + r.reduce((s, e) => s + (e.responseStart - e.requestStart), 0).toFixed(0) + ' ms)' + (dup ? ', ' + dup + ' fetched twice' : '');
			})()`))
		if attempt == 1 || f.FirstRows < best.FirstRows {
			best.FirstRows = f.FirstRows
		}
		if attempt == 1 || f.FirstPaint < best.FirstPaint {
			best.FirstRender, best.FirstPaint = f.FirstRender, f.FirstPaint
		}
	}
	if best.FirstRows > 2000 {
		t.Errorf("first render of the 10,000-cell view took %.0f ms at best, want under 2000 ms", best.FirstRows)
	}
	if best.FirstPaint > 5000 {
		t.Errorf("the whole 10,000-cell registry took %.0f ms at best to load and draw, want under 5000 ms", best.FirstPaint)
	}
	if n := pageEval[int](t, ctx, `document.querySelectorAll('table.cells tbody tr').length`); n != 100 {
		t.Errorf("rows in the DOM = %d, want one page of 100", n)
	}
	pageWait(t, ctx, "count line", `document.querySelector('.resultcount').textContent === '10,000 cells'`, 2*time.Second)

	// A burst of 2,000 events: applied in order, drawn once per frame.
	pageWait(t, ctx, "connected", `__cellos.state().phase === 'live'`, 5*time.Second)
	before := pageEval[int](t, ctx, `__cellos.perf.renders`)
	msgs = msgs[:0]
	for i := range 2000 {
		msgs = append(msgs, p.event("cell", fmt.Sprintf("cell-%05d", i), "started", nil))
	}
	last = p.pubRaw(msgs)
	pageWait(t, ctx, "burst applied", fmt.Sprintf(`__cellos.state().cursor === %d`, last), 10*time.Second)
	renders := pageEval[int](t, ctx, `__cellos.perf.renders`) - before
	t.Logf("burst of 2,000 events drawn in %d renders", renders)
	if renders > 400 {
		t.Errorf("2,000 events caused %d renders, want them batched per animation frame", renders)
	}
	pageWait(t, ctx, "first row running", `document.querySelector('table.cells tbody tr .badge').textContent === 'running'`, 2*time.Second)
}

// TestBrowserCleanClose: the page closes its socket with a clean
// handshake (1000 seen by the browser, not 1006).
func TestBrowserCleanClose(t *testing.T) {
	ctx := newBrowser(t, 1280, 900)
	a := startProgram(t, t.TempDir(), "")
	pageDo(t, ctx, chromedp.Navigate(a.URL()+"/"))
	pageWait(t, ctx, "connected", `__cellos.state().phase === 'live'`, 5*time.Second)
	got := pageEval[struct {
		Code  int
		Clean bool
	}](t, ctx, `__cellos.stop()`)
	if got.Code != 1000 || !got.Clean {
		t.Fatalf("close seen by the browser: code %d, clean %v; want 1000, clean", got.Code, got.Clean)
	}
	pageWait(t, ctx, "header shows disconnected", `document.getElementById('conn').dataset.state === 'stopped'`, time.Second)

	// Navigating away closes the socket too (pagehide), and the server
	// sees the client end it at once, not a ping timeout later.
	pageDo(t, ctx, chromedp.Navigate(a.URL()+"/?again#/cells"))
	pageWait(t, ctx, "connected again", `__cellos.state().phase === 'live'`, 5*time.Second)
	before := a.HTTP.SocketStats()
	pageDo(t, ctx, chromedp.Navigate("about:blank"))
	var st web.SocketStats
	if !testutil.Poll(3*time.Second, 10*time.Millisecond, func() bool {
		st = a.HTTP.SocketStats()
		return st.Open == 0 && st.Closed[web.EndClient] == before.Closed[web.EndClient]+1
	}) {
		t.Fatalf("after navigating away the server has %d sockets open, closed %v (before: %v); want the page's socket closed by the client", st.Open, st.Closed, before.Closed)
	}
}

// TestBrowserScreenshots takes the README's screenshots from demo traffic:
// desktop (light and dark) and phone width, into the directory
// CELLOS_SCREENSHOTS names. It is a tool more than a test, so it runs only
// then: `task screenshots` writes them into docs/.
func TestBrowserScreenshots(t *testing.T) {
	dir := os.Getenv("CELLOS_SCREENSHOTS")
	if dir == "" {
		t.Skip("writes the README's screenshots: run with CELLOS_SCREENSHOTS=<dir> (task screenshots writes them into docs/)")
	}
	ctx := newBrowser(t, 1440, 900)
	a := startProgram(t, t.TempDir(), "")
	p := newProducer(t, a)
	// Demo traffic whose simulated clock ends now, so times read "Xs ago".
	const n = 900
	step := 200 * time.Millisecond
	g := demo.New(demo.Options{Seed: 7, Start: time.Now().Add(-n * step), Step: step, Formations: 8})
	var msgs []testutil.Event
	for range n {
		msgs = append(msgs, demoEvent(t, g.Next()))
	}
	last := p.pubRaw(msgs)
	a.WaitCursor(last)

	shots := []struct {
		name, hash string
		w, h       int64
		dark       bool
	}{
		{"screenshot-desktop.png", "#/formations", 1440, 900, false},
		{"screenshot-dark.png", "#/formations", 1440, 900, true},
		{"screenshot-formation.png", "", 1440, 900, false},
		{"screenshot-events.png", "#/events", 1440, 900, true},
		{"screenshot-phone.png", "#/formations", 390, 844, false},
		{"screenshot-phone-dark.png", "#/cells?sort=updated", 390, 844, true},
	}
	pageDo(t, ctx, chromedp.Navigate(a.URL()+"/"))
	pageWait(t, ctx, "connected", `__cellos.state().phase === 'live'`, 5*time.Second)
	// Live traffic at a steady pace for a few seconds, so that the feed
	// and the events-per-second sparkline show what a user would see.
	tick := time.NewTicker(40 * time.Millisecond)
	for i := range 120 {
		<-tick.C
		batch := 1 + i%3 // an uneven rate reads better than a flat one
		msgs = msgs[:0]
		for range batch {
			msgs = append(msgs, demoEvent(t, g.Next()))
		}
		p.pubRaw(msgs)
	}
	tick.Stop()
	// The formation page shows the one with the most cells still at work.
	busiest := pageEval[string](t, ctx, `(() => {
		const s = __cellos.sync.store, live = (f) => { const c = s.countsOf(f.id); return c.total - c.destroyed + c.total / 1000; };
		return s.liveFormations().sort((a, b) => live(b) - live(a))[0].id;
	})()`)
	for _, s := range shots {
		hash := s.hash
		if hash == "" {
			hash = "#/formations/" + busiest
		}
		mobile := []chromedp.EmulateViewportOption{}
		if s.w < 500 {
			mobile = append(mobile, chromedp.EmulateMobile, chromedp.EmulateScale(2))
		}
		pageDo(t, ctx, chromedp.EmulateViewport(s.w, s.h, mobile...), darkMode(s.dark),
			chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`location.hash = %q; window.scrollTo(0, 0)`, hash)))
		pageWait(t, ctx, "view drawn", `document.querySelector('main table.grid tbody tr, main .empty, main li.ev, main dl.meta dd') !== null && __cellos.state().phase === 'live'`, 5*time.Second)
		// Let a frame or two land after the viewport change.
		pageWait(t, ctx, "frame", `new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`, 2*time.Second)
		path := pageScreenshot(t, ctx, dir, s.name)
		if fi, err := os.Stat(path); err != nil || fi.Size() < 10_000 {
			t.Errorf("screenshot %s looks empty (%v)", path, err)
		}
	}
	t.Logf("screenshots in %s", dir)
}

// demoEvent is a demo event on the subject a supervisor routes it to.
func demoEvent(t *testing.T, ev demo.Event) testutil.Event {
	t.Helper()
	subject, _, err := event.Route(ev.JSON())
	if err != nil {
		t.Fatal(err)
	}
	return testutil.Event{Subject: subject, Payload: ev.JSON()}
}
