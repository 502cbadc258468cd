package web_test

// The web view on a phone (docs/ui.md, "On a phone"): at 390×844, an
// emulated phone, no page scrolls sideways and nothing sticks out of the
// screen, the summary is a two-column grid with every card on screen, the
// live feed is on the first screen, rows show their key fields in full and
// the views' tabs are thumb-sized at the bottom, in light and dark; at
// 1280 px the desktop layout stays as it was.

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"cellos-allinone/demo"
	"cellos-allinone/projection"
	"cellos-allinone/testutil"
)

// layoutJS reports what sticks out of the viewport sideways: the page's
// scroll width, and every element reaching past either edge that no
// ancestor clips (scrolls or hides) — overflow the user would have to
// scroll sideways to see, or could not see at all.
const layoutJS = `(() => {
  const W = document.documentElement.clientWidth;
  const wide = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0 || (r.right <= W + 0.5 && r.left >= -0.5)) continue;
    let clipped = false;
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      if (getComputedStyle(p).overflowX !== 'visible') { clipped = true; break; }
    }
    if (!clipped) wide.push(el.tagName.toLowerCase() + (el.className ? '.' + String(el.className).replace(/ /g, '.') : '') + ' ' + Math.round(r.left) + '..' + Math.round(r.right));
  }
  return { scrollWidth: document.documentElement.scrollWidth, clientWidth: W, wide: wide.slice(0, 8) };
})()`

type layoutReport struct {
	ScrollWidth int      `json:"scrollWidth"`
	ClientWidth int      `json:"clientWidth"`
	Wide        []string `json:"wide"`
}

// rect is an element's box in the viewport.
type rect struct {
	Left, Right, Top, Bottom, Width, Height float64
	// Clipped: its text is cut (ellipsis): wider than its box.
	Clipped bool
	Shown   bool
}

// rectJS is the box of the element an expression names (null when none).
func rectJS(el string) string {
	return fmt.Sprintf(`(() => { const el = %s; if (!el) return null; const r = el.getBoundingClientRect();
  return { Left: r.left, Right: r.right, Top: r.top, Bottom: r.bottom, Width: r.width, Height: r.height,
    Clipped: el.scrollWidth > el.clientWidth + 1, Shown: r.width > 0 && r.height > 0 && getComputedStyle(el).visibility !== 'hidden' }; })()`, el)
}

