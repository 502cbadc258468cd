package projection

import (
	"slices"
	"strings"
)

// MaxLimit is the largest page a list query returns.
const MaxLimit = 1000

// FormationFilter selects formations; empty fields match everything.
type FormationFilter struct {
	Tenant string
	Status string
	Prefix string // id prefix; "" matches every id
}

// CellFilter selects cells; empty fields match everything.
type CellFilter struct {
	Tenant    string
	Formation string
	State     string
	// Outcome: OutcomeCompleted, OutcomeFailed, or OutcomeUnset for cells
	// without one; "" matches every cell.
	Outcome string
	Prefix  string // id prefix; "" matches every id
}

// OutcomeUnset is the Outcome filter value for cells without an outcome
// (the API's outcome=none).
const OutcomeUnset = "none"

// Page asks for up to Limit items with an id greater than After.
type Page struct {
	After string
	Limit int
}

// Formations lists live formations ordered by id. next is the id to pass
// as After for the following page, "" on the last page.
func (p *Projection) Formations(f FormationFilter, pg Page) (out []Formation, next string) {
	ids := make([]string, 0, 64)
	for id, fm := range p.formations {
		if fm.Deleted || id <= pg.After || !strings.HasPrefix(id, f.Prefix) ||
			(f.Tenant != "" && fm.TenantID != f.Tenant) ||
			(f.Status != "" && fm.Status != f.Status) {
			continue
		}
		ids = append(ids, id)
	}
	ids, next = page(ids, pg.Limit)
	out = make([]Formation, 0, len(ids))
	for _, id := range ids {
		out = append(out, p.formationView(p.formations[id]))
	}
	return out, next
}

// Formation returns a live formation; its cells are listed by Cells with
// a CellFilter of its id, one page at a time.
func (p *Projection) Formation(id string) (Formation, bool) {
	fm := p.formations[id]
	if fm == nil || fm.Deleted {
		return Formation{}, false
	}
	return p.formationView(fm), true
}

// Cells lists cells ordered by id. Filtered by formation it looks at that
// formation's cells only.
func (p *Projection) Cells(f CellFilter, pg Page) (out []Cell, next string) {
	ids := make([]string, 0, 64)
	consider := func(id string, c *Cell) {
		if id <= pg.After || !strings.HasPrefix(id, f.Prefix) ||
			(f.Tenant != "" && c.TenantID != f.Tenant) ||
			(f.Formation != "" && c.FormationID != f.Formation) ||
			(f.State != "" && c.State != f.State) ||
			(f.Outcome != "" && c.Outcome != outcomeWanted(f.Outcome)) {
			return
		}
		ids = append(ids, id)
	}
	if f.Formation != "" {
		for id := range p.members[f.Formation] {
			consider(id, p.cells[id])
		}
	} else {
		for id, c := range p.cells {
			consider(id, c)
		}
	}
	ids, next = page(ids, pg.Limit)
	out = make([]Cell, 0, len(ids))
	for _, id := range ids {
		out = append(out, *p.cells[id])
	}
	return out, next
}

// Cell returns one cell.
func (p *Projection) Cell(id string) (Cell, bool) {
	c := p.cells[id]
	if c == nil {
		return Cell{}, false
	}
	return *c, true
}

// Size returns the number of live formations and of cells.
func (p *Projection) Size() (formations, cells int) {
	for _, f := range p.formations {
		if !f.Deleted {
			formations++
		}
	}
	return formations, len(p.cells)
}

func (p *Projection) formationView(f *Formation) Formation {
	v := *f
	if c := p.counts[f.ID]; c != nil {
		v.Cells = *c
	}
	if g := p.pruned[f.ID]; g != nil {
		v.PrunedCells = *g
		v.Cells.Plus(*g)
	}
	if v.Labels == nil {
		v.Labels = map[string]string{}
	}
	return v
}

// page sorts ids and cuts them to limit; next is the last id returned when
// more remain.
func page(ids []string, limit int) ([]string, string) {
	if limit <= 0 || limit > MaxLimit {
		limit = MaxLimit
	}
	slices.Sort(ids)
	if len(ids) <= limit {
		return ids, ""
	}
	ids = ids[:limit]
	return ids, ids[limit-1]
}

// outcomeWanted maps an Outcome filter value to the cell field it matches.
func outcomeWanted(filter string) string {
	if filter == OutcomeUnset {
		return OutcomeNone
	}
	return filter
}
