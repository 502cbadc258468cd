package web_test

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"cellos-allinone/projection"
	"cellos-allinone/testutil"
)

// foldCheckJS runs the page's fold over one case (see its comment).
//
//go:embed testdata/foldcheck.js
var foldCheckJS string

// foldState is the server's state after some prefix of a case's log: what
// its reads would answer at that cursor.
type foldState struct {
	Cursor     uint64                     `json:"cursor"`
	Formations map[string]json.RawMessage `json:"formations"`
	Cells      map[string]json.RawMessage `json:"cells"`
	Summary    projection.Summary         `json:"summary"`
}

// foldMsg is one message as /ws/events frames it, with the time it was
// stored (frames leave it out; the page's fold takes it as the fallback
// time the server's takes).
type foldMsg struct {
	Seq     uint64          `json:"seq"`
	Subject string          `json:"subject"`
	Event   json.RawMessage `json:"event"`
	Time    string          `json:"time"`
}

// foldStep is one step of what the views do between two events (see
// foldcheck.js).
type foldStep struct {
	After   int         `json:"after"`
	Hold    *foldHold   `json:"hold,omitempty"`
	Release string      `json:"release,omitempty"`
	Summary *int        `json:"summary,omitempty"`
	Expect  *foldExpect `json:"expect,omitempty"`
}

// foldExpect is what a scenario wants of the page at one point: rows it
// decided (folds into), rows it marked unknown, whether the summary is
// dirty.
type foldExpect struct {
	Decided []string `json:"decided,omitempty"` // "kind:id"
	Unknown []string `json:"unknown,omitempty"`
	Dirty   *bool    `json:"dirty,omitempty"`
}

type foldHold struct {
	Owner string   `json:"owner"`
	Kind  string   `json:"kind"`
	IDs   []string `json:"ids"`
	Read  int      `json:"read"`
}

type foldCase struct {
	Name   string      `json:"name"`
	Tenant string      `json:"tenant"`
	Msgs   []foldMsg   `json:"msgs"`
	States []foldState `json:"states"`
	Start  int         `json:"start"`
	Plan   []foldStep  `json:"plan"`
}

// fold folds log with the server's projection, keeping its state after
// every message.
func (c *foldCase) fold(t *testing.T, log []testutil.LogMessage) {
	t.Helper()
	p := projection.New()
	formationIDs := map[string]bool{}
	state := func() foldState {
		s := foldState{Cursor: p.Cursor(), Formations: map[string]json.RawMessage{}, Cells: map[string]json.RawMessage{}, Summary: p.Summary(c.Tenant)}
		live, _ := p.Formations(projection.FormationFilter{}, projection.Page{})
		for _, f := range live {
			s.Formations[f.ID] = mustJSON(t, f)
		}
		for id := range formationIDs {
			if f, ok := p.LoadFormation(id); ok && f.Deleted {
				s.Formations[id] = mustJSON(t, map[string]any{"id": id, "tenantId": f.TenantID, "deleted": true})
			}
		}
		cells, _ := p.Cells(projection.CellFilter{}, projection.Page{})
		for _, cl := range cells {
			s.Cells[cl.ID] = mustJSON(t, cl)
		}
		return s
	}
	c.States = append(c.States, state())
	for _, m := range log {
		p.Apply(projection.Message{Seq: m.Seq, Subject: m.Subject, Time: m.Time, Payload: m.Payload})
		var probe struct {
			Data struct {
				FormationID any `json:"formationId"`
			} `json:"data"`
		}
		if json.Unmarshal(m.Payload, &probe) == nil {
			if id, ok := probe.Data.FormationID.(string); ok {
				formationIDs[id] = true
			}
		}
		// The frame's event: the payload when it is a JSON object, else a
		// string of it (web/events.go).
		ev := json.RawMessage(m.Payload)
		var obj map[string]json.RawMessage
		if json.Unmarshal(m.Payload, &obj) != nil {
			ev = mustJSON(t, string(m.Payload))
		}
		tm, _ := m.Time.UTC().MarshalJSON()
		var ts string
		_ = json.Unmarshal(tm, &ts)
		c.Msgs = append(c.Msgs, foldMsg{Seq: m.Seq, Subject: m.Subject, Event: ev, Time: ts})
		c.States = append(c.States, state())
	}
}

