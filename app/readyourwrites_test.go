package app_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"cellos-allinone/api"
	"cellos-allinone/app"
	"cellos-allinone/apptest"
	"cellos-allinone/client"
	"cellos-allinone/testutil"
)

// slowCheckpoints is a checkpoint interval no answer of these tests may
// wait for: only the early commit a min_seq read asks for is that quick.
const slowCheckpoints = 10 * time.Second

// quick is how soon a min_seq read must answer once its event is stored:
// well under slowCheckpoints.
const quick = 2 * time.Second

// post publishes one event through POST /v1/events and returns its seq.
func post(t *testing.T, a *apptest.App, e testutil.Event) uint64 {
	t.Helper()
	res, err := a.Client().Publish(testutil.Ctx(t, 10*time.Second), e.Payload)
	if err != nil {
		t.Fatalf("POST /v1/events: %v", err)
	}
	return res.Seq
}

// timedGet is get, also returning how long the answer took.
func timedGet(t *testing.T, a *apptest.App, path string) (int, http.Header, []byte, time.Duration) {
	t.Helper()
	start := time.Now()
	status, header, body := get(t, a, path)
	return status, header, body, time.Since(start)
}

// readsWaiting is the cellos_http_reads_waiting gauge of /metrics.
func readsWaiting(t *testing.T, a *apptest.App) int {
	t.Helper()
	_, _, body := get(t, a, "/metrics")
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "cellos_http_reads_waiting "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("cellos_http_reads_waiting %q: %v", v, err)
			}
			return int(n)
		}
	}
	t.Fatalf("/metrics has no cellos_http_reads_waiting:\n%s", body)
	return 0
}

type notCaughtUp struct {
	Error struct {
		Code    string  `json:"code"`
		Message string  `json:"message"`
		Cursor  *uint64 `json:"cursor"`
	} `json:"error"`
}

