package app_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"cellos-allinone/api"
	"cellos-allinone/app"
	"cellos-allinone/apptest"
	"cellos-allinone/testutil"
)

// tenants of testutil.Site, and the marker of the entities that have none.
var siteTenants = []string{"acme", "globex", "initech"}

const untenantedMarker = "plain-"

// siteData fills a program of testutil.Site with the entities of every
// tenant, through every door: acme and initech over HTTP by their own
// publishers (the tenant form, decided by the server), globex in the
// tenant form over NATS, an untenanted formation and cell by the legacy
// publisher, and an untenanted-form event about acme's cell that declares
// acme in its data. It returns the last sequence.
func siteData(t *testing.T, a *apptest.App) uint64 {
	t.Helper()
	entities := func(tn string) []testutil.Event {
		f, c1, c2 := tn+"-f1", tn+"-c1", tn+"-c2"
		return []testutil.Event{
			testutil.Formation(f, "created", map[string]any{"name": tn + " nightly", "labels": map[string]any{"team": tn}}),
			testutil.Formation(f, "running", nil),
			testutil.Cell(c1, "admitted", map[string]any{"formationId": f, "specId": tn + "-spec"}),
			testutil.Cell(c1, "started", nil),
			testutil.Cell(c2, "admitted", map[string]any{"formationId": f}),
			testutil.Cell(c2, "failed", map[string]any{"reason": tn + " out of memory"}),
		}
	}
	var last uint64
	post := func(token string, e testutil.Event, want int) {
		t.Helper()
		status, body := call(t, a, http.MethodPost, "/v1/events", token, e.Payload)
		if status != want {
			t.Fatalf("POST by %s: %d %s, want %d", token, status, body, want)
		}
		var pub api.Published
		if err := json.Unmarshal(body, &pub); err != nil {
			t.Fatal(err)
		}
		last = max(last, pub.Seq)
	}
	for _, e := range entities("acme") {
		post(testutil.SitePrincipal(t, "acme-sup").Token, e, http.StatusCreated)
	}
	for _, e := range entities("initech") {
		post(testutil.SitePrincipal(t, "initech-ops").Token, e, http.StatusCreated)
	}
	var globex []testutil.Event
	for _, e := range entities("globex") {
		globex = append(globex, testutil.InTenant("globex", e))
	}
	seqs := a.Publish(globex...)
	last = max(last, seqs[len(seqs)-1])
	legacy := testutil.SitePrincipal(t, "legacy-sup").Token
	post(legacy, testutil.Formation(untenantedMarker+"f1", "created", map[string]any{"name": "plain nightly"}), http.StatusCreated)
	post(legacy, testutil.Cell(untenantedMarker+"c1", "admitted", map[string]any{"formationId": untenantedMarker + "f1"}), http.StatusCreated)
	post(legacy, testutil.Cell("acme-c1", "summary", map[string]any{"tenantId": "acme", "passed": 3}), http.StatusCreated)
	a.WaitCursor(last)
	return last
}

