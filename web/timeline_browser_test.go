package web_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"cellos-allinone/testutil"
)

// TestBrowserTimeline: a cell's page shows the cell's retained events,
// oldest first, a page at a time (More), then appends its live events and
// none of another entity's; a formation's page shows the formation's.
func TestBrowserTimeline(t *testing.T) {
	ctx := newBrowser(t, 1280, 900)
	a := startProgram(t, t.TempDir(), "")
	p := newProducer(t, a)

	var mine []uint64
	p.pub("formation", "f-tl", "created", map[string]any{"name": "Timeline formation"})
	mine = append(mine, p.pub("cell", "c-tl", "admitted", map[string]any{"formationId": "f-tl"}))
	var evs []testutil.Event
	for i := range 60 {
		evs = append(evs, p.event("cell", "c-tl", "summary", map[string]any{"compliance": map[string]any{"n": i}}),
			p.event("cell", "c-tl-other", "summary", nil))
	}
	for i, seq := range p.a.Publish(evs...) {
		if i%2 == 0 {
			mine = append(mine, seq)
		}
	}
	mine = append(mine, p.pub("cell", "c-tl", "started", nil))
	fRunning := p.pub("formation", "f-tl", "running", nil)

	shown := `[...document.querySelectorAll('.view.cell ol.timeline li')].map(li => +li.dataset.seq)`
	pageDo(t, ctx, chromedp.Navigate(a.URL()+"/#/cells/c-tl"))
	pageWait(t, ctx, "connected", `__cellos.state().phase === 'live'`, 5*time.Second)
	pageWait(t, ctx, "the first page of the timeline", shown+`.length === 50`, 5*time.Second)
	if got := pageEval[[]uint64](t, ctx, shown); !slices.Equal(got, mine[:50]) {
		t.Fatalf("first page shows %v, want %v", got, mine[:50])
	}
	pageDo(t, ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector('.view.cell .tlmore').click()`))
	pageWait(t, ctx, "the second page", shown+fmt.Sprintf(`.length === %d`, len(mine)), 5*time.Second)
	if got := pageEval[[]uint64](t, ctx, shown); !slices.Equal(got, mine) {
		t.Fatalf("after More: %v, want %v", got, mine)
	}
	pageWait(t, ctx, "More gone at the end", `document.querySelector('.view.cell .tlmore').hidden`, 2*time.Second)

	// Live: the cell's new events are appended, also one in a tenant's
	// sub-tree (the API's timeline holds both forms); another cell's are
	// not.
	p.pub("cell", "c-tl-other", "started", nil)
	seq := p.pub("cell", "c-tl", "completed", map[string]any{"exitCode": 0})
	p.pub("cell", "c-tl-other", "completed", map[string]any{"exitCode": 1})
	mine = append(mine, seq)
	pageWait(t, ctx, fmt.Sprintf("live event #%d appended", seq), shown+fmt.Sprintf(`.at(-1) === %d`, seq), 3*time.Second)
	p.a.Publish(testutil.InTenant("acme", p.event("cell", "c-tl-other", "destroyed", nil)))
	seq = p.a.Publish(testutil.InTenant("acme", p.event("cell", "c-tl", "destroyed", nil)))[0]
	mine = append(mine, seq)
	p.pub("cell", "c-tl-other", "summary", nil)
	pageWait(t, ctx, fmt.Sprintf("live event #%d of acme's sub-tree appended", seq), shown+fmt.Sprintf(`.at(-1) === %d`, seq), 3*time.Second)
	pageWait(t, ctx, "the page caught up", fmt.Sprintf(`__cellos.state().cursor === %d`, seq+1), 3*time.Second)
	if got := pageEval[[]uint64](t, ctx, shown); !slices.Equal(got, mine) {
		t.Errorf("timeline after live events: %v, want %v", got, mine)
	}
	if n := pageEval[int](t, ctx, `document.querySelectorAll('.view.cell section.tl').length`); n != 1 {
		t.Errorf("%d timeline sections on the cell page, want 1", n)
	}

	// The formation's page: its own events.
	fShown := `[...document.querySelectorAll('.view.formation ol.timeline li')].map(li => +li.dataset.seq)`
	pageDo(t, ctx, chromedp.Evaluate[chromedp.Void](`location.hash = '#/formations/f-tl'`))
	pageWait(t, ctx, "the formation's timeline", fShown+`.length === 2`, 5*time.Second)
	if got := pageEval[[]uint64](t, ctx, fShown); !slices.Equal(got, []uint64{1, fRunning}) {
		t.Errorf("formation timeline %v, want [1 %d]", got, fRunning)
	}
	done := p.pub("formation", "f-tl", "completed", nil)
	pageWait(t, ctx, "the formation's live event", fShown+fmt.Sprintf(`.at(-1) === %d`, done), 3*time.Second)
}
