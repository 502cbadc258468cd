package projection

import (
	"fmt"
	"strings"
	"testing"
)

// queryFixture: formations f00..f24 (tenant t0 for even, t1 for odd;
// every fifth one running, f03 deleted) and three cells per formation
// in rotating states.
func queryFixture(t *testing.T) *Projection {
	t.Helper()
	var evs [][]byte
	for i := range 25 {
		id, tenant := fmt.Sprintf("f%02d", i), fmt.Sprintf("t%d", i%2)
		evs = append(evs, formEv("created", id, obj{"tenantId": tenant, "name": "n" + id}))
		if i%5 == 0 {
			evs = append(evs, formEv("running", id, nil))
		}
		for j, phase := range []string{"admitted", "started", "destroyed"} {
			evs = append(evs, cellEv(phase, fmt.Sprintf("c%02d-%d", i, j), obj{"formationId": id, "tenantId": tenant}))
		}
	}
	evs = append(evs, formEv("deleted", "f03", nil))
	return fold(t, evs...)
}

func formationIDs(fs []Formation) string {
	ids := make([]string, len(fs))
	for i, f := range fs {
		ids[i] = f.ID
	}
	return strings.Join(ids, ",")
}

func cellIDs(cs []Cell) string {
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.ID
	}
	return strings.Join(ids, ",")
}

func TestFormationsQuery(t *testing.T) {
	p := queryFixture(t)
	cases := []struct {
		name      string
		filter    FormationFilter
		page      Page
		wantIDs   string
		wantNext  string
		wantCount int // checked instead of wantIDs when > 0
	}{
		{"first page", FormationFilter{}, Page{Limit: 3}, "f00,f01,f02", "f02", 0},
		{"skips the tombstone", FormationFilter{}, Page{After: "f02", Limit: 3}, "f04,f05,f06", "f06", 0},
		{"last page has empty next", FormationFilter{}, Page{After: "f20", Limit: 10}, "f21,f22,f23,f24", "", 0},
		{"exactly the rest has empty next", FormationFilter{}, Page{After: "f20", Limit: 4}, "f21,f22,f23,f24", "", 0},
		{"after the end", FormationFilter{}, Page{After: "f99"}, "", "", 0},
		{"after between ids", FormationFilter{}, Page{After: "f10x", Limit: 2}, "f11,f12", "f12", 0},
		{"limit 0 means default", FormationFilter{}, Page{}, "", "", 24},
		{"limit above max is clamped", FormationFilter{}, Page{Limit: MaxLimit + 1}, "", "", 24},
		{"tenant", FormationFilter{Tenant: "t1"}, Page{Limit: 4}, "f01,f05,f07,f09", "f09", 0},
		{"status", FormationFilter{Status: FormationRunning}, Page{}, "f00,f05,f10,f15,f20", "", 0},
		{"tenant and status", FormationFilter{Tenant: "t0", Status: FormationRunning}, Page{}, "f00,f10,f20", "", 0},
		{"tenant and status paged", FormationFilter{Tenant: "t0", Status: FormationRunning}, Page{After: "f00", Limit: 1}, "f10", "f10", 0},
		{"unknown tenant", FormationFilter{Tenant: "nobody"}, Page{}, "", "", 0},
		{"unknown status", FormationFilter{Status: "bogus"}, Page{}, "", "", 0},
		{"prefix", FormationFilter{Prefix: "f1"}, Page{Limit: 3}, "f10,f11,f12", "f12", 0},
		{"prefix paged", FormationFilter{Prefix: "f1"}, Page{After: "f17", Limit: 3}, "f18,f19", "", 0},
		{"prefix is a whole id", FormationFilter{Prefix: "f24"}, Page{}, "f24", "", 0},
		{"prefix skips the tombstone", FormationFilter{Prefix: "f03"}, Page{}, "", "", 0},
		{"prefix and tenant", FormationFilter{Prefix: "f2", Tenant: "t1"}, Page{}, "f21,f23", "", 0},
		{"prefix matching nothing", FormationFilter{Prefix: "g"}, Page{}, "", "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, next := p.Formations(tc.filter, tc.page)
			if tc.wantCount > 0 {
				if len(got) != tc.wantCount {
					t.Errorf("Formations(%+v, %+v) = %d formations, want %d", tc.filter, tc.page, len(got), tc.wantCount)
				}
			} else if ids := formationIDs(got); ids != tc.wantIDs {
				t.Errorf("Formations(%+v, %+v) = %q, want %q", tc.filter, tc.page, ids, tc.wantIDs)
			}
			if next != tc.wantNext {
				t.Errorf("Formations(%+v, %+v) next = %q, want %q", tc.filter, tc.page, next, tc.wantNext)
			}
			for _, f := range got {
				if f.Labels == nil {
					t.Errorf("Formations(%+v)[%q].Labels = nil, want {}", tc.filter, f.ID)
				}
				if f.Cells.Total != 3 {
					t.Errorf("Formations(%+v)[%q].Cells.Total = %d, want 3", tc.filter, f.ID, f.Cells.Total)
				}
			}
		})
	}

	t.Run("walk all pages", func(t *testing.T) {
		var all []string
		pg := Page{Limit: 7}
		for range 10 {
			got, next := p.Formations(FormationFilter{}, pg)
			all = append(all, formationIDs(got))
			if next == "" {
				break
			}
			pg.After = next
		}
		if got, want := strings.Join(all, ","), "f00,f01,f02,f04,f05,f06,f07,f08,f09,f10,f11,f12,f13,f14,f15,f16,f17,f18,f19,f20,f21,f22,f23,f24"; got != want {
			t.Errorf("Formations() over all pages = %q, want %q", got, want)
		}
	})
}

