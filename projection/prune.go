package projection

// The retention rule (docs/design.md §3, "Retention"): the registry holds
// what the retained log can still speak for. An entity whose life is over
// and whose last event (Span.LastEvent) is below the stream's first
// sequence — the floor — leaves the registry:
//
//   - a formation that ended: a terminal status (completed, failed,
//     cancelled) or deleted (a tombstone);
//   - a destroyed cell;
//   - a completed or failed cell whose formation is gone: it has none,
//     its formation was never created, was deleted, or was pruned.
//
// Live entities stay, however old. A served formation keeps counting its
// pruned cells (Formation.PrunedCells), so that "how many cells of this
// formation failed" keeps its answer; a cell pruned when its formation is
// gone leaves the counts of that formation id with it. A pruned
// formation's counts of pruned cells go with it.

// Pruned counts what the retention rule removed, and the floor the state
// was last pruned at. It is part of the projection's state.
type Pruned struct {
	Formations uint64 `json:"formations"`
	Cells      uint64 `json:"cells"`
	// Floor is the highest stream first sequence the state was pruned at
	// (0: never): no entity the rule removes at Floor is held.
	Floor uint64 `json:"floor"`
}

// Prunable reports whether the retention rule removes cell c at floor;
// formationServed says whether its formation is held and not deleted.
func Prunable(c *Cell, formationServed bool, floor uint64) bool {
	if !c.Ended() || c.LastEvent >= floor {
		return false
	}
	return c.State == CellDestroyed || !formationServed
}

// Prune removes what the retention rule removes at floor (or at the floor
// pruned at before, if higher: an entity changed by an event below it
// since). Formations go first, so that a completed cell of a formation
// pruned now goes in the same step. The store prunes the same way in the
// transaction of each commit (store.Batch.SetFloor).
func (p *Projection) Prune(floor uint64) {
	m := &p.meta.Pruned
	floor = max(floor, m.Floor)
	m.Floor = floor
	for id, f := range p.formations {
		if f.Ended() && f.LastEvent < floor {
			delete(p.formations, id)
			delete(p.pruned, id)
			m.Formations++
		}
	}
	for id, c := range p.cells {
		served := p.served(c.FormationID)
		if !Prunable(c, served, floor) {
			continue
		}
		p.recount(id, keyOf(*c), countKey{})
		fid := c.FormationID
		if cnt := p.counts[fid]; cnt != nil && *cnt == (CellCounts{}) {
			delete(p.counts, fid)
		}
		if len(p.members[fid]) == 0 {
			delete(p.members, fid)
		}
		if served {
			g := p.pruned[fid]
			if g == nil {
				g = &CellCounts{}
				p.pruned[fid] = g
			}
			g.Add(c.State, c.Outcome, 1)
		}
		delete(p.cells, id)
		m.Cells++
	}
}

// served reports whether the formation id is held and not deleted.
func (p *Projection) served(id string) bool {
	f := p.formations[id]
	return f != nil && !f.Deleted
}
