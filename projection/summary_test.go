package projection

import (
	"encoding/json"
	"fmt"
	"testing"
)

// summaryOf is a compact rendering of a Summary for the table below.
func summaryOf(s Summary) string {
	b, err := json.Marshal(s)
	if err != nil {
		return "!" + err.Error()
	}
	return string(b)
}

// zero fills every status, state and outcome key that a case leaves out.
func wantSummary(f FormationSummary, c CellSummary, tenants ...TenantSummary) Summary {
	for st := range formationRank {
		if _, ok := f.ByStatus[st]; !ok {
			if f.ByStatus == nil {
				f.ByStatus = map[string]int{}
			}
			f.ByStatus[st] = 0
		}
	}
	if c.ByState == nil {
		c.ByState = map[string]int{}
	}
	if c.ByOutcome == nil {
		c.ByOutcome = map[string]int{}
	}
	for _, st := range cellStates {
		if _, ok := c.ByState[st.state]; !ok {
			c.ByState[st.state] = 0
		}
	}
	for _, o := range []string{OutcomeCompleted, OutcomeFailed, OutcomeUnset} {
		if _, ok := c.ByOutcome[o]; !ok {
			c.ByOutcome[o] = 0
		}
	}
	if tenants == nil {
		tenants = []TenantSummary{}
	}
	return Summary{Formations: f, Cells: c, Tenants: tenants}
}

func TestSummary(t *testing.T) {
	// Tenant acme: formation fa (running) with cells a1 (failed, then
	// destroyed), a2 (completed), a3 (admitted); formation fd deleted.
	// Tenant globex: formation fg (created, cancelled later) and cell g1
	// (running, tenant from its correlation). No tenant: formation fn and
	// cells n1 (destroyed without an outcome) and n2 (a compliance summary
	// only: admitted).
	events := [][]byte{
		formEv("created", "fa", obj{"tenantId": "acme"}),
		formEv("running", "fa", nil),
		formEv("created", "fd", obj{"tenantId": "acme"}),
		formEv("deleted", "fd", nil),
		formEv("created", "fg", obj{"tenantId": "globex"}),
		formEv("cancelled", "fg", nil),
		formEv("launching", "fn", nil),
		cellEv("admitted", "a1", obj{"formationId": "fa", "tenantId": "acme"}),
		cellEv("failed", "a1", obj{"reason": "oom"}),
		cellEv("destroyed", "a1", nil),
		cellEv("completed", "a2", obj{"formationId": "fa", "tenantId": "acme", "exitCode": 0}),
		cellEv("admitted", "a3", obj{"formationId": "fa", "tenantId": "acme"}),
		cellEv("started", "g1", obj{"correlation": obj{"tenantId": "globex"}}),
		cellEv("destroyed", "n1", nil),
		cellEv("summary", "n2", obj{"result": "pass"}),
	}
	all := fold(t, events...)
	tenants := []TenantSummary{
		{ID: "", Formations: 1, Cells: 2},
		{ID: "acme", Formations: 1, Cells: 3, Failed: 1},
		{ID: "globex", Formations: 1, Cells: 1},
	}
	cases := []struct {
		name   string
		p      *Projection
		tenant string
		want   Summary
	}{
		{"empty registry", New(), "", wantSummary(FormationSummary{}, CellSummary{})},
		{"empty registry, a tenant", New(), "acme", wantSummary(FormationSummary{}, CellSummary{})},
		{"everything", all, "", wantSummary(
			FormationSummary{Total: 3, ByStatus: map[string]int{"running": 1, "cancelled": 1, "launching": 1}},
			CellSummary{Total: 6,
				ByState:   map[string]int{"admitted": 2, "running": 1, "completed": 1, "destroyed": 2},
				ByOutcome: map[string]int{"completed": 1, "failed": 1, "none": 4}},
			tenants...)},
		{"one tenant; the tenant list stays whole", all, "acme", wantSummary(
			FormationSummary{Total: 1, ByStatus: map[string]int{"running": 1}},
			CellSummary{Total: 3,
				ByState:   map[string]int{"admitted": 1, "completed": 1, "destroyed": 1},
				ByOutcome: map[string]int{"completed": 1, "failed": 1, "none": 1}},
			tenants...)},
		{"a tenant of correlation only", all, "globex", wantSummary(
			FormationSummary{Total: 1, ByStatus: map[string]int{"cancelled": 1}},
			CellSummary{Total: 1, ByState: map[string]int{"running": 1}, ByOutcome: map[string]int{"none": 1}},
			tenants...)},
		{"an unknown tenant counts nothing", all, "nobody", wantSummary(FormationSummary{}, CellSummary{}, tenants...)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got, want := summaryOf(tc.p.Summary(tc.tenant)), summaryOf(tc.want); got != want {
				t.Errorf("Summary(%q) =\n %s\nwant\n %s", tc.tenant, got, want)
			}
		})
	}
}

// The summary agrees with the list queries it stands for.
func TestSummaryMatchesQueries(t *testing.T) {
	p := queryFixture(t)
	for _, tenant := range []string{"", "t0", "t1"} {
		s := p.Summary(tenant)
		fs, _ := p.Formations(FormationFilter{Tenant: tenant}, Page{Limit: MaxLimit})
		cs, _ := p.Cells(CellFilter{Tenant: tenant}, Page{Limit: MaxLimit})
		if s.Formations.Total != len(fs) || s.Cells.Total != len(cs) {
			t.Errorf("Summary(%q) totals %d/%d, queries %d/%d", tenant, s.Formations.Total, s.Cells.Total, len(fs), len(cs))
		}
		for st, n := range s.Formations.ByStatus {
			if got, _ := p.Formations(FormationFilter{Tenant: tenant, Status: st}, Page{Limit: MaxLimit}); len(got) != n {
				t.Errorf("Summary(%q) byStatus[%s] = %d, query finds %d", tenant, st, n, len(got))
			}
		}
		for st, n := range s.Cells.ByState {
			if got, _ := p.Cells(CellFilter{Tenant: tenant, State: st}, Page{Limit: MaxLimit}); len(got) != n {
				t.Errorf("Summary(%q) byState[%s] = %d, query finds %d", tenant, st, n, len(got))
			}
		}
		for o, n := range s.Cells.ByOutcome {
			if got, _ := p.Cells(CellFilter{Tenant: tenant, Outcome: o}, Page{Limit: MaxLimit}); len(got) != n {
				t.Errorf("Summary(%q) byOutcome[%s] = %d, query finds %d", tenant, o, n, len(got))
			}
		}
	}
	if got := fmt.Sprint(p.Summary("").Tenants); got != "[{t0 13 39 0} {t1 11 36 0}]" {
		t.Errorf("tenants = %s", got)
	}
}
