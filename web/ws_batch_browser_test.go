package web_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"cellos-allinone/testutil"
)

// TestBrowserAppliesBatchFrames: the page asks for batch=1 and applies
// every event of a batch frame, in the frame's order.
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
	// The page holds only the rows its views show, but every event it
	// applies goes through its ring of recent events, in order: an event
	// applied out of order would drop the ones before it (at or below the
	// cursor), and those would be missing here.
	got := pageEval[struct {
		Seqs        []int
		BatchFrames int
	}](t, ctx, `(() => ({
		seqs: __cellos.sync.store.ring.filter(r => r.ev?.data?.cellId?.startsWith('burst-')).map(r => r.seq),
		batchFrames: __cellos.sync.batchFrames,
	}))()`)
	first := int(last) - 3*cells + 1
	if len(got.Seqs) != 3*cells || got.Seqs[0] != first || !slices.IsSorted(got.Seqs) || got.Seqs[len(got.Seqs)-1] != int(last) {
		t.Errorf("the page applied %d burst events (%v…); want all %d, %d to %d in order", len(got.Seqs), got.Seqs[:min(5, len(got.Seqs))], 3*cells, first, last)
	}
	if got.BatchFrames == 0 {
		t.Errorf("%d events arrived without a batch frame; want the page on batch=1", 3*cells)
	}
	t.Logf("%d events applied; %d batch frames", 3*cells, got.BatchFrames)
}