func TestCellsQuery(t *testing.T) {
	p := queryFixture(t)
	cases := []struct {
		name     string
		filter   CellFilter
		page     Page
		wantIDs  string
		wantNext string
	}{
		{"first page", CellFilter{}, Page{Limit: 4}, "c00-0,c00-1,c00-2,c01-0", "c01-0"},
		{"after", CellFilter{}, Page{After: "c01-0", Limit: 2}, "c01-1,c01-2", "c01-2"},
		{"last page", CellFilter{}, Page{After: "c24-0", Limit: 5}, "c24-1,c24-2", ""},
		{"formation", CellFilter{Formation: "f07"}, Page{}, "c07-0,c07-1,c07-2", ""},
		{"deleted formation keeps its cells", CellFilter{Formation: "f03"}, Page{}, "c03-0,c03-1,c03-2", ""},
		{"state", CellFilter{State: CellRunning}, Page{After: "c20", Limit: 3}, "c20-1,c21-1,c22-1", "c22-1"},
		{"tenant and state", CellFilter{Tenant: "t1", State: CellDestroyed}, Page{Limit: 2}, "c01-2,c03-2", "c03-2"},
		{"formation and state", CellFilter{Formation: "f10", State: CellAdmitted}, Page{}, "c10-0", ""},
		{"formation of other tenant", CellFilter{Formation: "f10", Tenant: "t1"}, Page{}, "", ""},
		{"unknown state", CellFilter{State: "bogus"}, Page{}, "", ""},
		{"prefix", CellFilter{Prefix: "c07"}, Page{}, "c07-0,c07-1,c07-2", ""},
		{"prefix paged", CellFilter{Prefix: "c1"}, Page{After: "c12-2", Limit: 2}, "c13-0,c13-1", "c13-1"},
		{"prefix and state", CellFilter{Prefix: "c2", State: CellRunning}, Page{}, "c20-1,c21-1,c22-1,c23-1,c24-1", ""},
		{"prefix of another formation", CellFilter{Prefix: "c07", Formation: "f08"}, Page{}, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, next := p.Cells(tc.filter, tc.page)
			if ids := cellIDs(got); ids != tc.wantIDs {
				t.Errorf("Cells(%+v, %+v) = %q, want %q", tc.filter, tc.page, ids, tc.wantIDs)
			}
			if next != tc.wantNext {
				t.Errorf("Cells(%+v, %+v) next = %q, want %q", tc.filter, tc.page, next, tc.wantNext)
			}
		})
	}
	t.Run("default and max limit", func(t *testing.T) {
		for _, lim := range []int{0, -1, MaxLimit + 5} {
			if got, next := p.Cells(CellFilter{}, Page{Limit: lim}); len(got) != 75 || next != "" {
				t.Errorf("Cells(limit %d) = %d cells, next %q, want 75, %q", lim, len(got), next, "")
			}
		}
	})
	t.Run("unknown ids", func(t *testing.T) {
		if _, ok := p.Cell("nope"); ok {
			t.Errorf("Cell(%q) found, want not found", "nope")
		}
		if _, ok := p.Formation("nope"); ok {
			t.Errorf("Formation(%q) found, want not found", "nope")
		}
	})
	t.Run("size", func(t *testing.T) {
		if f, c := p.Size(); f != 24 || c != 75 {
			t.Errorf("Size() = %d, %d, want 24, 75", f, c)
		}
	})
}

// Over MaxLimit items, the default page is MaxLimit long and next is set.
func TestPageMaxLimit(t *testing.T) {
	evs := make([][]byte, MaxLimit+1)
	for i := range evs {
		evs[i] = cellEv("admitted", fmt.Sprintf("c%05d", i), nil)
	}
	p := fold(t, evs...)
	got, next := p.Cells(CellFilter{}, Page{})
	if len(got) != MaxLimit || next != fmt.Sprintf("c%05d", MaxLimit-1) {
		t.Fatalf("Cells(limit 0) = %d cells, next %q, want %d, %q", len(got), next, MaxLimit, fmt.Sprintf("c%05d", MaxLimit-1))
	}
	got, next = p.Cells(CellFilter{}, Page{After: next})
	if len(got) != 1 || next != "" {
		t.Errorf("Cells(second page) = %d cells, next %q, want 1, %q", len(got), next, "")
	}
}

// outcome= finds cells by outcome, also after their teardown.
func TestCellsByOutcome(t *testing.T) {
	p := fold(t,
		cellEv("failed", "a", obj{"reason": "oom-killed"}), cellEv("destroyed", "a", nil),
		cellEv("failed", "b", nil),
		cellEv("completed", "c", obj{"exitCode": 0}), cellEv("destroyed", "c", nil),
		cellEv("admitted", "d", nil), cellEv("destroyed", "d", nil),
		cellEv("started", "e", nil),
	)
	for _, tc := range []struct {
		filter CellFilter
		want   string
	}{
		{CellFilter{Outcome: OutcomeFailed}, "a,b"},
		{CellFilter{Outcome: OutcomeCompleted}, "c"},
		{CellFilter{Outcome: OutcomeUnset}, "d,e"},
		{CellFilter{Outcome: OutcomeFailed, State: CellDestroyed}, "a"},
		{CellFilter{}, "a,b,c,d,e"},
	} {
		if got, _ := p.Cells(tc.filter, Page{}); cellIDs(got) != tc.want {
			t.Errorf("Cells(%+v) = %q, want %q", tc.filter, cellIDs(got), tc.want)
		}
	}
}
