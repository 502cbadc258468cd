package projection

import (
	"slices"
	"strings"
)

// Summary is the registry in numbers (GET /v1/summary): what a dashboard
// shows without reading every row.
type Summary struct {
	Formations FormationSummary `json:"formations"` // live (not deleted) formations
	Cells      CellSummary      `json:"cells"`
	// Tenants lists every tenant of a live formation or of a cell ("" for
	// the entities without one), ordered by id: all of them, whatever
	// tenant the summary was asked for.
	Tenants []TenantSummary `json:"tenants"`
}

// FormationSummary counts live formations by status; every status is a
// key, 0 when none has it.
type FormationSummary struct {
	Total    int            `json:"total"`
	ByStatus map[string]int `json:"byStatus"`
}

// CellSummary counts cells by state and by outcome (completed, failed,
// none); every state and outcome is a key, 0 when none has it.
type CellSummary struct {
	Total     int            `json:"total"`
	ByState   map[string]int `json:"byState"`
	ByOutcome map[string]int `json:"byOutcome"`
}

// TenantSummary is one tenant's live formations and cells; Failed counts
// its cells whose outcome is failed (also after their teardown).
type TenantSummary struct {
	ID         string `json:"id"`
	Formations int    `json:"formations"`
	Cells      int    `json:"cells"`
	Failed     int    `json:"failed"`
}

// Summary counts the registry. With tenant != "" its Formations and Cells
// count only that tenant's entities (an entity's own tenantId, as the
// tenant filters of Formations and Cells decide); Tenants is always every
// tenant.
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
	for _, o := range []string{OutcomeCompleted, OutcomeFailed, OutcomeUnset} {
		s.Cells.ByOutcome[o] = 0
	}
	tenants := map[string]*TenantSummary{}
	of := func(id string) *TenantSummary {
		t := tenants[id]
		if t == nil {
			t = &TenantSummary{ID: id}
			tenants[id] = t
		}
		return t
	}
	for _, f := range p.formations {
		if f.Deleted {
			continue
		}
		of(f.TenantID).Formations++
		if tenant == "" || f.TenantID == tenant {
			s.Formations.Total++
			s.Formations.ByStatus[f.Status]++
		}
	}
	for _, c := range p.cells {
		t := of(c.TenantID)
		t.Cells++
		if c.Outcome == OutcomeFailed {
			t.Failed++
		}
		if tenant == "" || c.TenantID == tenant {
			s.Cells.Total++
			s.Cells.ByState[c.State]++
			o := c.Outcome
			if o == OutcomeNone {
				o = OutcomeUnset
			}
			s.Cells.ByOutcome[o]++
		}
	}
	for _, t := range tenants {
		s.Tenants = append(s.Tenants, *t)
	}
	slices.SortFunc(s.Tenants, func(a, b TenantSummary) int { return strings.Compare(a.ID, b.ID) })
	return s
}

// Reader answers the read API from one consistent state: the in-memory
// Projection, and the store's View. No method's answer grows with the
// registry: lists are pages, and a formation's cells are listed by Cells
// (CellFilter.Formation), not by Formation.
type Reader interface {
	Cursor() uint64
	Counters() Counters
	Gaps() []Gap
	Pruned() Pruned
	Formations(FormationFilter, Page) ([]Formation, string)
	Formation(id string) (Formation, bool)
	Cells(CellFilter, Page) ([]Cell, string)
	Cell(id string) (Cell, bool)
	Size() (formations, cells int)
	Summary(tenant string) Summary
	Dump() []byte
}

var _ Reader = (*Projection)(nil)

// Zero sets every count of s to 0 and keeps its keys: the summary of a
// selection that holds nothing.
func (s *Summary) Zero() {
	s.Formations.Total, s.Cells.Total = 0, 0
	for _, m := range []map[string]int{s.Formations.ByStatus, s.Cells.ByState, s.Cells.ByOutcome} {
		for k := range m {
			m[k] = 0
		}
	}
}
