package projection

import (
	"bytes"
	"encoding/json"
	"time"
)

// Cell states, in rank order (fold rule 3).
const (
	CellAdmitted  = "admitted"
	CellRunning   = "running"
	CellCompleted = "completed"
	CellFailed    = "failed"
	CellDestroyed = "destroyed"
)

// Cell outcomes (fold v2, rule 3): set by the first completed or failed,
// never changed again, kept through destroyed.
const (
	OutcomeNone      = ""
	OutcomeCompleted = "completed"
	OutcomeFailed    = "failed"
)

// cellStates is the one table of cell states: the lifecycle phase that
// moves a cell there and the state's rank. An event moves a cell only to a
// strictly higher rank.
var cellStates = []struct {
	state, phase string
	rank         int
}{
	{CellAdmitted, "admitted", 0},
	{CellRunning, "started", 1},
	{CellCompleted, "completed", 2},
	{CellFailed, "failed", 2},
	{CellDestroyed, "destroyed", 3},
}

// stateOfPhase returns the state a cell.lifecycle.v1 phase moves a cell to.
func stateOfPhase(phase string) (state string, ok bool) {
	for _, s := range cellStates {
		if s.phase == phase {
			return s.state, true
		}
	}
	return "", false
}

func stateRank(state string) int {
	for _, s := range cellStates {
		if s.state == state {
			return s.rank
		}
	}
	return -1
}

// ValidCellState reports whether s is a cell state.
func ValidCellState(s string) bool { return stateRank(s) >= 0 }

// ValidOutcome reports whether s is a cell outcome, "" included.
func ValidOutcome(s string) bool {
	return s == OutcomeNone || s == OutcomeCompleted || s == OutcomeFailed
}

// Cell is one execution cell (docs/design.md §3, resources).
type Cell struct {
	ID          string          `json:"id"`
	FormationID string          `json:"formationId"`
	TenantID    string          `json:"tenantId"`
	SpecID      string          `json:"specId"`
	RunID       string          `json:"runId"`
	State       string          `json:"state"`
	Outcome     string          `json:"outcome"`
	ExitCode    *int64          `json:"exitCode"`
	Reason      string          `json:"reason"`
	Correlation json.RawMessage `json:"correlation,omitempty"`
	Compliance  json.RawMessage `json:"compliance,omitempty"`
	CreatedAt   time.Time       `json:"createdAt"`
	UpdatedAt   time.Time       `json:"updatedAt"`
	LastSeq     uint64          `json:"lastSeq"`
}

func (p *Projection) applyCell(id string, ev change) {
	c := p.cells[id]
	changed := false
	var old countKey
	if c == nil {
		c = &Cell{ID: id, State: CellAdmitted, CreatedAt: ev.at}
		p.cells[id] = c
		changed = true
	} else {
		old = keyOf(c)
	}

	if ev.phase == "summary" {
		// Rule 5: attach (replace) compliance in any state; no state change.
		if raw := compactJSON(rawData(ev.data)); !bytes.Equal(raw, c.Compliance) {
			c.Compliance = raw
			changed = true
		}
	} else if to, _ := stateOfPhase(ev.phase); changed || stateRank(to) > stateRank(c.State) {
		// Rules 3 and 4: create in the event's state, or move strictly up.
		// The first completed or failed also sets the outcome, which
		// destroyed keeps.
		c.State = to
		switch to {
		case CellCompleted:
			c.ExitCode = ev.data.int64("exitCode")
			c.Outcome = OutcomeCompleted
		case CellFailed:
			c.Reason = ev.data.str("reason")
			c.Outcome = OutcomeFailed
		}
		changed = true
	}

	changed = fill(&c.FormationID, ev.data.str("formationId")) || changed
	changed = fill(&c.SpecID, ev.data.str("specId")) || changed
	changed = fill(&c.RunID, ev.data.str("runId")) || changed
	changed = fill(&c.TenantID, ev.data.tenant()) || changed
	if c.Correlation == nil {
		if corr := ev.data.object("correlation"); corr != nil {
			c.Correlation = corr
			changed = true
		}
	}
	if !changed {
		return
	}
	c.LastSeq = ev.seq
	c.UpdatedAt = ev.at
	p.dirtyCells[id] = struct{}{}
	if now := keyOf(c); now != old {
		p.recount(c.ID, old, now)
	}
}

// rawData re-encodes the data object of a summary event.
func rawData(d eventData) json.RawMessage {
	if d == nil {
		return json.RawMessage("{}")
	}
	b, err := json.Marshal(map[string]json.RawMessage(d))
	if err != nil {
		return json.RawMessage("{}")
	}
	return b
}

// fill sets *dst to v when *dst is empty and v is not: rule 4's "set by the
// first event that carries them and never changed afterwards".
func fill(dst *string, v string) bool {
	if *dst != "" || v == "" {
		return false
	}
	*dst = v
	return true
}

// countKey is what a cell's place in the per-formation counts depends on.
type countKey struct{ formation, state, outcome string }

func keyOf(c *Cell) countKey { return countKey{c.FormationID, c.State, c.Outcome} }

// recount moves a cell between the derived per-formation counts (rule 7);
// the zero key is "not counted".
func (p *Projection) recount(cellID string, old, now countKey) {
	if old.formation != "" && old.state != "" {
		p.countsFor(old.formation).add(old.state, old.outcome, -1)
		if old.formation != now.formation {
			delete(p.members[old.formation], cellID)
		}
	}
	if now.formation != "" {
		p.countsFor(now.formation).add(now.state, now.outcome, 1)
		m := p.members[now.formation]
		if m == nil {
			m = map[string]struct{}{}
			p.members[now.formation] = m
		}
		m[cellID] = struct{}{}
	}
}

func (p *Projection) countsFor(formationID string) *CellCounts {
	c := p.counts[formationID]
	if c == nil {
		c = &CellCounts{}
		p.counts[formationID] = c
	}
	return c
}
