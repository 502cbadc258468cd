package web_test

// Browser tests of signing in (docs/ui.md, "Signing in"): the whole
// program with the auth file of the three-tenant test site
// (testutil.Site), headless Chromium, and the page's prompt for a token,
// its explanations of 401, 403 and 4401, and a tenant reader's live view.

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"cellos-allinone/app"
	"cellos-allinone/apptest"
	"cellos-allinone/testutil"
	"cellos-allinone/web"
)

// startSite runs the program with the test site's auth file, written to
// the returned path.
func startSite(t *testing.T) (*apptest.App, string) {
	t.Helper()
	dir := t.TempDir()
	authFile := filepath.Join(dir, "auth")
	testutil.WriteAuthFile(t, authFile, testutil.Site)
	return apptest.StartSite(t, app.Config{DataDir: dir, AuthFile: authFile, Sync: app.SyncPolicyInterval}), authFile
}

// tenantFormation is a formation of tenant with two cells, stored in the
// tenant's sub-tree (cellos.events.<tenant>.…) as its producer publishes.
func tenantFormation(tenant, id, name string) []testutil.Event {
	tn := map[string]any{"tenantId": tenant}
	with := func(m map[string]any) map[string]any {
		out := map[string]any{"tenantId": tenant}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	evs := []testutil.Event{
		testutil.Formation(id, "created", with(map[string]any{"name": name})),
		testutil.Formation(id, "running", tn),
		testutil.Cell(id+"-c1", "admitted", with(map[string]any{"formationId": id})),
		testutil.Cell(id+"-c1", "started", tn),
		testutil.Cell(id+"-c2", "admitted", with(map[string]any{"formationId": id})),
	}
	for i := range evs {
		evs[i] = testutil.InTenant(tenant, evs[i])
	}
	return evs
}

// signInJS types a token into the prompt and submits it.
func signInJS(token string) string {
	return fmt.Sprintf(`(() => { const i = document.getElementById('signin-token'); i.value = %q; i.form.requestSubmit(); })()`, token)
}

// promptFor waits until the page asks for a token for the given reason
// (needed, unauthorized, forbidden, revoked) and returns what it says.
func promptFor(t *testing.T, ctx context.Context, reason string) string {
	t.Helper()
	pageWait(t, ctx, "sign-in prompt ("+reason+")", fmt.Sprintf(`document.querySelector('main .signin')?.dataset.reason === %q && !!document.getElementById('signin-token')`, reason), 10*time.Second)
	return pageEval[string](t, ctx, `document.querySelector('main .signin').textContent`)
}

const storedTokenJS = `sessionStorage.getItem('cellos.token') || ''`

// TestBrowserSignIn: on a server with an auth file the page asks for a
// token and explains each refusal: a wrong token is not accepted (401), a
// publisher's token may not read (403); a tenant reader's token shows its
// tenant in the header and that tenant's formations only, and an event
// published afterwards arrives live over the socket the token opened (as
// a subprotocol: a browser cannot send the header).
func TestBrowserSignIn(t *testing.T) {
	ctx := newBrowser(t, 1280, 900)
	a, _ := startSite(t)
	var evs []testutil.Event
	evs = append(evs, tenantFormation("acme", "acme-f1", "Acme nightly")...)
	evs = append(evs, tenantFormation("globex", "globex-f1", "Globex payroll")...)
	a.WaitCursor(a.Publish(evs...)[len(evs)-1])

	pageDo(t, ctx, chromedp.Navigate(a.URL()+"/#/formations"))
	said := promptFor(t, ctx, "needed")
	if !strings.Contains(said, "reader role") {
		t.Errorf("the prompt says %q; want it to ask for a token of a reader", said)
	}
	// Nothing of the registry while signed out: no tabs, no feed, no rows,
	// no one signed in.
	if shown := pageEval[[]string](t, ctx, `['.tabs', 'aside', '#who', 'main table'].filter(s => { const el = document.querySelector(s); return el && el.getClientRects().length > 0; })`); len(shown) > 0 {
		t.Errorf("signed out, the page shows %v", shown)
	}

	// A wrong token: 401, said in plain words, and nothing kept.
	pageDo(t, ctx, chromedp.Evaluate[chromedp.Void](signInJS("not-a-token-of-this-site")))
	said = promptFor(t, ctx, "unauthorized")
	pageWait(t, ctx, "the form says why", `document.getElementById('signin-status').textContent.includes('does not accept this token')`, 5*time.Second)
	for _, want := range []string{"401", "withdrawn"} {
		if !strings.Contains(said, want) {
			t.Errorf("after a wrong token the prompt says %q; want %q in it", said, want)
		}
	}
	if s := pageEval[string](t, ctx, storedTokenJS); s != "" {
		t.Errorf("a refused token was stored: %q", s)
	}

	// A publisher's token: valid, but it may not read (403).
	sup := testutil.SitePrincipal(t, "acme-sup")
	pageDo(t, ctx, chromedp.Evaluate[chromedp.Void](signInJS(sup.Token)))
	said = promptFor(t, ctx, "forbidden")
	pageWait(t, ctx, "the prompt names the principal", `document.querySelector('main .signin').textContent.includes('acme-sup (tenant acme)')`, 5*time.Second)
	for _, want := range []string{"403", "reader role", "publisher"} {
		if !strings.Contains(said, want) {
			t.Errorf("with a publisher's token the prompt says %q; want %q in it", said, want)
		}
	}
	pageWait(t, ctx, "signed in as the publisher", `!document.getElementById('who').hidden && document.getElementById('who').textContent.includes('acme-sup (tenant acme)')`, 5*time.Second)
	// Sign out forgets the token.
	pageDo(t, ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector('#who button').click()`))
	promptFor(t, ctx, "needed")
	if s := pageEval[string](t, ctx, storedTokenJS); s != "" {
		t.Errorf("after Sign out the tab still holds a token: %q", s)
	}

	// A tenant reader: its tenant in the header, its formations only.
	dash := testutil.SitePrincipal(t, "acme-dash")
	pageDo(t, ctx, chromedp.Evaluate[chromedp.Void](signInJS(dash.Token)))
	pageWait(t, ctx, "live as acme-dash", `window.__cellos?.state().phase === 'live' && __cellos.state().signin === ''`, 10*time.Second)
	pageWait(t, ctx, "signed in as acme-dash (tenant acme)", `document.getElementById('who').textContent === 'Signed in as acme-dash (tenant acme)Sign out' && document.getElementById('who').getClientRects().length > 0`, 5*time.Second)
	waitSettled(t, ctx)
	rows := pageEval[[]string](t, ctx, `[...document.querySelectorAll('table.formations tbody tr td:first-child')].map(td => td.textContent)`)
	if len(rows) != 1 || !strings.Contains(rows[0], "Acme nightly") {
		t.Errorf("acme-dash sees the formations %q; want Acme nightly alone", rows)
	}
	if tenants := pageEval[[]string](t, ctx, `[...document.querySelectorAll('.cardlist a')].map(a => a.textContent)`); !slices.Equal(tenants, []string{"acme"}) {
		t.Errorf("acme-dash's tenants card lists %q; want acme alone", tenants)
	}
	// Where the token is: this tab's sessionStorage, nowhere else.
	where := pageEval[struct {
		Session, URL string
		Local        int
		Protocol     string
	}](t, ctx, `({ session: sessionStorage.getItem('cellos.token'), url: location.href, local: localStorage.length, protocol: __cellos.sync.ws?.protocol || '' })`)
	if where.Session != dash.Token || where.Local != 0 || strings.Contains(where.URL, dash.Token) {
		t.Errorf("the token is kept in sessionStorage %q, localStorage holds %d items, the URL is %q; want it in sessionStorage only", where.Session, where.Local, where.URL)
	}
	if where.Protocol != "cellos.v1" {
		t.Errorf("the socket's subprotocol is %q, want cellos.v1 (the server never echoes the token)", where.Protocol)
	}

	// Live: a new formation of acme arrives over the socket; globex's
	// does not.
	more := append(tenantFormation("globex", "globex-f2", "Globex late"), tenantFormation("acme", "acme-f2", "Acme late")...)
	last := a.Publish(more...)
	pageWait(t, ctx, "acme's new formation, live", `[...document.querySelectorAll('table.formations tbody tr')].some(tr => tr.textContent.includes('Acme late'))`, 5*time.Second)
	pageWait(t, ctx, "its events in the feed", fmt.Sprintf(`!!document.querySelector('aside li[data-seq="%d"]')`, last[len(last)-1]), 5*time.Second)
	waitSettled(t, ctx)
	if leak := pageEval[string](t, ctx, `document.querySelector('main').textContent + document.querySelector('aside').textContent`); strings.Contains(strings.ToLower(leak), "globex") {
		t.Errorf("acme-dash's page shows globex: %.300s", leak)
	}
}

// TestBrowserSignedOutByReload: a reload of the auth file that removes the
// signed-in principal closes its socket with 4401; the page says the
// server withdrew its credentials, forgets the token, does not reconnect,
// and signs in again with another token.
func TestBrowserSignedOutByReload(t *testing.T) {
	ctx := newBrowser(t, 1280, 900)
	a, authFile := startSite(t)
	a.WaitCursor(a.Publish(append(tenantFormation("acme", "acme-f1", "Acme nightly"), tenantFormation("globex", "globex-f1", "Globex payroll")...)...)[0])

	pageDo(t, ctx, chromedp.Navigate(a.URL()+"/"))
	promptFor(t, ctx, "needed")
	pageDo(t, ctx, chromedp.Evaluate[chromedp.Void](signInJS(testutil.SitePrincipal(t, "acme-dash").Token)))
	pageWait(t, ctx, "live as acme-dash", `window.__cellos?.state().phase === 'live' && document.getElementById('who').textContent.includes('acme-dash')`, 10*time.Second)

	// The operator withdraws acme-dash and reloads (SIGHUP).
	var rest []testutil.Principal
	for _, p := range testutil.Site {
		if p.Name != "acme-dash" {
			rest = append(rest, p)
		}
	}
	before := a.HTTP.SocketStats()
	testutil.WriteAuthFile(t, authFile, rest)
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	said := promptFor(t, ctx, "revoked")
	if code := pageEval[int](t, ctx, `__cellos.sync.lastClose?.code || 0`); code != 4401 {
		t.Errorf("the page's socket closed with %d, want 4401", code)
	}
	for _, want := range []string{"withdrew", "acme-dash", "auth file was reloaded", "Sign in again"} {
		if !strings.Contains(said, want) {
			t.Errorf("after 4401 the prompt says %q; want %q in it", said, want)
		}
	}
	// The dead token is forgotten, and nothing tries it again.
	if s := pageEval[string](t, ctx, storedTokenJS); s != "" {
		t.Errorf("after 4401 the tab still holds the token %q", s)
	}
	if st := pageEval[struct {
		Stopped bool
		RetryAt float64
		Ws      bool
	}](t, ctx, `({ stopped: __cellos.sync.stopped, retryAt: __cellos.sync.retryAt, ws: !!__cellos.sync.ws })`); !st.Stopped || st.RetryAt != 0 || st.Ws {
		t.Errorf("after 4401 the page's sync is %+v; want it stopped, no retry, no socket", st)
	}
	if st := a.HTTP.SocketStats(); st.Open != 0 || st.Closed[web.EndUnauthorized] != before.Closed[web.EndUnauthorized]+1 {
		t.Errorf("server sockets after the reload: %d open, closed %v (before %v); want the page's closed for 4401 and none open", st.Open, st.Closed, before.Closed)
	}
	if shown := pageEval[[]string](t, ctx, `['.tabs', 'aside', '#who', 'main table'].filter(s => { const el = document.querySelector(s); return el && el.getClientRects().length > 0; })`); len(shown) > 0 {
		t.Errorf("signed out by the server, the page still shows %v", shown)
	}

	// Another principal signs in on the same page.
	pageDo(t, ctx, chromedp.Evaluate[chromedp.Void](signInJS(testutil.SitePrincipal(t, "globex-dash").Token)))
	pageWait(t, ctx, "live as globex-dash", `window.__cellos?.state().phase === 'live' && document.getElementById('who').textContent.includes('globex-dash (tenant globex)')`, 10*time.Second)
	pageWait(t, ctx, "globex's formation", `[...document.querySelectorAll('table.formations tbody tr')].map(tr => tr.querySelector('td').textContent).join() .includes('Globex payroll')`, 5*time.Second)
}

// TestBrowserRefusedSocketAsksWhy: the page is cut off, and meanwhile its
// principal is withdrawn; when the line is back the server refuses the
// socket's upgrade (401), which a browser sees only as a failed socket
// (1006). The page asks /v1/whoami why, and says its token is no longer
// accepted instead of reconnecting with it again and again.
func TestBrowserRefusedSocketAsksWhy(t *testing.T) {
	ctx := newBrowser(t, 1280, 900)
	a, authFile := startSite(t)
	a.WaitCursor(a.Publish(tenantFormation("acme", "acme-f1", "Acme nightly")...)[0])
	proxy := newCutProxy(t, a.HTTP.Addr())

	pageDo(t, ctx, chromedp.Navigate("http://"+proxy.addr()+"/"))
	promptFor(t, ctx, "needed")
	pageDo(t, ctx, chromedp.Evaluate[chromedp.Void](signInJS(testutil.SitePrincipal(t, "acme-dash").Token)))
	pageWait(t, ctx, "live as acme-dash", `window.__cellos?.state().phase === 'live' && document.getElementById('who').textContent.includes('acme-dash')`, 10*time.Second)

	proxy.cut()
	pageWait(t, ctx, "reconnecting", `document.getElementById('conn').dataset.state === 'reconnecting'`, 5*time.Second)
	var rest []testutil.Principal
	for _, p := range testutil.Site {
		if p.Name != "acme-dash" {
			rest = append(rest, p)
		}
	}
	testutil.WriteAuthFile(t, authFile, rest)
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	proxy.restore()

	said := promptFor(t, ctx, "unauthorized")
	for _, want := range []string{"401", "withdrawn"} {
		if !strings.Contains(said, want) {
			t.Errorf("after a refused socket the prompt says %q; want %q in it", said, want)
		}
	}
	if code := pageEval[int](t, ctx, `__cellos.sync.lastClose?.code || 0`); code != 1006 {
		t.Errorf("the refused socket closed with %d in the browser, want 1006", code)
	}
	if st := pageEval[struct {
		Stopped bool
		RetryAt float64
		Token   string
	}](t, ctx, `({ stopped: __cellos.sync.stopped, retryAt: __cellos.sync.retryAt, token: `+storedTokenJS+` })`); !st.Stopped || st.RetryAt != 0 || st.Token != "" {
		t.Errorf("after the refused socket: sync stopped %v, next retry at %v, token %q; want stopped, no retry, no token", st.Stopped, st.RetryAt, st.Token)
	}
}