// call sends one request with a bearer token ("" for none) and returns
// the status and body.
func call(t *testing.T, a *apptest.App, method, path, token string, body []byte, header ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, a.URL()+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// others are the strings no answer to a principal of tenant may hold: the
// other tenants' names, and the untenanted entities' marker. An untenanted
// principal may see everything.
func others(tenant string) []string {
	if tenant == "" {
		return nil
	}
	out := []string{untenantedMarker}
	for _, tn := range siteTenants {
		if tn != tenant {
			out = append(out, tn)
		}
	}
	return out
}

func assertNoLeak(t *testing.T, who testutil.Principal, what string, body []byte) {
	t.Helper()
	for _, o := range others(who.Tenant) {
		if bytes.Contains(body, []byte(o)) {
			t.Errorf("%s: %s holds %q (of another tenant): %.300s", who.Name, what, o, body)
		}
	}
}

// The tenant matrix over HTTP: every principal of the three-tenant site
// against every endpoint. Each answer has the status the role calls for;
// no answer to a tenant principal holds a byte of another tenant; another
// tenant's ids are 404; a tenant filter of another tenant answers empty.
func TestTenantMatrixHTTP(t *testing.T) {
	a := apptest.StartSite(t, app.Config{})
	siteData(t, a)

	type endpoint struct {
		method, path string
		need         string // admin, reader, publisher, open
		body         []byte
	}
	var eps []endpoint
	for _, tn := range siteTenants {
		for _, p := range []string{
			"/v1/formations/" + tn + "-f1", "/v1/cells/" + tn + "-c1",
			"/v1/formations/" + tn + "-f1/events", "/v1/cells/" + tn + "-c1/events",
			"/v1/formations?tenant=" + tn, "/v1/cells?tenant=" + tn, "/v1/summary?tenant=" + tn,
			"/v1/events?since=0&subject=cellos.events." + tn + ".>",
		} {
			eps = append(eps, endpoint{"GET", p, "reader", nil})
		}
	}
	for _, p := range []string{
		"/v1/formations", "/v1/cells", "/v1/summary", "/v1/events?since=0", "/v1/events?since=0&subject=cellos.events.cell.>",
		"/v1/formations/" + untenantedMarker + "f1", "/v1/cells/" + untenantedMarker + "c1", "/v1/cells?formation=acme-f1",
	} {
		eps = append(eps, endpoint{"GET", p, "reader", nil})
	}
	eps = append(eps,
		endpoint{"GET", "/v1/status", "admin", nil},
		endpoint{"GET", "/metrics", "admin", nil},
		endpoint{"GET", "/v1/whoami", "signed-in", nil},
		endpoint{"GET", "/healthz", "open", nil},
		endpoint{"GET", "/readyz", "open", nil},
		endpoint{"GET", "/", "open", nil},
	)

	principals := append([]testutil.Principal{{Name: "anonymous"}, {Name: "forger", Token: "not-a-token-of-this-site"}}, testutil.Site...)
	for _, who := range principals {
		t.Run(who.Name, func(t *testing.T) {
			for _, ep := range eps {
				status, body := call(t, a, ep.method, ep.path, who.Token, ep.body)
				want := expectedStatus(who, ep.need, ep.path)
				if status != want {
					t.Errorf("%s %s: %d %.200s, want %d", ep.method, ep.path, status, body, want)
					continue
				}
				if status == http.StatusOK {
					assertNoLeak(t, who, ep.method+" "+ep.path, body)
				}
				if status == http.StatusUnauthorized && !strings.Contains(string(body), `"unauthorized"`) {
					t.Errorf("%s %s: 401 without code unauthorized: %s", ep.method, ep.path, body)
				}
			}
		})
	}

	t.Run("a tenant's lists hold its own entities, whatever it asks", func(t *testing.T) {
		who := testutil.SitePrincipal(t, "acme-dash")
		var fl api.FormationList
		getAs(t, a, who.Token, "/v1/formations", &fl)
		if len(fl.Formations) != 1 || fl.Formations[0].ID != "acme-f1" {
			t.Errorf("acme-dash formations = %+v, want acme-f1 alone", fl.Formations)
		}
		getAs(t, a, who.Token, "/v1/formations?tenant=globex", &fl)
		if len(fl.Formations) != 0 || fl.Cursor == 0 {
			t.Errorf("acme-dash formations?tenant=globex = %+v (cursor %d), want none at a cursor", fl.Formations, fl.Cursor)
		}
		var cl api.CellList
		getAs(t, a, who.Token, "/v1/cells", &cl)
		ids := []string{}
		for _, c := range cl.Cells {
			ids = append(ids, c.ID)
		}
		if !slices.Equal(ids, []string{"acme-c1", "acme-c2"}) {
			t.Errorf("acme-dash cells = %v, want acme-c1 acme-c2", ids)
		}
		var cd api.CellDetail
		getAs(t, a, who.Token, "/v1/cells/acme-c1", &cd)
		if !bytes.Contains(cd.Cell.Compliance, []byte(`"passed":3`)) {
			t.Errorf("acme-c1 compliance = %s: the untenanted-form event that declared acme must reach acme's cell", cd.Cell.Compliance)
		}
		var sum api.Summary
		getAs(t, a, who.Token, "/v1/summary", &sum)
		if len(sum.Tenants) != 1 || sum.Tenants[0].ID != "acme" || sum.Cells.Total != 2 || sum.Formations.Total != 1 {
			t.Errorf("acme-dash summary = %+v, want acme alone: 1 formation, 2 cells", sum.Summary)
		}
		getAs(t, a, who.Token, "/v1/summary?tenant=globex", &sum)
		if sum.Cells.Total != 0 || sum.Formations.Total != 0 || len(sum.Tenants) != 1 {
			t.Errorf("acme-dash summary?tenant=globex = %+v, want zero counts", sum.Summary)
		}
		var page api.EventPage
		getAs(t, a, who.Token, "/v1/events?since=0", &page)
		for _, e := range page.Events {
			if !strings.HasPrefix(e.Subject, "cellos.events.acme.") {
				t.Errorf("acme-dash /v1/events holds %s, outside its sub-tree", e.Subject)
			}
		}
		if len(page.Events) != 6 {
			t.Errorf("acme-dash /v1/events = %d events, want its 6 (the untenanted-form one is not in its sub-tree)", len(page.Events))
		}
		getAs(t, a, who.Token, "/v1/events?since=0&subject=cellos.events.globex.>", &page)
		if len(page.Events) != 0 || page.Next != page.LastSeq {
			t.Errorf("acme-dash /v1/events of globex = %d events, next %d; want none, next %d", len(page.Events), page.Next, page.LastSeq)
		}
		getAs(t, a, who.Token, "/v1/cells/acme-c1/events", &page)
		if len(page.Events) != 2 {
			t.Errorf("acme-dash timeline of acme-c1 = %d events, want the 2 of its sub-tree", len(page.Events))
		}
	})

	t.Run("an untenanted reader sees both subject forms on a timeline", func(t *testing.T) {
		var page api.EventPage
		getAs(t, a, testutil.SitePrincipal(t, "auditor").Token, "/v1/cells/acme-c1/events", &page)
		if len(page.Events) != 3 {
			t.Errorf("auditor timeline of acme-c1 = %d events, want 3 (2 tenant form, 1 untenanted)", len(page.Events))
		}
	})

	t.Run("whoami", func(t *testing.T) {
		var w api.Whoami
		getAs(t, a, testutil.SitePrincipal(t, "initech-ops").Token, "/v1/whoami", &w)
		if w.Name != "initech-ops" || w.Tenant != "initech" || !slices.Equal(w.Roles, []string{"reader", "publisher"}) || !w.AuthRequired {
			t.Errorf("whoami = %+v", w)
		}
	})
}

// expectedStatus is the status a principal gets from an endpoint that
// needs a role: 401 without a valid token, 403 without the role, 404 for
// another tenant's entity, else 200.
func expectedStatus(who testutil.Principal, need, path string) int {
	if need == "open" {
		return http.StatusOK
	}
	valid := false
	for _, p := range testutil.Site {
		valid = valid || (p.Token == who.Token && who.Token != "")
	}
	if !valid {
		return http.StatusUnauthorized
	}
	roles := strings.Split(who.Roles, ",")
	can := func(r string) bool { return slices.Contains(roles, "admin") || slices.Contains(roles, r) }
	switch need {
	case "admin":
		if !slices.Contains(roles, "admin") {
			return http.StatusForbidden
		}
	case "reader":
		if !can("reader") {
			return http.StatusForbidden
		}
	}
	if who.Tenant != "" && (strings.HasPrefix(path, "/v1/formations/") || strings.HasPrefix(path, "/v1/cells/")) {
		id := strings.Split(strings.TrimPrefix(strings.TrimPrefix(path, "/v1/formations/"), "/v1/cells/"), "/")[0]
		if !strings.HasPrefix(id, who.Tenant+"-") {
			return http.StatusNotFound
		}
	}
	return http.StatusOK
}

func getAs(t *testing.T, a *apptest.App, token, path string, out any) {
	t.Helper()
	status, body := call(t, a, http.MethodGet, path, token, nil)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, status, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, body)
	}
}

