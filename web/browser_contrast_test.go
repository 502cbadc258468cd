package web_test

// The contrast of the web view's text (WCAG 2.x AA: at least 4.5:1 for
// every text, large or not), in the light and the dark theme: every
// visible text of every view, the sign-in prompt, and a board of every
// state colour in the places the page draws it.

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"cellos-allinone/projection"
	"cellos-allinone/testutil"
)

// minContrast is WCAG 2.x AA for normal text; the page holds its large
// text to it too.
const minContrast = 4.5

// contrastJS measures every visible text of the page: the colour of each
// element with text of its own (and of its ::before and ::after content,
// an input's value or placeholder, a select's choice) against its
// effective background — the background colours from it up to the first
// opaque one, composited — and returns those below the bound, by element
// and colours. Disabled controls are left out (WCAG exempts them).
const contrastJS = `((min) => {
  const parse = (s) => {
    let m = /^rgba?\(([^)]*)\)$/.exec(s);
    if (m) { const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number); return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; }
    m = /^color\(srgb ([^)]*)\)$/.exec(s);
    if (m) { const p = m[1].split(/[\s\/]+/).filter(Boolean).map(Number); return [p[0] * 255, p[1] * 255, p[2] * 255, p.length > 3 ? p[3] : 1]; }
    return null;
  };
  const over = (top, bottom) => { const a = top[3]; return [0, 1, 2].map(i => top[i] * a + bottom[i] * (1 - a)).concat(1); };
  const lum = (c) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; }; return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  const hex = (c) => '#' + c.slice(0, 3).map(v => Math.round(v).toString(16).padStart(2, '0')).join('') + (c[3] < 1 ? '/' + c[3].toFixed(2) : '');
  const bgOf = (el) => {
    const layers = [];
    for (let n = el; n; n = n.parentElement) {
      const c = parse(getComputedStyle(n).backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let bg = [255, 255, 255, 1];
    for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg);
    return bg;
  };
  const opacityOf = (el) => { let o = 1; for (let n = el; n; n = n.parentElement) o *= Number(getComputedStyle(n).opacity); return o; };
  const name = (el) => {
    const one = (n) => n.tagName.toLowerCase() + (n.id ? '#' + n.id : '') + (typeof n.className === 'string' && n.className.trim() ? '.' + n.className.trim().split(/\s+/).join('.') : '');
    const path = [];
    for (let n = el; n && n !== document.body && path.length < 4; n = n.parentElement) path.unshift(one(n));
    return path.join(' > ');
  };
  const bad = new Map();
  let checked = 0;
  const check = (el, what, colour, text) => {
    const fg0 = parse(colour);
    const bg = bgOf(el);
    if (!fg0) { bad.set(name(el) + what, name(el) + what + ' "' + text + '": colour ' + colour + ' not understood'); return; }
    const op = opacityOf(el);
    const fg = over([fg0[0], fg0[1], fg0[2], fg0[3] * op], bg);
    checked++;
    const r = ratio(fg, bg);
    if (r < min) {
      const key = name(el) + what + hex(fg) + hex(bg);
      if (!bad.has(key)) bad.set(key, name(el) + what + ' "' + text.slice(0, 40) + '": ' + hex(fg0) + (op < 1 ? ' at opacity ' + op.toFixed(2) : '') + ' on ' + hex(bg) + ' = ' + r.toFixed(2) + ':1');
    }
  };
  for (const el of document.body.querySelectorAll('*')) {
    if (el.closest('svg, script, style, noscript')) continue;
    const rects = el.getClientRects();
    if (rects.length === 0) continue;
    const box = el.getBoundingClientRect();
    if (box.width <= 1 || box.height <= 1) continue; // visually hidden (sr-only)
    const cs = getComputedStyle(el);
    if (cs.visibility !== 'visible' || el.closest(':disabled')) continue;
    const own = [...el.childNodes].filter(n => n.nodeType === Node.TEXT_NODE).map(n => n.textContent).join('').trim();
    if (own) check(el, '', cs.color, own);
    if (el instanceof HTMLInputElement && ['text', 'search', 'password'].includes(el.type)) {
      if (el.value) check(el, ' (value)', cs.color, el.value);
      else if (el.placeholder) check(el, '::placeholder', getComputedStyle(el, '::placeholder').color, el.placeholder);
    }
    if (el instanceof HTMLSelectElement) check(el, ' (choice)', cs.color, el.selectedOptions[0]?.textContent || '');
    for (const p of ['::before', '::after']) {
      const ps = getComputedStyle(el, p);
      if (['none', 'normal', '""', "''"].includes(ps.content) || ps.display === 'none') continue;
      check(el, p, ps.color, ps.content);
    }
  }
  return { checked, bad: [...bad.values()] };
})`