func TestReadYourWrites(t *testing.T) {
	a := apptest.Start(t, app.Config{CheckpointInterval: slowCheckpoints})
	seq := post(t, a, testutil.Formation("f-1", "created", map[string]any{"name": "nightly", "tenantId": "acme"}))

	t.Run("the write is read at once", func(t *testing.T) {
		// Without min_seq the answer may be the last commit, up to 10 s
		// old; with it, the early commit answers.
		status, _, body, took := timedGet(t, a, "/v1/formations/f-1?min_seq="+strconv.FormatUint(seq, 10))
		var d api.FormationDetail
		if err := json.Unmarshal(body, &d); status != 200 || err != nil || d.Formation.Name != "nightly" || d.Cursor < seq {
			t.Fatalf("GET /v1/formations/f-1?min_seq=%d = %d %s, want the formation at cursor ≥ %d", seq, status, body, seq)
		}
		if took > quick {
			t.Fatalf("GET with min_seq=%d took %v, want well under the checkpoint interval %v", seq, took, slowCheckpoints)
		}
	})

	t.Run("every registry read takes it", func(t *testing.T) {
		s := strconv.FormatUint(seq, 10)
		for _, path := range []string{
			"/v1/formations?min_seq=" + s, "/v1/formations/f-1?min_seq=" + s + "&wait=1s",
			"/v1/cells?min_seq=" + s + "&formation=f-1", "/v1/summary?min_seq=" + s + "&tenant=acme",
			"/v1/formations?min_seq=0", "/v1/summary?min_seq=" + s + "&wait=0s",
		} {
			status, _, body, took := timedGet(t, a, path)
			var page struct {
				Cursor uint64 `json:"cursor"`
			}
			if err := json.Unmarshal(body, &page); status != 200 || err != nil || page.Cursor < seq {
				t.Errorf("GET %s = %d %s, want 200 at cursor ≥ %d", path, status, body, seq)
			}
			if took > quick {
				t.Errorf("GET %s (already applied and committed) took %v", path, took)
			}
		}
	})

	t.Run("waits for the event", func(t *testing.T) {
		next := seq + 1
		type answer struct {
			status int
			body   []byte
		}
		done := make(chan answer, 1)
		go func() {
			resp, err := http.Get(a.URL() + "/v1/cells/c-late?wait=20s&min_seq=" + strconv.FormatUint(next, 10))
			if err != nil {
				done <- answer{status: -1, body: []byte(err.Error())}
				return
			}
			defer resp.Body.Close()
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			done <- answer{resp.StatusCode, b.Bytes()}
		}()
		testutil.WaitFor(t, 10*time.Second, "the read to wait", func() bool { return readsWaiting(t, a) == 1 })
		start := time.Now()
		if got := post(t, a, testutil.Cell("c-late", "admitted", map[string]any{"formationId": "f-1"})); got != next {
			t.Fatalf("the cell was stored at %d, want %d", got, next)
		}
		var ans answer
		select {
		case ans = <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("the waiting read did not answer within 30s")
		}
		var d api.CellDetail
		if err := json.Unmarshal(ans.body, &d); ans.status != 200 || err != nil || d.Cell.ID != "c-late" || d.Cursor < next {
			t.Fatalf("the waiting read = %d %s, want cell c-late at cursor ≥ %d", ans.status, ans.body, next)
		}
		if took := time.Since(start); took > quick {
			t.Fatalf("the waiting read answered %v after the event was stored, want well under %v", took, slowCheckpoints)
		}
		if n := readsWaiting(t, a); n != 0 {
			t.Fatalf("cellos_http_reads_waiting = %d after the answer, want 0", n)
		}
	})

	t.Run("not caught up after wait", func(t *testing.T) {
		status, header, body, took := timedGet(t, a, "/v1/cells?min_seq=1000000&wait=300ms")
		var e notCaughtUp
		if err := json.Unmarshal(body, &e); err != nil || status != 503 || e.Error.Code != "not_caught_up" || e.Error.Message == "" {
			t.Fatalf("GET /v1/cells?min_seq=1000000&wait=300ms = %d %s, want 503 not_caught_up", status, body)
		}
		if e.Error.Cursor == nil || *e.Error.Cursor != seq+1 {
			t.Fatalf("not_caught_up %s: want the current cursor %d", body, seq+1)
		}
		if header.Get("Retry-After") == "" {
			t.Error("503 not_caught_up without Retry-After")
		}
		if took < 300*time.Millisecond {
			t.Errorf("answered after %v, before wait=300ms had passed", took)
		}
		// Through the client.
		_, err := a.Client().Summary(testutil.Ctx(t, 10*time.Second), "", client.MinSeq(1000000), client.Wait(0))
		var ae *client.APIError
		if !client.IsNotCaughtUp(err) || !errors.As(err, &ae) || ae.Cursor != seq+1 {
			t.Fatalf("client Summary(MinSeq(1000000), Wait(0)) = %v, want not_caught_up at cursor %d", err, seq+1)
		}
	})

	t.Run("bad parameters", func(t *testing.T) {
		for _, path := range []string{
			"/v1/formations?min_seq=abc", "/v1/formations?min_seq=-1", "/v1/formations/f-1?min_seq=1.5",
			"/v1/cells?min_seq=18446744073709551616", "/v1/cells/c-late?min_seq=", "/v1/summary?min_seq=1&min_seq=2",
			"/v1/formations?min_seq=1&wait=abc", "/v1/formations?min_seq=1&wait=31s", "/v1/formations?min_seq=1&wait=-1s",
			"/v1/formations?min_seq=1&wait=5", "/v1/cells?wait=1s", "/v1/formations/f-1?wait=1s",
		} {
			var e apiError
			if status := getJSON(t, a, path, &e); status != 400 || e.Error.Code != "bad_parameter" {
				t.Errorf("GET %s = %d %+v, want 400 bad_parameter", path, status, e)
			}
		}
	})
}

