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

// cellRank maps an event phase of cell.lifecycle.v1 to the state it moves
// a cell to and that state's rank.
var cellRank = map[string]struct {
	state string
	rank  int
}{
	"admitted":  {CellAdmitted, 0},
	"started":   {CellRunning, 1},
	"completed": {CellCompleted, 2},
	"failed":    {CellFailed, 2},
	"destroyed": {CellDestroyed, 3},
}

func stateRank(state string) int {
	switch state {
	case CellAdmitted:
		return 0
	case CellRunning:
		return 1
	case CellCompleted, CellFailed:
		return 2
	case CellDestroyed:
		return 3
	}
	return -1
}

// ValidCellState reports whether s is a cell state.
func ValidCellState(s string) bool { return stateRank(s) >= 0 }

// Cell is one execution cell (DESIGN.md §3 resource shape).
type Cell struct {
	ID          string          `json:"id"`
	FormationID string          `json:"formationId"`
	TenantID    string          `json:"tenantId"`
	SpecID      string          `json:"specId"`
	RunID       string          `json:"runId"`
	State       string          `json:"state"`
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
	oldState, oldFormation := "", ""
	if c == nil {
		c = &Cell{ID: id, State: CellAdmitted, CreatedAt: ev.at}
		p.cells[id] = c
		changed = true
	} else {
		oldState, oldFormation = c.State, c.FormationID
	}

	if ev.phase == "summary" {
		// Rule 5: attach (replace) compliance in any state; no state change.
		if raw := compactJSON(rawData(ev.data)); !bytes.Equal(raw, c.Compliance) {
			c.Compliance = raw
			changed = true
		}
	} else if to := cellRank[ev.phase]; changed || to.rank > stateRank(c.State) {
		// Rules 3 and 4: create in the event's state, or move strictly up.
		c.State = to.state
		switch to.state {
		case CellCompleted:
			c.ExitCode = ev.data.int64("exitCode")
		case CellFailed:
			c.Reason = ev.data.str("reason")
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
	if oldState != c.State || oldFormation != c.FormationID {
		p.recount(c.ID, oldFormation, oldState, c.FormationID, c.State)
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

// recount moves a cell between the derived per-formation counts (rule 7).
func (p *Projection) recount(cellID, oldFormation, oldState, newFormation, newState string) {
	if oldFormation != "" && oldState != "" {
		p.countsFor(oldFormation).add(oldState, -1)
		if oldFormation != newFormation {
			delete(p.members[oldFormation], cellID)
		}
	}
	if newFormation != "" {
		p.countsFor(newFormation).add(newState, 1)
		m := p.members[newFormation]
		if m == nil {
			m = map[string]struct{}{}
			p.members[newFormation] = m
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
