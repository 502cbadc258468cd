package projection

import (
	"maps"
	"slices"
)

// Summary is what the registry holds, counted: the aggregates behind the
// web view's cards and GET /v1/summary.
type Summary struct {
	Formations FormationSummary `json:"formations"` // live (not deleted) formations
	Cells      CellSummary      `json:"cells"`
	Tenants    []TenantSummary  `json:"tenants"` // every tenant seen ("" for none), ordered by id
}

// FormationSummary counts live formations; every status is a key, 0 when
// none has it.
type FormationSummary struct {
	Total    int            `json:"total"`
	ByStatus map[string]int `json:"byStatus"`
}

// CellSummary counts cells by state and by outcome (completed, failed,
// none); every key is present.
type CellSummary struct {
	Total     int            `json:"total"`
	ByState   map[string]int `json:"byState"`
	ByOutcome map[string]int `json:"byOutcome"`
}

// TenantSummary is one tenant's share: its live formations, its cells and
// how many of those failed (by outcome).
type TenantSummary struct {
	ID         string `json:"id"`
	Formations int    `json:"formations"`
	Cells      int    `json:"cells"`
	Failed     int    `json:"failed"`
}

// Summary counts the registry, the tenant's share when tenant is not ""
// (the tenant list always covers every tenant).
func (p *Projection) Summary(tenant string) Summary {
	s := Summary{
		Formations: FormationSummary{ByStatus: map[string]int{}},
		Cells:      CellSummary{ByState: map[string]int{}, ByOutcome: map[string]int{}},
		Tenants:    []TenantSummary{},
	}
	for st := range formationRank {
		s.Formations.ByStatus[st] = 0
	}
	for _, st := range cellStates {
		s.Cells.ByState[st.state] = 0
	}
	for _, oc := range []string{OutcomeCompleted, OutcomeFailed, OutcomeUnset} {
		s.Cells.ByOutcome[oc] = 0
	}
	byTenant := map[string]*TenantSummary{}
	share := func(id string) *TenantSummary {
		t := byTenant[id]
		if t == nil {
			t = &TenantSummary{ID: id}
			byTenant[id] = t
		}
		return t
	}
	for _, f := range p.formations {
		if f.Deleted {
			continue
		}
		share(f.TenantID).Formations++
		if tenant == "" || f.TenantID == tenant {
			s.Formations.Total++
			s.Formations.ByStatus[f.Status]++
		}
	}
	for _, c := range p.cells {
		t := share(c.TenantID)
		t.Cells++
		if c.Outcome == OutcomeFailed {
			t.Failed++
		}
		if tenant == "" || c.TenantID == tenant {
			s.Cells.Total++
			s.Cells.ByState[c.State]++
			oc := c.Outcome
			if oc == OutcomeNone {
				oc = OutcomeUnset
			}
			s.Cells.ByOutcome[oc]++
		}
	}
	for _, id := range slices.Sorted(maps.Keys(byTenant)) {
		s.Tenants = append(s.Tenants, *byTenant[id])
	}
	return s
}

// Reader answers the read API from one consistent state: the in-memory
// Projection, and the store's View.
type Reader interface {
	Cursor() uint64
	Counters() Counters
	Gaps() []Gap
	Formations(FormationFilter, Page) ([]Formation, string)
	Formation(id string) (Formation, []Cell, bool)
	Cells(CellFilter, Page) ([]Cell, string)
	Cell(id string) (Cell, bool)
	Size() (formations, cells int)
	Summary(tenant string) Summary
	Dump() []byte
}

var _ Reader = (*Projection)(nil)