// A tenant principal's reads with min_seq stay confined to its tenant: it
// waits for the same cursor, and another tenant's entity is still not
// found.
func TestReadYourWritesOfATenant(t *testing.T) {
	a := apptest.StartSite(t, app.Config{CheckpointInterval: slowCheckpoints})
	acmeSup, globexSup := testutil.SitePrincipal(t, "acme-sup").Token, testutil.SitePrincipal(t, "globex-sup").Token
	acmeDash := testutil.SitePrincipal(t, "acme-dash").Token
	publish := func(token string, e testutil.Event) uint64 {
		t.Helper()
		status, body := call(t, a, http.MethodPost, "/v1/events", token, e.Payload)
		var p api.Published
		if err := json.Unmarshal(body, &p); err != nil || status != http.StatusCreated {
			t.Fatalf("POST: %d %s", status, body)
		}
		return p.Seq
	}
	publish(globexSup, testutil.Formation("globex-f1", "created", map[string]any{"name": "theirs"}))
	publish(globexSup, testutil.Cell("globex-c1", "admitted", map[string]any{"formationId": "globex-f1"}))
	publish(acmeSup, testutil.Formation("acme-f1", "created", map[string]any{"name": "ours"}))
	seq := publish(acmeSup, testutil.Cell("acme-c1", "admitted", map[string]any{"formationId": "acme-f1"}))
	s := strconv.FormatUint(seq, 10)

	start := time.Now()
	var fl api.FormationList
	getAs(t, a, acmeDash, "/v1/formations?min_seq="+s, &fl)
	if took := time.Since(start); took > quick {
		t.Fatalf("the tenant's min_seq read took %v, want well under %v", took, slowCheckpoints)
	}
	if fl.Cursor < seq || len(fl.Formations) != 1 || fl.Formations[0].ID != "acme-f1" {
		t.Fatalf("acme-dash /v1/formations?min_seq=%d = %+v, want acme-f1 alone at cursor ≥ %d", seq, fl, seq)
	}
	var d api.FormationDetail
	getAs(t, a, acmeDash, "/v1/formations/acme-f1?min_seq="+s, &d)
	if len(d.Cells) != 1 || d.Cells[0].ID != "acme-c1" || d.CellsNext != "" {
		t.Fatalf("acme-dash's formation: cells %+v next %q, want acme-c1 alone", d.Cells, d.CellsNext)
	}
	var cl api.CellList
	getAs(t, a, acmeDash, "/v1/cells?tenant=globex&min_seq="+s, &cl)
	if len(cl.Cells) != 0 {
		t.Fatalf("acme-dash asking for globex's cells = %+v, want none", cl.Cells)
	}
	var sum api.Summary
	getAs(t, a, acmeDash, "/v1/summary?min_seq="+s, &sum)
	if len(sum.Tenants) != 1 || sum.Tenants[0].ID != "acme" || sum.Formations.Total != 1 {
		t.Fatalf("acme-dash's summary = %+v, want acme's alone", sum.Summary)
	}
	for _, path := range []string{"/v1/formations/globex-f1?min_seq=" + s, "/v1/cells/globex-c1?min_seq=" + s} {
		if status, body := call(t, a, http.MethodGet, path, acmeDash, nil); status != 404 {
			t.Errorf("acme-dash GET %s = %d %s, want 404", path, status, body)
		}
	}
	// Waiting and not caught up: the same answer as for anyone.
	status, body := call(t, a, http.MethodGet, "/v1/formations?wait=100ms&min_seq="+strconv.FormatUint(seq+100, 10), acmeDash, nil)
	var e notCaughtUp
	if status != 503 || json.Unmarshal(body, &e) != nil || e.Error.Code != "not_caught_up" || e.Error.Cursor == nil {
		t.Fatalf("acme-dash beyond the stream = %d %s, want 503 not_caught_up with the cursor", status, body)
	}
	assertNoLeak(t, testutil.SitePrincipal(t, "acme-dash"), "not_caught_up", body)
}
