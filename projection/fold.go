package projection

import (
	"bytes"
	"maps"

	"cellos-allinone/event"
)

// State is what the fold reads and changes. Apply loads an entity, changes
// its own copy, and saves the copy; a State derives what
// depends on entities (a formation's cell counts, indexes, aggregates)
// from the difference between what it held and what it gets back. The
// in-memory Projection is one; the bbolt store's write batch is another.
type State interface {
	// Meta is the fold's position and counters; Apply changes them in
	// place.
	Meta() *Meta
	LoadFormation(id string) (Formation, bool)
	SaveFormation(f Formation)
	LoadCell(id string) (Cell, bool)
	SaveCell(c Cell)
}

// Meta is the fold's position: the last sequence applied, the identity of
// the message there, the outcome counters and the gaps.
type Meta struct {
	Cursor   uint64   `json:"cursor"`
	CursorID string   `json:"cursorId"`
	Counters Counters `json:"counters"`
	Gaps     []Gap    `json:"gaps,omitempty"`
}

// Apply folds one decoded message into st (docs/design.md §3). A message
// at or below the cursor changes nothing (Stale).
func Apply(st State, d Decoded) Outcome {
	m := st.Meta()
	if d.Seq <= m.Cursor {
		return Stale
	}
	Skip(st, d.Seq-1)
	m.Cursor, m.CursorID = d.Seq, d.ID
	switch d.Outcome {
	case Applied:
		m.Counters.Applied++
		if d.Kind == event.KindFormation {
			applyFormation(st, d)
		} else {
			applyCell(st, d)
		}
	case Ignored:
		m.Counters.Ignored++
	default:
		m.Counters.Malformed++
	}
	return d.Outcome
}

// Skip moves the cursor to seq without applying anything: the stream no
// longer holds cursor+1..seq (they expired before the fold saw them). The
// range is recorded as a gap, unless nothing was applied yet (a log whose
// head expired is not a gap of a rebuild).
func Skip(st State, seq uint64) {
	m := st.Meta()
	if seq <= m.Cursor {
		return
	}
	if m.Cursor > 0 {
		m.Gaps = append(m.Gaps, Gap{From: m.Cursor + 1, To: seq})
		if len(m.Gaps) > MaxGaps {
			m.Gaps = append(m.Gaps[:0:0], m.Gaps[len(m.Gaps)-MaxGaps:]...)
		}
	}
	m.Cursor, m.CursorID = seq, ""
}

func applyCell(st State, d Decoded) {
	c, found := st.LoadCell(d.EntityID)
	changed := !found
	if !found {
		c = Cell{ID: d.EntityID, State: CellAdmitted, CreatedAt: d.At}
	}
	if d.Phase == "summary" {
		// Rule 5: attach (replace) compliance in any state; no state change.
		if !bytes.Equal(d.Data, c.Compliance) {
			c.Compliance = d.Data
			changed = true
		}
	} else if to, _ := stateOfPhase(d.Phase); changed || stateRank(to) > stateRank(c.State) {
		// Rules 3 and 4: create in the event's state, or move strictly up.
		// The first completed or failed also sets the outcome, which
		// destroyed keeps.
		c.State = to
		switch to {
		case CellCompleted:
			c.ExitCode = d.ExitCode
			c.Outcome = OutcomeCompleted
		case CellFailed:
			c.Reason = d.Reason
			c.Outcome = OutcomeFailed
		}
		changed = true
	}
	changed = fill(&c.FormationID, d.FormationID) || changed
	changed = fill(&c.SpecID, d.SpecID) || changed
	changed = fill(&c.RunID, d.RunID) || changed
	changed = fill(&c.TenantID, d.TenantID) || changed
	if c.Correlation == nil && d.Correlation != nil {
		c.Correlation = d.Correlation
		changed = true
	}
	if !changed {
		return
	}
	c.LastSeq, c.UpdatedAt = d.Seq, d.At
	st.SaveCell(c)
}

func applyFormation(st State, d Decoded) {
	f, found := st.LoadFormation(d.EntityID)
	if found && f.Deleted {
		return
	}
	changed := false
	switch {
	case d.Phase == "deleted":
		if !found {
			f = Formation{ID: d.EntityID, Status: FormationCreated, CreatedAt: d.At}
		}
		f.Deleted = true
		changed = true
	case !found:
		f = Formation{ID: d.EntityID, Status: d.Phase, CreatedAt: d.At}
		changed = true
	default:
		from, to := formationRank[f.Status], formationRank[d.Phase]
		if to > from || (to == 2 && from == 2 && f.Status != d.Phase) {
			f.Status = d.Phase
			changed = true
		}
	}
	changed = fill(&f.Name, d.Name) || changed
	changed = fill(&f.TenantID, d.TenantID) || changed
	if f.Labels == nil && d.Labels != nil {
		f.Labels = maps.Clone(d.Labels)
		changed = true
	}
	if changed {
		f.LastSeq, f.UpdatedAt = d.Seq, d.At
		st.SaveFormation(f)
	}
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