// Tenant ingest: a tenant publisher's event goes into its sub-tree with
// the message id <tenant>/<id>, so the same id from two tenants is two
// events; a body that declares another tenant is refused, nothing stored.
func TestTenantIngest(t *testing.T) {
	a := apptest.StartSite(t, app.Config{})
	acme, globex := testutil.SitePrincipal(t, "acme-sup"), testutil.SitePrincipal(t, "globex-sup")
	body := []byte(`{"specversion":"1.0","id":"same-id","source":"/s","type":"dev.cellos.events.cell.lifecycle.v1.admitted","data":{"cellId":"c-1"}}`)
	var pubs []api.Published
	for _, who := range []testutil.Principal{acme, globex, acme} {
		status, b := call(t, a, http.MethodPost, "/v1/events", who.Token, body)
		var p api.Published
		if err := json.Unmarshal(b, &p); err != nil || status/100 != 2 {
			t.Fatalf("POST by %s: %d %s", who.Name, status, b)
		}
		pubs = append(pubs, p)
	}
	if pubs[0].Subject != "cellos.events.acme.cell.c-1.admitted" || pubs[1].Subject != "cellos.events.globex.cell.c-1.admitted" {
		t.Errorf("subjects %q, %q: want each tenant's sub-tree", pubs[0].Subject, pubs[1].Subject)
	}
	if pubs[0].Duplicate || pubs[1].Duplicate || pubs[0].Seq == pubs[1].Seq {
		t.Errorf("the same id from two tenants: %+v, %+v; want two events", pubs[0], pubs[1])
	}
	if !pubs[2].Duplicate || pubs[2].Seq != pubs[0].Seq {
		t.Errorf("acme's repeat = %+v, want a duplicate of #%d", pubs[2], pubs[0].Seq)
	}
	st, _ := a.Events.State(context.Background())
	for _, bad := range []string{
		`{"specversion":"1.0","id":"x1","source":"/s","type":"dev.cellos.events.cell.lifecycle.v1.admitted","data":{"cellId":"c-2","tenantId":"globex"}}`,
		`{"specversion":"1.0","id":"x2","source":"/s","type":"dev.cellos.events.cell.lifecycle.v1.admitted","data":{"cellId":"c-2","correlation":{"tenantId":"globex"}}}`,
	} {
		status, b := call(t, a, http.MethodPost, "/v1/events", acme.Token, []byte(bad))
		if status != http.StatusForbidden || !strings.Contains(string(b), `"forbidden"`) {
			t.Errorf("acme-sup declaring globex: %d %s, want 403 forbidden", status, b)
		}
	}
	batch := `[` + string(body) + `,{"specversion":"1.0","id":"x3","source":"/s","type":"dev.cellos.events.cell.lifecycle.v1.admitted","data":{"cellId":"c-3","tenantId":"initech"}}]`
	status, b := call(t, a, http.MethodPost, "/v1/events", acme.Token, []byte(batch), "Content-Type", "application/cloudevents-batch+json")
	var res api.Batch
	if err := json.Unmarshal(b, &res); err != nil || status != 200 || len(res.Results) != 2 || res.Results[1].Error == nil || res.Results[1].Error.Code != "forbidden" {
		t.Errorf("batch with a foreign tenant: %d %s, want 200 with the second refused as forbidden", status, b)
	}
	after, _ := a.Events.State(context.Background())
	if after.LastSeq != st.LastSeq {
		t.Errorf("refused events were stored: last sequence %d → %d", st.LastSeq, after.LastSeq)
	}
	var s struct {
		Ingest struct {
			DuplicatesByTenant map[string]uint64 `json:"duplicatesByTenant"`
		} `json:"ingest"`
	}
	getAs(t, a, testutil.SitePrincipal(t, "ops").Token, "/v1/status", &s)
	if s.Ingest.DuplicatesByTenant["acme"] != 2 || s.Ingest.DuplicatesByTenant["globex"] != 0 {
		t.Errorf("duplicates by tenant = %v, want acme 2 (the repeat and the batch's), globex none", s.Ingest.DuplicatesByTenant)
	}
}