type contrastReport struct {
	Checked int
	Bad     []string
}

// checkContrast fails the test for every text of the page below
// minContrast.
func checkContrast(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	// The frame after the last change, with no transition under way.
	pageWait(t, ctx, "frame", `new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`, 2*time.Second)
	r := pageEval[contrastReport](t, ctx, fmt.Sprintf("%s(%v)", contrastJS, minContrast))
	if r.Checked < 5 {
		t.Fatalf("%s: only %d texts measured; the page is not drawn", what, r.Checked)
	}
	for _, b := range r.Bad {
		t.Errorf("%s: contrast below %.1f:1: %s", what, minContrast, b)
	}
	t.Logf("%s: %d texts measured, %d below %.1f:1", what, r.Checked, len(r.Bad), minContrast)
}

// stateBoardJS draws every state colour where the page draws it — badges
// in a table, event types in a feed, the connection pill in a header, the
// notices — at the top of main, for checkContrast to measure.
const stateBoardJS = `(() => {
  const states = ['admitted', 'running', 'completed', 'failed', 'destroyed', 'created', 'launching', 'degraded', 'cancelled', 'summary', 'other'];
  const conns = ['live', 'connecting', 'loading', 'reconnecting', 'resyncing', 'stopped'];
  const board = document.createElement('div');
  board.id = 'stateboard';
  board.innerHTML =
    '<header class="top"><div class="connwrap">' + conns.map(c => '<div class="conn c-' + c + '"><span class="dot"></span><span class="conntext">' + c + '</span></div>').join('') + '</div>' +
    '<dl class="metrics"><div><dt>Lag</dt><dd class="warn">1,234</dd></div></dl></header>' +
    '<div class="tablewrap"><table class="grid"><tbody><tr>' + states.map(s => '<td><span class="badge s-' + s + '"><span class="dot"></span>' + s + '</span></td>').join('') + '</tr>' +
    '<tr><td><span class="exit ok">0</span></td><td><span class="exit bad">137</span></td><td><span class="reason">OOMKilled</span></td><td><span class="muted">—</span></td></tr></tbody></table></div>' +
    '<section class="feed paused"><div class="feedhead"><h2>Live events</h2><button class="btn small" aria-pressed="true">Resume</button></div><p class="feednote">Paused · 3 new events held back</p>' +
    '<ol class="events"><li class="ev mark">Resynced at #12</li>' + states.map(s => '<li class="ev"><details><summary><span class="seq">#1</span><span class="etype s-' + s + '"><span class="dot"></span>cell ' + s + '</span><code class="id">c-1</code><time class="clock">12:00:00</time></summary></details></li>').join('') + '</ol></section>' +
    '<div class="cards"><div class="card accent-running"><div class="cardlabel">Running cells</div><div class="cardvalue">12</div></div><div class="card accent-failed"><div class="cardlabel">Failed cells</div><div class="cardvalue">3</div></div></div>' +
    '<div class="failure"><div role="alert"><h2>Could not load the cells</h2><p class="failmsg">The server failed to answer (HTTP 500 internal).</p></div><p class="failwhen">The page tries again by itself in 4 s.</p><button class="btn">Retry</button></div>' +
    '<div class="toast"><div class="toastmsg t-resync">Resynced</div></div><div class="toastmsg t-info">Copied</div>' +
    '<p class="signstatus err">Not signed in: the server does not accept this token.</p><button class="btn primary">Sign in</button><button class="btn ghost">Clear filters</button>';
  document.querySelector('main').prepend(board);
  return true;
})()`

