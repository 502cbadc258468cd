package web_test

// Browser tests of failed reads: a read the server does not answer (503
// not_ready, a 500, a refused connection) shows why, with Retry, in place
// of what it was to show — never an empty list that looks like "no data" —
// and Retry shows it once the server answers again.

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// interceptor answers the page's requests through Chromium's Fetch domain:
// a request whose URL contains a key of its rules is answered as the rule
// says ("503": not_ready, "500": internal, "refuse": a refused
// connection); any other goes to the server.
type interceptor struct {
	t     *testing.T
	ctx   context.Context
	mu    sync.Mutex
	rules map[string]string
	hits  map[string]int // requests answered by each rule's key
}

func intercept(t *testing.T, ctx context.Context) *interceptor {
	t.Helper()
	ictx, cancel := context.WithCancel(ctx)
	ic := &interceptor{t: t, ctx: ictx, rules: map[string]string{}, hits: map[string]int{}}
	paused := chromedp.Events(ictx, fetch.RequestPaused)
	if _, err := chromedp.Call(ictx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: "*/v1/*"}}}); err != nil {
		cancel()
		t.Fatalf("Fetch.enable: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev, err := range paused {
			if err != nil {
				return
			}
			ic.answer(ev)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return ic
}

// set makes requests whose URL contains key answered as mode ("" or
// "pass": by the server).
func (ic *interceptor) set(key, mode string) {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	ic.rules[key] = mode
}

func (ic *interceptor) count(key string) int {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	return ic.hits[key]
}

func (ic *interceptor) answer(ev fetch.EventRequestPaused) {
	mode := ""
	ic.mu.Lock()
	for key, m := range ic.rules {
		if m != "" && m != "pass" && strings.Contains(ev.Request.URL, key) {
			mode = m
			ic.hits[key]++
		}
	}
	ic.mu.Unlock()
	var err error
	jsonHeader := []*fetch.HeaderEntry{{Name: "Content-Type", Value: "application/json"}}
	switch mode {
	case "503":
		_, err = chromedp.Call(ic.ctx, fetch.FulfillRequest, fetch.FulfillRequestParams{RequestID: ev.RequestID, ResponseCode: 503, ResponseHeaders: jsonHeader,
			Body: []byte(`{"error":{"code":"not_ready","message":"the projection is replaying the event log"}}`)})
	case "500":
		_, err = chromedp.Call(ic.ctx, fetch.FulfillRequest, fetch.FulfillRequestParams{RequestID: ev.RequestID, ResponseCode: 500, ResponseHeaders: jsonHeader,
			Body: []byte(`{"error":{"code":"internal","message":"internal error"}}`)})
	case "refuse":
		_, err = chromedp.Call(ic.ctx, fetch.FailRequest, fetch.FailRequestParams{RequestID: ev.RequestID, ErrorReason: network.ErrorReasonConnectionRefused})
	default:
		_, err = chromedp.Call(ic.ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
	}
	if err != nil && ic.ctx.Err() == nil {
		ic.t.Errorf("answer the intercepted %s: %v", ev.Request.URL, err)
	}
}

// failureJS is what the failure at sel says, "" while there is none shown.
func failureJS(sel string) string {
	return fmt.Sprintf(`(() => { const f = document.querySelector(%q); return f && f.getClientRects().length > 0 && f.querySelector('button')?.textContent === 'Retry' ? f.textContent : ''; })()`, sel)
}

// TestBrowserRetriesFailedReads: the list, the page of one cell and the
// registry's summary each fail to load; the page says why with Retry in
// their place (and no empty state), tries again by itself with a growing
// wait, and Retry loads them as soon as the server answers.
func TestBrowserRetriesFailedReads(t *testing.T) {
	ctx := newBrowser(t, 1280, 900)
	a := startProgram(t, t.TempDir(), "")
	p := newProducer(t, a)
	for i := range 5 {
		p.pub("cell", fmt.Sprintf("r-%d", i), "admitted", map[string]any{"formationId": "retry"})
	}
	ic := intercept(t, ctx)

	// The list: first 503 not_ready, then a refused connection.
	const list = "/v1/cells?"
	ic.set(list, "503")
	pageDo(t, ctx, chromedp.Navigate(a.URL()+"/#/cells"))
	pageWait(t, ctx, "the list's failure with Retry", failureJS("main .list .failure")+`.includes('still replaying its event log')`, 5*time.Second)
	shown := pageEval[struct {
		Table, Empty, Count bool
		Said                string
	}](t, ctx, `({ table: document.querySelector('main table.cells').getClientRects().length > 0, empty: !!document.querySelector('main .empty'),
		count: document.querySelector('main .resultcount').getClientRects().length > 0, said: document.querySelector('main .list .failure').textContent })`)
	if shown.Table || shown.Empty || shown.Count {
		t.Errorf("a failed list shows its table %v, an empty state %v, a count %v; want only the failure", shown.Table, shown.Empty, shown.Count)
	}
	if !strings.Contains(shown.Said, "Could not load the cells") || !strings.Contains(shown.Said, "503 not_ready") {
		t.Errorf("the failure says %q; want what failed and the server's status", shown.Said)
	}
	ic.set(list, "refuse")
	pageWait(t, ctx, "the second failure: no answer", failureJS("main .list .failure")+`.includes('did not answer')`, 5*time.Second)
	// After two failures in a row the page waits at least 4 s before its
	// next try, and says so: what follows within 2 s is Retry's doing.
	var wait int
	when := pageEval[string](t, ctx, `document.querySelector('main .list .failure .failwhen').textContent`)
	if _, err := fmt.Sscanf(when, "The page tries again by itself in %d s.", &wait); err != nil || wait < 3 {
		t.Fatalf("after %d failed reads the failure says %q; want a wait of 3 s or more before the next try", ic.count(list), when)
	}
	ic.set(list, "pass")
	pageDo(t, ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector('main .list .failure button').click()`))
	pageWait(t, ctx, "the cells after Retry", `document.querySelectorAll('main table.cells tbody tr').length === 5 && !document.querySelector('main .list .failure').getClientRects().length`, 2*time.Second)

	// One cell's page: a 500.
	ic.set("/v1/cells/r-1", "500")
	pageDo(t, ctx, chromedp.Evaluate[chromedp.Void](`location.hash = '#/cells/r-1'`))
	pageWait(t, ctx, "the cell's failure with Retry", failureJS("main .view.cell > .failure")+`.includes('Could not load this cell')`, 5*time.Second)
	if said := pageEval[string](t, ctx, failureJS("main .view.cell > .failure")); !strings.Contains(said, "500 internal") {
		t.Errorf("the cell's failure says %q; want the server's status", said)
	}
	ic.set("/v1/cells/r-1", "pass")
	pageDo(t, ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector('main .view.cell > .failure button').click()`))
	pageWait(t, ctx, "the cell after Retry", `document.querySelector('main .view.cell .pagehead .badge')?.textContent === 'admitted' && !document.querySelector('main .view.cell > .failure').getClientRects().length`, 2*time.Second)

	// The registry itself: the page's first read, 503 until Retry.
	ic.set("/v1/summary", "503")
	pageDo(t, ctx, chromedp.Navigate(a.URL()+"/?again#/cells"))
	pageWait(t, ctx, "the registry's failure with Retry", failureJS("main > .failure")+`.includes('Could not load the registry')`, 5*time.Second)
	if shown := pageEval[bool](t, ctx, `!!document.querySelector('main .empty') || document.querySelector('main table.cells')?.getClientRects().length > 0`); shown {
		t.Error("while the registry cannot be read the page shows a list or an empty state")
	}
	ic.set("/v1/summary", "pass")
	pageWait(t, ctx, "Retry can be pressed", `!document.querySelector('main > .failure button').disabled`, 3*time.Second)
	pageDo(t, ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector('main > .failure button').click()`))
	pageWait(t, ctx, "live with the cells", `window.__cellos?.state().phase === 'live' && document.querySelectorAll('main table.cells tbody tr').length === 5 && !document.querySelector('main > .failure')`, 5*time.Second)
}