// DNS rebinding: a request or an upgrade for a Host this server does not
// answer to gets 421 and nothing else; a page of another site (Origin)
// gets 403.
func TestHostAndOriginChecks(t *testing.T) {
	a := apptest.StartSite(t, app.Config{AllowedHosts: []string{"cellos.test"}})
	admin := testutil.SitePrincipal(t, "ops").Token
	for _, host := range []string{"attacker.example", "localhost.attacker.example", "10.1.2.3:8080"} {
		for _, path := range []string{"/v1/formations", "/healthz", "/"} {
			status, body := call(t, a, http.MethodGet, path, admin, nil, "Host", host)
			if status != http.StatusMisdirectedRequest || !strings.Contains(string(body), "misdirected_request") {
				t.Errorf("Host %s GET %s: %d %s, want 421", host, path, status, body)
			}
		}
		status, _ := call(t, a, http.MethodGet, "/ws/events", admin, nil, "Host", host,
			"Connection", "Upgrade", "Upgrade", "websocket", "Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		if status != http.StatusMisdirectedRequest {
			t.Errorf("Host %s upgrade: %d, want 421", host, status)
		}
	}
	for _, host := range []string{"cellos.test:443", "localhost:1", "127.0.0.1"} {
		if status, body := call(t, a, http.MethodGet, "/healthz", "", nil, "Host", host); status != http.StatusOK {
			t.Errorf("Host %s: %d %s, want 200", host, status, body)
		}
	}
	status, _ := call(t, a, http.MethodPost, "/v1/events", admin, []byte(`{}`), "Origin", "https://attacker.example")
	if status != http.StatusForbidden {
		t.Errorf("POST with a foreign Origin: %d, want 403", status)
	}
	if status, _ := call(t, a, http.MethodGet, "/v1/formations", admin, nil, "Origin", "http://cellos.test:8080"); status != http.StatusOK {
		t.Errorf("GET with Origin of an allowed host: %d, want 200", status)
	}
}

