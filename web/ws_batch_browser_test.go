package web_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"cellos-allinone/testutil"
)

// TestBrowserAppliesBatchFrames: the page asks for batch=1 and applies the
// events of a batch frame in their order. Each cell of a burst completes
// and then fails: only in that order is its outcome "completed" with exit
// code 0 (the first of the two wins, docs/design.md §3).
func TestBrowserAppliesBatchFrames(t *testing.T) {
	ctx := newBrowser(t, 1280, 900)
	a := startProgram(t, t.TempDir(), "")
	p := newProducer(t, a)
	pageDo(t, ctx, chromedp.Navigate(a.URL()+"/"))
	pageWait(t, ctx, "connected", `__cellos.state().phase === 'live'`, 5*time.Second)

	const cells = 300
	var msgs []testutil.Event
	for i := range cells {
		id := fmt.Sprintf("burst-%03d", i)
		msgs = append(msgs,
			p.event("cell", id, "admitted", map[string]any{"formationId": "f-burst"}),
			p.event("cell", id, "completed", map[string]any{"exitCode": 0}),
			p.event("cell", id, "failed", map[string]any{"reason": "too late"}))
	}
	last := p.pubRaw(msgs)
	pageWait(t, ctx, "burst applied", fmt.Sprintf(`__cellos.state().cursor === %d`, last), 10*time.Second)
	got := pageEval[struct{ Cells, Completed, BatchFrames int }](t, ctx, `(() => {
		const cs = [...__cellos.sync.store.cells.values()].filter(c => c.id.startsWith('burst-'));
		return {
			cells: cs.length,
			completed: cs.filter(c => c.outcome === 'completed' && c.exitCode === 0 && c.state === 'completed').length,
			batchFrames: __cellos.sync.batchFrames,
		};
	})()`)
	if got.Cells != cells || got.Completed != cells {
		t.Errorf("page has %d burst cells, %d of them completed with exit code 0; want %d and %d", got.Cells, got.Completed, cells, cells)
	}
	if got.BatchFrames == 0 {
		t.Errorf("%d events arrived without a batch frame; want the page on batch=1", 3*cells)
	}
	t.Logf("%d events applied; %d batch frames", 3*cells, got.BatchFrames)
}
