package projection

import "time"

// Formation statuses (fold rule 6).
const (
	FormationCreated   = "created"
	FormationLaunching = "launching"
	FormationRunning   = "running"
	FormationDegraded  = "degraded"
	FormationCompleted = "completed"
	FormationFailed    = "failed"
	FormationCancelled = "cancelled"
)

// formationRank orders statuses; running and degraded share a rank and may
// alternate, the three terminal statuses share the top rank (first wins).
var formationRank = map[string]int{
	FormationCreated:   0,
	FormationLaunching: 1,
	FormationRunning:   2,
	FormationDegraded:  2,
	FormationCompleted: 3,
	FormationFailed:    3,
	FormationCancelled: 3,
}

// ValidFormationStatus reports whether s is a formation status.
func ValidFormationStatus(s string) bool {
	_, ok := formationRank[s]
	return ok
}

// CellCounts are derived from the cells whose formationId is the
// formation's id (fold rule 7): admitted, running and destroyed count
// states; completed and failed count outcomes, so a failed cell that was
// torn down still counts as failed.
type CellCounts struct {
	Total     int `json:"total"`
	Admitted  int `json:"admitted"`
	Running   int `json:"running"`
	Completed int `json:"completed"`
	Failed    int `json:"failed"`
	Destroyed int `json:"destroyed"`
}

// Add counts n cells (negative to uncount) of a state and an outcome.
func (c *CellCounts) Add(state, outcome string, n int) {
	c.Total += n
	switch state {
	case CellAdmitted:
		c.Admitted += n
	case CellRunning:
		c.Running += n
	case CellDestroyed:
		c.Destroyed += n
	}
	switch outcome {
	case OutcomeCompleted:
		c.Completed += n
	case OutcomeFailed:
		c.Failed += n
	}
}

// Plus adds the counts of o to c.
func (c *CellCounts) Plus(o CellCounts) {
	c.Total += o.Total
	c.Admitted += o.Admitted
	c.Running += o.Running
	c.Completed += o.Completed
	c.Failed += o.Failed
	c.Destroyed += o.Destroyed
}

// Formation is a group of cells (docs/design.md §3, resources).
type Formation struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	TenantID  string            `json:"tenantId"`
	Status    string            `json:"status"`
	Labels    map[string]string `json:"labels"`
	Cells     CellCounts        `json:"cells"`
	CreatedAt time.Time         `json:"createdAt"`
	UpdatedAt time.Time         `json:"updatedAt"`
	LastSeq   uint64            `json:"lastSeq"`
	// Deleted marks a tombstone: hidden from every read, and later events
	// for the id are no-ops.
	Deleted bool `json:"deleted,omitempty"`

	// Not served (the retention rule's, docs/design.md §3): the span of
	// the log the formation depends on, and the part of Cells that counts
	// cells the rule has removed.
	Span
	PrunedCells CellCounts `json:"-"`
}

// Ended reports whether the formation's life is over: a terminal status,
// or deleted. Only an ended formation is ever pruned.
func (f *Formation) Ended() bool { return f.Deleted || formationRank[f.Status] == 3 }