// The tenant matrix over WebSocket: every reader's socket carries exactly
// its tenant's sub-tree (everything for untenanted readers), whatever
// subject it asks for; a token travels in Authorization or in the
// browser's subprotocol, and the server answers cellos.v1, never the
// token.
func TestTenantMatrixWebSocket(t *testing.T) {
	a := apptest.StartSite(t, app.Config{})
	siteData(t, a)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fenceN := 0
	for _, who := range testutil.Site {
		if !strings.Contains(who.Roles, "reader") && who.Roles != "admin" {
			continue
		}
		for _, subject := range []string{"", "cellos.events.>", "cellos.events.*.cell.>", "cellos.events.globex.>"} {
			t.Run(who.Name+"/"+subject, func(t *testing.T) {
				q := "since=0"
				if subject != "" {
					q += "&subject=" + subject
				}
				opts := &websocket.DialOptions{Subprotocols: []string{"cellos.v1", "base64url.bearer.cellos." + base64.RawURLEncoding.EncodeToString([]byte(who.Token))}}
				if who.Tenant == "acme" {
					// acme dials with the header, the others as a browser does.
					opts = &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + who.Token}}}
				}
				c, resp, err := websocket.Dial(ctx, a.WSURL()+"?"+q, opts)
				if err != nil {
					t.Fatalf("dial: %v (%v)", err, resp)
				}
				defer c.CloseNow()
				if who.Tenant != "acme" && c.Subprotocol() != "cellos.v1" {
					t.Errorf("subprotocol %q, want cellos.v1", c.Subprotocol())
				}
				// A fence in the reader's own sub-tree (or anywhere for an
				// untenanted one) after everything else: every frame before
				// it is checked.
				fenceN++
				fence := fmt.Sprintf("fence-%d", fenceN)
				tenant := who.Tenant
				if tenant == "" {
					tenant = "globex"
				}
				seen := readUntil(t, ctx, c, func() {
					a.Publish(testutil.InTenant(tenant, testutil.Formation(fence, "created", nil)))
				}, fence)
				wantFence := !(who.Tenant != "" && subject == "cellos.events.globex.>" && who.Tenant != "globex") &&
					!(subject == "cellos.events.*.cell.>")
				for _, f := range seen {
					if who.Tenant != "" && !strings.HasPrefix(f.Subject, "cellos.events."+who.Tenant+".") {
						t.Errorf("frame %s outside the sub-tree of %s", f.Subject, who.Tenant)
					}
					assertNoLeak(t, who, "frame", f.Event)
				}
				got := len(seen) > 0 && strings.Contains(string(seen[len(seen)-1].Event), fence)
				if got != wantFence {
					t.Errorf("fence seen %v, want %v (%d frames)", got, wantFence, len(seen))
				}
			})
		}
	}
	t.Run("a bad token in the subprotocol is refused before the upgrade", func(t *testing.T) {
		_, resp, err := websocket.Dial(ctx, a.WSURL(), &websocket.DialOptions{Subprotocols: []string{"cellos.v1", "base64url.bearer.cellos." + base64.RawURLEncoding.EncodeToString([]byte("nope"))}})
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("dial with a bad token: %v, %v; want 401", err, resp)
		}
	})
	t.Run("a publisher may not read", func(t *testing.T) {
		_, resp, err := websocket.Dial(ctx, a.WSURL(), &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + testutil.SitePrincipal(t, "legacy-sup").Token}}})
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("dial as a publisher: %v, %v; want 403", err, resp)
		}
	})
}

