package projection

import (
	"bytes"
	"cmp"
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
	// FormationCells lists the ids of the cells whose formationId is id,
	// in any order. The fold asks once per formation, when it first gets
	// a tenant (its cells inherit it, rule 4), so an answer may cost an
	// index range; it must include the cells saved since the State last
	// wrote anything down.
	FormationCells(id string) []string
}

// Meta is the fold's position: the last sequence applied, the identity of
// the message there, the outcome counters, the gaps, and what the
// retention rule removed.
type Meta struct {
	Cursor   uint64   `json:"cursor"`
	CursorID string   `json:"cursorId"`
	Counters Counters `json:"counters"`
	Gaps     []Gap    `json:"gaps,omitempty"`
	Pruned   Pruned   `json:"pruned"`
}

// Apply folds one decoded message into st (docs/design.md §3). A message
// at or below the cursor changes nothing (Stale). A rejected one names the
// rule that rejected it.
func Apply(st State, d Decoded) (Outcome, Rejection) {
	m := st.Meta()
	if d.Seq <= m.Cursor {
		return Stale, ""
	}
	Skip(st, d.Seq-1)
	m.Cursor, m.CursorID = d.Seq, d.ID
	out, why := d.Outcome, d.Rejection
	var tenant string // the event's, declared or its entity's
	if out == Applied {
		if d.Kind == event.KindFormation {
			tenant, why = applyFormation(st, d)
		} else {
			tenant, why = applyCell(st, d)
		}
		if why != "" {
			out = Rejected
		}
	}
	switch out {
	case Applied:
		m.Counters.Applied++
	case Rejected:
		m.Counters.Rejected++
	case Ignored:
		m.Counters.Ignored++
	default:
		m.Counters.Malformed++
	}
	if tenant != "" && !d.TenantForm {
		m.Counters.countUntenanted(tenant)
	}
	return out, why
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

// applyCell folds a cell event; it returns the event's tenant (declared,
// else the cell's) and, for a rejected event, the rule.
func applyCell(st State, d Decoded) (string, Rejection) {
	c, found := st.LoadCell(d.EntityID)
	// Only an event that names a formation loads it: the cell gets its
	// formation (and may inherit its tenant) only from such an event. An
	// ended formation counts it as one of its events, whatever becomes of
	// the event (Span).
	var f Formation
	var hasF bool
	if d.FormationID != "" {
		if f, hasF = st.LoadFormation(d.FormationID); hasF && f.Ended() {
			f.LastEvent = d.Seq
			st.SaveFormation(f)
		}
	}
	if found && c.TenantID != "" && other(d.TenantID, c.TenantID) {
		seenCell(st, c, d.Seq)
		return d.TenantID, RejectedEntityTenant
	}
	if claim := cmp.Or(d.TenantID, c.TenantID); hasF && f.TenantID != "" && other(claim, f.TenantID) {
		if found {
			seenCell(st, c, d.Seq)
		}
		return claim, RejectedFormationTenant
	}
	changed := !found
	if !found {
		c = Cell{ID: d.EntityID, State: CellAdmitted, CreatedAt: d.At, Span: Span{FirstSeq: d.Seq}}
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
	joined := fill(&c.FormationID, d.FormationID)
	changed = joined || changed
	changed = fill(&c.SpecID, d.SpecID) || changed
	changed = fill(&c.RunID, d.RunID) || changed
	changed = fill(&c.TenantID, d.TenantID) || changed
	if joined && hasF {
		// Rule 4: a cell without a tenant of its own takes its
		// formation's as it joins it (the event changed the cell anyway).
		fill(&c.TenantID, f.TenantID)
	}
	if c.Correlation == nil && d.Correlation != nil {
		c.Correlation = d.Correlation
		changed = true
	}
	if !changed {
		seenCell(st, c, d.Seq)
		return c.TenantID, ""
	}
	c.LastSeq, c.LastEvent, c.UpdatedAt = d.Seq, d.Seq, d.At
	st.SaveCell(c)
	return c.TenantID, ""
}

// seenCell records an event that names an ended cell without changing it
// (Span.LastEvent); a live cell's last event is its last change.
func seenCell(st State, c Cell, seq uint64) {
	if c.Ended() {
		c.LastEvent = seq
		st.SaveCell(c)
	}
}

// seenFormation is seenCell for a formation.
func seenFormation(st State, f Formation, seq uint64) {
	if f.Ended() {
		f.LastEvent = seq
		st.SaveFormation(f)
	}
}

// applyFormation folds a formation event; it returns the event's tenant
// (declared, else the formation's) and, for a rejected event, the rule.
func applyFormation(st State, d Decoded) (string, Rejection) {
	f, found := st.LoadFormation(d.EntityID)
	// Before the tombstone's no-op: a deleted formation keeps its tenant,
	// and an event of another tenant is rejected, not ignored.
	if found && f.TenantID != "" && other(d.TenantID, f.TenantID) {
		seenFormation(st, f, d.Seq)
		return d.TenantID, RejectedEntityTenant
	}
	if found && f.Deleted {
		seenFormation(st, f, d.Seq)
		return cmp.Or(d.TenantID, f.TenantID), ""
	}
	changed := false
	switch {
	case d.Phase == "deleted":
		if !found {
			f = Formation{ID: d.EntityID, Status: FormationCreated, CreatedAt: d.At, Span: Span{FirstSeq: d.Seq}}
		}
		f.Deleted = true
		changed = true
	case !found:
		f = Formation{ID: d.EntityID, Status: d.Phase, CreatedAt: d.At, Span: Span{FirstSeq: d.Seq}}
		changed = true
	default:
		from, to := formationRank[f.Status], formationRank[d.Phase]
		if to > from || (to == 2 && from == 2 && f.Status != d.Phase) {
			f.Status = d.Phase
			changed = true
		}
	}
	changed = fill(&f.Name, d.Name) || changed
	tenantNow := fill(&f.TenantID, d.TenantID)
	changed = tenantNow || changed
	if f.Labels == nil && d.Labels != nil {
		f.Labels = maps.Clone(d.Labels)
		changed = true
	}
	if changed {
		f.LastSeq, f.LastEvent, f.UpdatedAt = d.Seq, d.Seq, d.At
		st.SaveFormation(f)
	} else {
		seenFormation(st, f, d.Seq)
	}
	if tenantNow {
		inherit(st, f.ID, f.TenantID)
	}
	return f.TenantID, ""
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