func TestBrowserPhoneLayout(t *testing.T) {
	ctx := newBrowser(t, 1280, 900)
	a := startProgram(t, t.TempDir(), "")
	p := newProducer(t, a)

	const W, H = 390, 844
	pageDo(t, ctx, chromedp.EmulateViewport(W, H, chromedp.EmulateMobile, chromedp.EmulateScale(2)),
		chromedp.Navigate(a.URL()+"/#/formations"))
	pageWait(t, ctx, "first-run help", `__cellos.state().phase === 'live' && document.querySelector('main .empty') !== null`, 5*time.Second)
	// An empty registry: what to do comes first, not a feed waiting.
	if help := pageEval[*rect](t, ctx, rectJS(`document.querySelector('main .empty')`)); help == nil || help.Top > H/2 {
		t.Errorf("empty registry: the first-run help is at %+v, want it in the top half of the first screen", help)
	}
	if shown := pageEval[bool](t, ctx, `document.querySelector('.feed').getClientRects().length > 0`); shown {
		t.Errorf("empty registry: the feed (waiting for events) is shown before the first-run help")
	}

	// Demo traffic, which the page takes in live.
	const n = 600
	step := 200 * time.Millisecond
	g := demo.New(demo.Options{Seed: 11, Start: time.Now().Add(-n * step), Step: step, Formations: 8})
	var msgs []testutil.Event
	for range n {
		msgs = append(msgs, demoEvent(t, g.Next()))
	}
	a.WaitCursor(p.pubRaw(msgs))
	pageWait(t, ctx, "feed entries", `document.querySelectorAll('.feed li.ev').length >= 5`, 5*time.Second)
	// A formation with cells and one of its cells, for the entity pages.
	var fid, cid string
	for _, f := range apiGet[struct{ Formations []projection.Formation }](t, a.URL(), "/v1/formations?limit=1000").Formations {
		if f.Cells.Total > 1 {
			fid = f.ID
			break
		}
	}
	if fid == "" {
		t.Fatalf("the demo traffic made no formation with cells")
	}
	cid = apiGet[struct{ Cells []apiCell }](t, a.URL(), "/v1/cells?limit=1&formation="+fid).Cells[0].ID

	// show opens a view (view: the class of its element, which tells it
	// from the view before) and waits until it is drawn and settled.
	show := func(hash, view string, dark bool) {
		t.Helper()
		pageDo(t, ctx, darkMode(dark), chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`location.hash = %q`, hash)))
		pageWait(t, ctx, "view "+hash, fmt.Sprintf(`document.querySelector('main > .view.%s') !== null`, view), 5*time.Second)
		waitSettled(t, ctx)
		pageWait(t, ctx, "drawn", `document.querySelector('main table.grid tbody tr, main dl.meta dd') !== null`, 5*time.Second)
		// The frame after the last change, scrolled to the top.
		pageWait(t, ctx, "frame", `new Promise(r => { window.scrollTo(0, 0); requestAnimationFrame(() => requestAnimationFrame(() => r(true))); })`, 2*time.Second)
	}
	noSideways := func(what string) {
		t.Helper()
		l := pageEval[layoutReport](t, ctx, layoutJS)
		if l.ClientWidth != W {
			t.Fatalf("%s: viewport %d px wide, want %d (the phone emulation did not apply)", what, l.ClientWidth, W)
		}
		if l.ScrollWidth > l.ClientWidth {
			t.Errorf("%s: the page scrolls sideways: scrollWidth %d > clientWidth %d (sticking out: %v)", what, l.ScrollWidth, l.ClientWidth, l.Wide)
		}
		if len(l.Wide) > 0 {
			t.Errorf("%s: elements reach past the %d px screen: %v", what, W, l.Wide)
		}
	}
	// keyField asserts that an element of the first row is shown whole on
	// the screen's width.
	keyField := func(what, el string) {
		t.Helper()
		r := pageEval[*rect](t, ctx, rectJS(el))
		switch {
		case r == nil || !r.Shown:
			t.Errorf("%s: %s is not shown", what, el)
		case r.Left < 0 || r.Right > W:
			t.Errorf("%s: %s spans %.0f..%.0f px, off the %d px screen", what, el, r.Left, r.Right, W)
		case r.Clipped:
			t.Errorf("%s: %s is cut short (its text is wider than its %.0f px box)", what, el, r.Width)
		}
	}

	for _, dark := range []bool{false, true} {
		mode := map[bool]string{false: "light", true: "dark"}[dark]

		// The home page: the summary and the feed on the first screen.
		show("#/formations", "formations", dark)
		what := "formations (" + mode + ")"
		noSideways(what)
		cards := pageEval[[]rect](t, ctx, `[...document.querySelectorAll('.cards .card')].map(el => { const r = el.getBoundingClientRect(); return { Left: r.left, Right: r.right, Top: r.top, Bottom: r.bottom, Width: r.width, Height: r.height }; })`)
		if len(cards) != 6 {
			t.Fatalf("%s: %d summary cards, want 6", what, len(cards))
		}
		columns := map[int]bool{}
		for i, c := range cards {
			if c.Left < 0 || c.Right > W || c.Top < 0 || c.Bottom > H {
				t.Errorf("%s: card %d at (%.0f..%.0f, %.0f..%.0f), not inside the %d×%d screen", what, i+1, c.Left, c.Right, c.Top, c.Bottom, W, H)
			}
			columns[int(c.Left)] = true
		}
		if len(columns) != 2 {
			t.Errorf("%s: the cards stand in %d columns, want 2", what, len(columns))
		}
		feed := pageEval[*rect](t, ctx, rectJS(`document.querySelector('main .feedinline .feed')`))
		if feed == nil {
			t.Fatalf("%s: the live feed is not in the main column", what)
		}
		last := cards[len(cards)-1]
		if feed.Top < last.Bottom || feed.Top > last.Bottom+40 {
			t.Errorf("%s: the feed starts at %.0f px, want right after the summary (ending at %.0f px)", what, feed.Top, last.Bottom)
		}
		ev := pageEval[*rect](t, ctx, rectJS(`document.querySelector('.feed li.ev')`))
		if ev == nil || ev.Bottom > H {
			t.Fatalf("%s: the feed's newest entry is not on the first screen (%+v, screen %d px tall)", what, ev, H)
		}
		t.Logf("%s: the cards end at %.0f px, the feed starts at %.0f px, its newest entry ends at %.0f px, the feed at %.0f px", what, last.Bottom, feed.Top, ev.Bottom, feed.Bottom)
		keyField(what+", first row", `document.querySelector('table.grid tbody tr td:first-child a')`)
		keyField(what+", first row", `document.querySelector('table.grid tbody tr .badge')`)
		tabs := pageEval[[]rect](t, ctx, `[...document.querySelectorAll('.tabs a')].map(el => { const r = el.getBoundingClientRect(); return { Left: r.left, Right: r.right, Top: r.top, Bottom: r.bottom, Width: r.width, Height: r.height }; })`)
		for i, r := range tabs {
			if r.Height < 44 || r.Width < 88 || r.Top < H/2 || r.Bottom > H || r.Left < 0 || r.Right > W {
				t.Errorf("%s: tab %d at (%.0f..%.0f, %.0f..%.0f): want a thumb target (≥ 44 px tall, ≥ 88 px wide) in the bottom half of the screen", what, i+1, r.Left, r.Right, r.Top, r.Bottom)
			}
		}
		// Dark mode applies to the phone layout too.
		bg := pageEval[string](t, ctx, `getComputedStyle(document.querySelector('.card')).backgroundColor`)
		if want := map[bool]string{false: "rgb(255, 255, 255)", true: "rgb(18, 24, 32)"}[dark]; bg != want {
			t.Errorf("%s: a card's background is %s, want %s", what, bg, want)
		}

		show("#/cells", "cells", dark)
		what = "cells (" + mode + ")"
		noSideways(what)
		keyField(what+", first row", `document.querySelector('table.grid tbody tr td:first-child a')`)
		keyField(what+", first row", `document.querySelector('table.grid tbody tr td.st .badge')`)
		if r := pageEval[*rect](t, ctx, rectJS(`document.querySelector('main .feedinline .feed')`)); r == nil || r.Top > H {
			t.Errorf("%s: the live feed is not on the first screen: %+v", what, r)
		}

		show("#/formations/"+fid, "formation", dark)
		what = "formation " + fid + " (" + mode + ")"
		noSideways(what)
		keyField(what+", first cell", `document.querySelector('table.grid tbody tr td:first-child a')`)
		keyField(what+", first cell", `document.querySelector('table.grid tbody tr td.st .badge')`)

		show("#/cells/"+cid, "cell", dark)
		what = "cell " + cid + " (" + mode + ")"
		noSideways(what)
		keyField(what, `document.querySelector('main h1')`)
		keyField(what, `document.querySelector('main .pagehead .badge')`)
	}

	// The desktop layout stays: at 1280 px the six cards stand in one row,
	// the feed beside the list, the table with its header, tabs on top.
	pageDo(t, ctx, chromedp.EmulateViewport(1280, 900), darkMode(false))
	show("#/formations", "formations", false)
	tops := pageEval[[]float64](t, ctx, `[...document.querySelectorAll('.cards .card')].map(el => Math.round(el.getBoundingClientRect().top))`)
	if len(tops) != 6 || slices.Min(tops) != slices.Max(tops) {
		t.Errorf("desktop: card tops %v, want six cards in one row", tops)
	}
	if in := pageEval[string](t, ctx, `document.querySelector('.feed').parentElement.id`); in != "aside" {
		t.Errorf("desktop: the feed is in %q, want the side column", in)
	}
	if d := pageEval[string](t, ctx, `getComputedStyle(document.querySelector('table.grid thead')).display`); d != "table-header-group" {
		t.Errorf("desktop: the table header is display %q, want a table header", d)
	}
	if r := pageEval[*rect](t, ctx, rectJS(`document.querySelector('.tabs')`)); r == nil || r.Top > 200 {
		t.Errorf("desktop: the tabs are at %+v, want them under the header", r)
	}
}