// readUntil reads event frames (after hello) until one holds marker, after
// calling publish once hello arrived; a socket that cannot see the marker
// ends after a quiet second. It returns the frames read.
func readUntil(t *testing.T, ctx context.Context, c *websocket.Conn, publish func(), marker string) []api.Event {
	t.Helper()
	var out []api.Event
	published := false
	for {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		if !published {
			rctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		}
		_, b, err := c.Read(rctx)
		cancel()
		if err != nil {
			if published && ctx.Err() == nil {
				return out // quiet: nothing more is coming
			}
			t.Fatalf("read: %v", err)
		}
		var f struct {
			Type   string      `json:"type"`
			Events []api.Event `json:"events"`
			api.Event
		}
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatal(err)
		}
		switch f.Type {
		case "hello":
			publish()
			published = true
			continue
		case "events":
			out = append(out, f.Events...)
		default:
			out = append(out, f.Event)
		}
		if bytes.Contains(b, []byte(marker)) {
			return out
		}
	}
}

// natsAs connects to the program's NATS port as a principal of the site
// (user name and token as password); violations reports each permission
// violation the server sends back.
func natsAs(t *testing.T, a *apptest.App, p testutil.Principal) (*nats.Conn, <-chan error) {
	t.Helper()
	violations := make(chan error, 64)
	nc, err := nats.Connect(a.NATSURL(), nats.UserInfo(p.Name, p.Token), nats.MaxReconnects(0),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) || strings.Contains(err.Error(), "Permissions Violation") {
				select {
				case violations <- err:
				default:
				}
			}
		}))
	if err != nil {
		t.Fatalf("%s: connect: %v", p.Name, err)
	}
	t.Cleanup(nc.Close)
	return nc, violations
}

// refused asserts that the server answers one attempt of a principal with
// a permission violation (within 5 s).
func refused(t *testing.T, who, what string, violations <-chan error, attempt func()) {
	t.Helper()
	attempt()
	select {
	case err := <-violations:
		if !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
			t.Errorf("%s, %s: %v, want a permissions violation", who, what, err)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("%s, %s: no permissions violation within 5s", who, what)
	}
}