// newFoldCase draws a random log of fold v3 (testutil.RandomLog: both
// subject forms, cross-tenant events, inherited tenants, tombstones), folds
// it with the server's projection after every message, and draws what the
// views do meanwhile: rows read at the start, behind the page's cursor and
// ahead of it, released, the summary read again.
func newFoldCase(t *testing.T, seed uint64, n int) foldCase {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 7))
	log := testutil.RandomLog(r, n)
	c := foldCase{Name: fmt.Sprintf("seed %d", seed), Tenant: []string{"", "t0", "t1"}[seed%3]}
	c.fold(t, log)
	// The page opens somewhere in the first third of the log.
	c.Start = r.IntN(len(log)/3 + 1)
	// The ids a list reads: two in three of them, or in one case of three
	// all of them, so that most events are decided and the summary moves
	// by their effects.
	all := seed%3 == 1
	subset := func(prefix string, n int) []string {
		ids := []string{}
		for i := range n {
			if all || r.IntN(3) > 0 {
				ids = append(ids, fmt.Sprintf("%s%d", prefix, i))
			}
		}
		return ids
	}
	read := func(after int) int {
		// Behind the page (the server's fold lags its stream), at it, or
		// ahead of it (the read landed before the socket's frames).
		return max(c.Start, min(len(log), after+r.IntN(13)-8))
	}
	c.Plan = append(c.Plan,
		foldStep{After: c.Start, Hold: &foldHold{Owner: "formations", Kind: "formation", IDs: subset("f", 4), Read: c.Start}},
		foldStep{After: c.Start, Hold: &foldHold{Owner: "cells", Kind: "cell", IDs: subset("c", 8), Read: c.Start}})
	for after := c.Start + 1; after <= len(log); after++ {
		switch k := r.IntN(40); {
		case k < 2:
			c.Plan = append(c.Plan, foldStep{After: after, Hold: &foldHold{Owner: "formations", Kind: "formation", IDs: subset("f", 4), Read: read(after)}})
		case k < 4:
			c.Plan = append(c.Plan, foldStep{After: after, Hold: &foldHold{Owner: "cells", Kind: "cell", IDs: subset("c", 8), Read: read(after)}})
		case k < 5:
			// A detail page: one formation or one cell.
			if r.IntN(2) == 0 {
				c.Plan = append(c.Plan, foldStep{After: after, Hold: &foldHold{Owner: "page", Kind: "formation", IDs: []string{fmt.Sprintf("f%d", r.IntN(4))}, Read: read(after)}})
			} else {
				c.Plan = append(c.Plan, foldStep{After: after, Hold: &foldHold{Owner: "page", Kind: "cell", IDs: []string{fmt.Sprintf("c%d", r.IntN(8))}, Read: read(after)}})
			}
		case k < 6:
			c.Plan = append(c.Plan, foldStep{After: after, Release: []string{"formations", "cells", "page"}[r.IntN(3)]})
		case k < 16:
			at := read(after)
			c.Plan = append(c.Plan, foldStep{After: after, Summary: &at})
		}
	}
	return c
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBrowserFoldAgreesWithServer: the page's fold (web/ui/store.js), run
// in Chromium, against the server's (projection) over random logs of fold
// v3 — tenant-form subjects, events of one tenant against another's
// entities, cells that inherit their formation's tenant, tombstones —
// while the views read rows behind and ahead of the page's cursor, release
// them and read the summary again. After every event, every row the page
// folds into equals the server's at the cursor it reflects, field by
// field, and the summary does unless the page marked it dirty; a row the
// page cannot decide an event for is marked unknown by that event, which
// names it (its query reads it again), never folded by a guess.
// CELLOS_FOLD_CASES=<dir> also writes the cases there (to run
// testdata/foldcheck.js outside the browser).
func TestBrowserFoldAgreesWithServer(t *testing.T) {
	ctx := newBrowser(t, 800, 600)
	a := startProgram(t, t.TempDir(), "")
	pageDo(t, ctx, chromedp.Navigate(a.URL()+"/"))
	pageWait(t, ctx, "page loaded", `!!window.__cellos`, 5*time.Second)
	const storeJS = `document.querySelector('script[type=module]').src.replace(/app\.js$/, 'store.js')`
	type result struct {
		Errors []string
		Stats  string
	}
	seeds := uint64(24)
	if testing.Short() {
		seeds = 6
	}
	cases := foldScenarios(t)
	for seed := range seeds {
		cases = append(cases, newFoldCase(t, seed, 240))
	}
	for i, c := range cases {
		js := mustJSON(t, c)
		if dir := os.Getenv("CELLOS_FOLD_CASES"); dir != "" {
			if err := os.WriteFile(fmt.Sprintf("%s/case-%02d.json", dir, i), js, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		res, err := chromedp.Run(ctx, chromedp.Evaluate[result](fmt.Sprintf(`import(%s).then((mod) => (%s)(mod, %s))`, storeJS, foldCheckJS, js), chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		t.Logf("%s (summary of tenant %q, page opens after message %d): %s", c.Name, c.Tenant, c.Start, res.Stats)
		for _, e := range res.Errors {
			t.Errorf("%s (summary of tenant %q): %s", c.Name, c.Tenant, e)
		}
	}
}

// foldScenario builds a foldCase by hand: a log of test events (stored one
// second apart) and what the views do between them.
type foldScenario struct {
	c   foldCase
	log []testutil.LogMessage
}

// add appends events to the log and returns how many it holds.
func (s *foldScenario) add(evs ...testutil.Event) int {
	for _, e := range evs {
		seq := uint64(len(s.log) + 1)
		s.log = append(s.log, testutil.LogMessage{Seq: seq, Subject: e.Subject, Time: time.Date(2026, 2, 1, 0, 0, int(seq), 0, time.UTC), Payload: e.Payload})
	}
	return len(s.log)
}

func (s *foldScenario) hold(after int, owner, kind string, read int, ids ...string) {
	s.c.Plan = append(s.c.Plan, foldStep{After: after, Hold: &foldHold{Owner: owner, Kind: kind, IDs: ids, Read: read}})
}

func (s *foldScenario) summary(after, read int) {
	s.c.Plan = append(s.c.Plan, foldStep{After: after, Summary: &read})
}

func (s *foldScenario) expect(after int, decided, unknown []string, dirty bool) {
	s.c.Plan = append(s.c.Plan, foldStep{After: after, Expect: &foldExpect{Decided: decided, Unknown: unknown, Dirty: &dirty}})
}

// foldScenarios are the decisions of fold v3 the page makes or leaves to a
// read, one by one, each with the summary of every tenant and of acme.
func foldScenarios(t *testing.T) []foldCase {
	t.Helper()
	f, cell, in := testutil.Formation, testutil.Cell, testutil.InTenant
	type data = map[string]any
	var out []foldCase
	build := func(name string, fn func(s *foldScenario)) {
		for _, tenant := range []string{"", "acme"} {
			s := &foldScenario{c: foldCase{Name: name, Tenant: tenant}}
			fn(s)
			s.c.fold(t, s.log)
			out = append(out, s.c)
		}
	}
	build("a held formation gets its first tenant; one of its cells is held, one has a tenant of its own", func(s *foldScenario) {
		s.add(f("f", "created", data{"name": "F"}),
			cell("c1", "admitted", data{"formationId": "f"}),
			cell("c2", "admitted", data{"formationId": "f"}))
		s.c.Start = s.add(cell("c3", "admitted", data{"formationId": "f", "tenantId": "globex"}))
		s.hold(s.c.Start, "formations", "formation", s.c.Start, "f")
		s.hold(s.c.Start, "cells", "cell", s.c.Start, "c1", "c3")
		// c1 inherits acme (its lastSeq stays), c3 keeps globex, and c2,
		// not held, moves the per-tenant counts: the summary is dirty.
		n := s.add(in("acme", f("f", "running", nil)))
		s.expect(n, []string{"formation:f", "cell:c1", "cell:c3"}, nil, true)
		// The cells read again, from before that event (the server's fold
		// lags the page): what was decided when it arrived holds for them.
		s.hold(n, "cells", "cell", n-1, "c1", "c2", "c3")
		s.expect(n, []string{"cell:c1", "cell:c2", "cell:c3"}, nil, true)
		// Rule c: c3 (globex) names f (acme). Then f moves on.
		n = s.add(in("globex", cell("c3", "started", data{"formationId": "f"})),
			in("acme", cell("c1", "started", data{"formationId": "f"})),
			in("acme", f("f", "degraded", nil)))
		// Left, and read again from before rule c by another view: f's
		// row is past it now, and what the page knew of f then decides.
		s.c.Plan = append(s.c.Plan, foldStep{After: n, Release: "cells"})
		s.hold(n, "page", "cell", n-3, "c3")
		s.summary(n, n)
		s.expect(n, []string{"formation:f", "cell:c3"}, nil, false)
		s.hold(n, "cells", "cell", n, "c1", "c2", "c3")
		// Rule b, a formation and a cell of acme's; then acme's own event
		// in the untenanted form.
		n = s.add(in("globex", f("f", "degraded", nil)),
			in("globex", cell("c1", "failed", data{"reason": "not yours"})),
			cell("c1", "completed", data{"exitCode": 0, "tenantId": "acme"}))
		s.expect(n, []string{"formation:f", "cell:c1", "cell:c3"}, nil, false)
	})
	build("a formation the page does not hold gets its first tenant", func(s *foldScenario) {
		s.add(f("f", "created", nil), cell("c1", "admitted", data{"formationId": "f"}))
		s.c.Start = s.add(cell("c4", "admitted", data{"formationId": "g"}))
		s.hold(s.c.Start, "cells", "cell", s.c.Start, "c1", "c4")
		n := s.add(in("acme", f("f", "running", nil)))
		s.expect(n, []string{"cell:c4"}, []string{"cell:c1"}, true)
		// The read the page then makes.
		s.hold(n, "cells", "cell", n, "c1", "c4")
		s.expect(n, []string{"cell:c1", "cell:c4"}, nil, true)
		// A formation created with a tenant may hand it to cells it had.
		n = s.add(in("acme", f("g", "created", nil)))
		s.expect(n, []string{"cell:c1"}, []string{"cell:c4"}, true)
	})
	build("a deleted formation of acme gets globex's events", func(s *foldScenario) {
		s.add(in("acme", f("f", "created", data{"name": "F"})))
		s.c.Start = s.add(in("acme", cell("c1", "admitted", data{"formationId": "f"})))
		s.hold(s.c.Start, "formations", "formation", s.c.Start, "f")
		s.hold(s.c.Start, "cells", "cell", s.c.Start, "c1")
		n := s.add(in("acme", f("f", "deleted", nil)),
			in("globex", f("f", "running", nil)),
			in("globex", cell("c1", "started", data{"formationId": "f"})),
			f("f", "completed", data{"tenantId": "globex"}))
		s.expect(n, []string{"formation:f", "cell:c1"}, nil, false)
		// A cell the page does not hold, rejected on the server (rule c):
		// its effect is unknown.
		n = s.add(in("globex", cell("c5", "admitted", data{"formationId": "f"})))
		s.summary(n, n)
		n = s.add(cell("c1", "completed", data{"exitCode": 0}))
		s.expect(n, []string{"formation:f", "cell:c1"}, nil, false)
	})
	build("a cell joins a held formation and takes its tenant", func(s *foldScenario) {
		s.add(in("acme", f("f", "created", nil)))
		s.c.Start = s.add(cell("c1", "admitted", nil))
		s.hold(s.c.Start, "formations", "formation", s.c.Start, "f")
		s.hold(s.c.Start, "cells", "cell", s.c.Start, "c1")
		s.summary(s.c.Start, s.c.Start)
		n := s.add(cell("c1", "started", data{"formationId": "f"}))
		s.expect(n, []string{"formation:f", "cell:c1"}, nil, false)
		n = s.add(in("globex", cell("c1", "completed", data{"exitCode": 1})))
		s.expect(n, []string{"formation:f", "cell:c1"}, nil, false)
	})
	build("a cell without a tenant names its formation: the formation has none", func(s *foldScenario) {
		s.add(f("f", "created", nil))
		s.c.Start = s.add(cell("c1", "admitted", data{"formationId": "f"}))
		s.hold(s.c.Start, "cells", "cell", s.c.Start, "c1")
		s.summary(s.c.Start, s.c.Start)
		n := s.add(in("acme", cell("c1", "started", data{"formationId": "f"})))
		s.expect(n, []string{"cell:c1"}, nil, false)
	})
	build("a formation read ahead of the page", func(s *foldScenario) {
		s.add(f("f", "created", nil), cell("c1", "admitted", data{"tenantId": "globex"}))
		s.c.Start = s.add(cell("c2", "admitted", nil))
		s.hold(s.c.Start, "cells", "cell", s.c.Start, "c1", "c2")
		// The formation, read after acme's event (5) reached the server's
		// fold but not yet the page.
		s.hold(s.c.Start, "formations", "formation", 5, "f")
		n := s.add(in("globex", cell("c1", "started", data{"formationId": "f"})))
		// f's tenant at 4 was none or acme: globex's claim may be rejected.
		s.expect(n, []string{"cell:c2"}, []string{"cell:c1"}, true)
		s.add(in("acme", f("f", "running", nil)))
		n = s.add(cell("c2", "started", data{"formationId": "f"}))
		s.expect(n, []string{"formation:f", "cell:c2"}, []string{"cell:c1"}, true)
	})
	return out
}