// TestBrowserContrast: in the light and the dark theme every text of the
// views (desktop and phone), of the sign-in prompt, and of every state
// colour has a contrast of at least 4.5:1 against its background.
func TestBrowserContrast(t *testing.T) {
	ctx := newBrowser(t, 1280, 900)
	a := startProgram(t, t.TempDir(), "")
	p := newProducer(t, a)
	last, g := p.demoEndingNow(900)
	a.WaitCursor(last)
	var fid, cid string
	for _, f := range apiGet[struct{ Formations []projection.Formation }](t, a.URL(), "/v1/formations?limit=1000").Formations {
		if f.Cells.Total > 1 {
			fid = f.ID
			break
		}
	}
	cid = apiGet[struct{ Cells []apiCell }](t, a.URL(), "/v1/cells?limit=1&formation="+fid).Cells[0].ID

	pageDo(t, ctx, chromedp.Navigate(a.URL()+"/"))
	pageWait(t, ctx, "connected", `__cellos.state().phase === 'live'`, 5*time.Second)
	// A few live events, for the feed.
	for range 5 {
		p.pubRaw([]testutil.Event{demoEvent(t, g.Next())})
	}
	pageWait(t, ctx, "feed entries", `document.querySelectorAll('.feed li.ev').length >= 5`, 5*time.Second)

	views := []struct{ hash, view string }{
		{"#/formations", "formations"},
		{"#/cells", "cells"},
		{"#/formations/" + fid, "formation"},
		{"#/cells/" + cid, "cell"},
		{"#/events", "events"},
	}
	show := func(hash, view string) {
		t.Helper()
		pageDo(t, ctx, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`location.hash = %q`, hash)))
		pageWait(t, ctx, "view "+hash, fmt.Sprintf(`document.querySelector('main > .view.%s') !== null`, view), 5*time.Second)
		waitSettled(t, ctx)
	}
	for _, dark := range []bool{false, true} {
		mode := map[bool]string{false: "light", true: "dark"}[dark]
		pageDo(t, ctx, chromedp.EmulateViewport(1280, 900), darkMode(dark))
		for _, v := range views {
			show(v.hash, v.view)
			if v.view == "events" || v.view == "cell" {
				// An event opened to its JSON.
				pageDo(t, ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector('main li.ev details')?.setAttribute('open', '')`))
			}
			checkContrast(t, ctx, v.hash+" ("+mode+")")
		}
		show("#/cells?state=running&tenant=nobody", "cells")
		checkContrast(t, ctx, "an empty filter result ("+mode+")")
		show("#/formations", "formations")
		pageDo(t, ctx, chromedp.Evaluate[chromedp.Void](stateBoardJS))
		checkContrast(t, ctx, "every state colour ("+mode+")")
		pageDo(t, ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById('stateboard').remove()`))

		// The phone layout: rows as cards with labelled fields.
		pageDo(t, ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2)))
		show("#/cells", "cells")
		checkContrast(t, ctx, "#/cells on a phone ("+mode+")")
	}
	// The first-run help of an empty registry.
	empty := startProgram(t, t.TempDir(), "")
	for _, dark := range []bool{false, true} {
		pageDo(t, ctx, chromedp.EmulateViewport(1280, 900), darkMode(dark), chromedp.Navigate(empty.URL()+"/?"+fmt.Sprint(dark)+"#/formations"))
		pageWait(t, ctx, "first-run help", `window.__cellos?.state().phase === 'live' && document.querySelector('main .empty') !== null`, 5*time.Second)
		checkContrast(t, ctx, "the first-run help ("+map[bool]string{false: "light", true: "dark"}[dark]+")")
	}

	// The sign-in prompt, a refused token, and who is signed in.
	site, _ := startSite(t)
	for _, dark := range []bool{false, true} {
		mode := map[bool]string{false: "light", true: "dark"}[dark]
		pageDo(t, ctx, darkMode(dark), chromedp.Navigate(site.URL()+"/?"+mode+"#/formations"))
		promptFor(t, ctx, "needed")
		pageDo(t, ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById('signin-token').value = ''`))
		checkContrast(t, ctx, "the sign-in prompt ("+mode+")")
		pageDo(t, ctx, chromedp.Evaluate[chromedp.Void](signInJS("not-a-token")))
		promptFor(t, ctx, "unauthorized")
		pageWait(t, ctx, "the form says why", `document.getElementById('signin-status').textContent.includes('does not accept')`, 5*time.Second)
		pageDo(t, ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById('signin-token').value = 'typed-token'`))
		checkContrast(t, ctx, "a refused token ("+mode+")")
		pageDo(t, ctx, chromedp.Evaluate[chromedp.Void](signInJS(testutil.SitePrincipal(t, "acme-dash").Token)))
		pageWait(t, ctx, "signed in", `window.__cellos?.state().phase === 'live' && !document.getElementById('who').hidden`, 10*time.Second)
		waitSettled(t, ctx)
		checkContrast(t, ctx, "signed in as acme-dash ("+mode+")")
		pageDo(t, ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector('#who button').click()`))
		promptFor(t, ctx, "needed")
	}
}