// The tenant matrix over NATS, through the whole program: a tenant
// publisher's seed-form publish lands in its sub-tree and its registry;
// every non-admin principal is refused by nats-server when it tries to
// purge or delete the stream, create a consumer outside its sub-tree,
// publish outside it, or subscribe to the whole log; the stream is
// unharmed; anonymous connections are refused.
func TestTenantMatrixNATS(t *testing.T) {
	a := apptest.StartSite(t, app.Config{})
	siteData(t, a)
	before, _ := a.Events.State(context.Background())

	acme := testutil.SitePrincipal(t, "acme-sup")
	nc, _ := natsAs(t, a, acme)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e := testutil.Formation("acme-nats-f1", "created", map[string]any{"name": "over NATS"})
	ack, err := js.Publish(ctx, e.Subject, e.Payload, jetstream.WithMsgID("acme/nats-1"))
	if err != nil {
		t.Fatalf("acme-sup publishes the seed's subject: %v", err)
	}
	msg, err := a.Events.Handle().GetMsg(ctx, ack.Sequence)
	if err != nil || msg.Subject != "cellos.events.acme.formation.acme-nats-f1.created" {
		t.Fatalf("stored as %q (%v), want in acme's sub-tree", msg.Subject, err)
	}
	a.WaitCursor(ack.Sequence)
	var fl api.FormationList
	getAs(t, a, testutil.SitePrincipal(t, "acme-dash").Token, "/v1/formations?prefix=acme-nats", &fl)
	if len(fl.Formations) != 1 || fl.Formations[0].TenantID != "acme" {
		t.Errorf("acme-dash sees %+v, want acme-nats-f1 of tenant acme", fl.Formations)
	}
	if status, _ := call(t, a, http.MethodGet, "/v1/formations/acme-nats-f1", testutil.SitePrincipal(t, "globex-dash").Token, nil); status != http.StatusNotFound {
		t.Errorf("globex-dash GET acme's formation: %d, want 404", status)
	}

	for _, p := range testutil.Site {
		if p.Roles == "admin" {
			continue
		}
		nc, violations := natsAs(t, a, p)
		other := "globex"
		if p.Tenant == "globex" {
			other = "acme"
		}
		for _, tc := range []struct {
			what    string
			attempt func()
		}{
			{"purge the stream", func() { _ = nc.PublishRequest("$JS.API.STREAM.PURGE.CELLOS_EVENTS", nc.NewRespInbox(), nil) }},
			{"delete the stream", func() { _ = nc.PublishRequest("$JS.API.STREAM.DELETE.CELLOS_EVENTS", nc.NewRespInbox(), nil) }},
			{"delete a consumer", func() {
				_ = nc.PublishRequest("$JS.API.CONSUMER.DELETE.CELLOS_EVENTS.any", nc.NewRespInbox(), nil)
			}},
			{"subscribe to the whole log", func() { _, _ = nc.SubscribeSync("cellos.events.>") }},
		} {
			refused(t, p.Name, tc.what, violations, tc.attempt)
		}
		// An untenanted publisher may publish anywhere in cellos.events.>
		// (it is trusted with every tenant); every other principal is
		// confined.
		if p.Tenant != "" || !strings.Contains(p.Roles, "publisher") {
			refused(t, p.Name, "publish into another tenant", violations, func() {
				_ = nc.Publish("cellos.events."+other+".cell.intruder.failed", testutil.Cell("intruder", "failed", nil).Payload)
			})
		}
		if p.Tenant != "" {
			refused(t, p.Name, "create a consumer outside its sub-tree", violations, func() {
				_ = nc.PublishRequest("$JS.API.CONSUMER.CREATE.CELLOS_EVENTS.peek.cellos.events."+other+".>", nc.NewRespInbox(), []byte(`{}`))
			})
		}
	}
	if _, err := nats.Connect(a.NATSURL(), nats.MaxReconnects(0)); err == nil {
		t.Error("an anonymous connection was accepted")
	}
	after, err := a.Events.State(context.Background())
	if err != nil || after.Epoch != before.Epoch || after.FirstSeq != before.FirstSeq || after.LastSeq != ack.Sequence {
		t.Errorf("stream after the attempts: %+v (%v); want the same incarnation and floor, ending at #%d", after, err, ack.Sequence)
	}
}
