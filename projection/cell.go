package projection

import (
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
	Span                        // not served
}

// Span is where an entity lies in the log, for the retention rule
// (docs/design.md §3) and snapshot verify; it is not served.
type Span struct {
	// FirstSeq is the sequence of the event that created the entity.
	FirstSeq uint64 `json:"-"`
	// LastEvent is the sequence of the last event that changed the entity
	// or, once it has ended, named it (an event that changes nothing, or
	// one rejected for its tenant; for a formation also a cell event that
	// names it). LastSeq <= LastEvent. An ended entity whose LastEvent is
	// below the stream's first sequence is pruned.
	LastEvent uint64 `json:"-"`
}

// Ended reports whether the cell's life is over: completed, failed or
// destroyed. A destroyed cell is pruned once its last event expired; a
// completed or failed one also needs its formation gone.
func (c *Cell) Ended() bool { return stateRank(c.State) >= 2 }

// countKey is what a cell's place in the per-formation counts depends on.
type countKey struct{ formation, state, outcome string }

func keyOf(c Cell) countKey { return countKey{c.FormationID, c.State, c.Outcome} }
