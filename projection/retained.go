package projection

import (
	"fmt"
	"maps"
	"slices"

	"cellos-allinone/event"
)

// What the retained log proves (docs/design.md §3, retention): once
// events have expired, a state is the fold of a log of which only the
// events from the floor on are left, less what the retention rule
// removed. A fold of the retained events alone cannot equal it — it lacks
// what happened before the floor — but it proves every entity that was
// born in the retained window and depends on nothing older:
//
//   - an entity held whose first event is at or above the floor equals the
//     window's fold of it, span included — for a cell, unless one of its
//     events names a formation held from before the window, whose tenant,
//     unknown to the window, may have refused the event; a formation's
//     counts too, when the cells it counts are the window's and all such
//     cells;
//   - an entity the window's fold holds is held — the rule never removes
//     what a retained event names — except such a cell, which the state
//     may have refused altogether;
//   - an entity held from before the window is kept by the rule: live, or
//     its last event retained. The state is first pruned at the floor, as
//     its next commit would: what it holds beyond that is a difference.

// FromRegistry returns a Projection holding r's entities as they are —
// formations with their pruned counts, cells with their spans — at meta.
func FromRegistry(r Registry, meta Meta) *Projection {
	p := New()
	p.meta = meta
	for _, f := range r.Formations {
		if f.PrunedCells != (CellCounts{}) {
			g := f.PrunedCells
			p.pruned[f.ID] = &g
		}
		p.SaveFormation(f)
	}
	for _, c := range r.Cells {
		p.SaveCell(c)
	}
	return p
}

// RetainedReport says how much of a state a retained window proved.
type RetainedReport struct {
	// Proved counts the entities born in the window and equal to its fold.
	Proved int
	// Before counts the entities held from before the floor (and those
	// born in the window that name a formation from before it): the rule
	// keeps them, the window cannot prove them.
	Before int
	// Pruned counts the entities the state holds that the rule removes at
	// the floor: its next commit would (a state pruned at a lower floor).
	Pruned int
}

// Window is a fold of the retained events with what CompareRetained needs
// beside it: the formations each cell's events name.
type Window struct {
	*Projection
	named map[string][]string // cell id → formation ids its events name
}

// NewWindow returns an empty window.
func NewWindow() *Window { return &Window{Projection: New(), named: map[string][]string{}} }

// Apply decodes m and folds it.
func (w *Window) Apply(m Message) Outcome {
	d := w.dec.Decode(m)
	out, _ := Apply(w.Projection, d)
	if out != Stale && d.Kind == event.KindCell && d.FormationID != "" && !slices.Contains(w.named[d.EntityID], d.FormationID) {
		w.named[d.EntityID] = append(w.named[d.EntityID], d.FormationID)
	}
	return out
}

// CompareRetained lists up to most differences between state — the
// registry a state holds, spans included — and window, a fold of the
// retained events from floor (the stream's first sequence) through the
// state's cursor: what the retained log proves, as above. state is
// pruned at floor first (in place).
func CompareRetained(state *Projection, window *Window, floor uint64, most int) (diffs []string, rep RetainedReport) {
	add := func(format string, args ...any) {
		if len(diffs) < most {
			diffs = append(diffs, fmt.Sprintf(format, args...))
		}
	}
	// Held from before the window, as the state holds them before it is
	// pruned here: a cell naming one of them is not the window's to prove.
	before := map[string]bool{}
	for id, f := range state.formations {
		before[id] = f.FirstSeq < floor
	}
	held := len(state.formations) + len(state.cells)
	state.Prune(floor)
	rep.Pruned = held - len(state.formations) - len(state.cells)

	// dependsBefore: the cell's events name a formation from before.
	dependsBefore := func(id string) bool {
		return slices.ContainsFunc(window.named[id], func(f string) bool { return before[f] })
	}
	inWindow := func(c *Cell) bool { return c.FirstSeq >= floor && !dependsBefore(c.ID) }
	for _, id := range sortedIDs(state.formations, window.formations) {
		s, w := state.formations[id], window.formations[id]
		switch {
		case s == nil:
			add("formation %s: a fold of the retained window holds it (first event #%d), the state does not", id, w.FirstSeq)
		case s.FirstSeq < floor:
			rep.Before++
		case w == nil:
			add("formation %s: born at #%d in the retained window, which holds no such formation", id, s.FirstSeq)
		default:
			sv, wv := state.formationView(s), window.Projection.formationView(w)
			// The counts, when the same cells of the window make them.
			counted := state.pruned[id] == nil && len(state.members[id]) == len(window.members[id])
			for cid := range window.members[id] {
				c := state.cells[cid]
				counted = counted && c != nil && c.FormationID == id && inWindow(c)
			}
			if !counted {
				sv.Cells, wv.Cells = CellCounts{}, CellCounts{}
			}
			if g, x := entityText(sv, sv.Deleted, sv.Span), entityText(wv, wv.Deleted, wv.Span); g != x {
				add("formation %s: differs from a fold of the retained window\n  want %s\n  got  %s", id, x, g)
				continue
			}
			rep.Proved++
		}
	}
	for _, id := range sortedIDs(state.cells, window.cells) {
		s, w := state.cells[id], window.cells[id]
		switch {
		case s == nil && dependsBefore(id):
			rep.Before++ // a formation from before the window may have refused it
		case s == nil:
			add("cell %s: a fold of the retained window holds it (first event #%d), the state does not", id, w.FirstSeq)
		case !inWindow(s):
			rep.Before++
		case w == nil:
			add("cell %s: born at #%d in the retained window, which holds no such cell", id, s.FirstSeq)
		default:
			if g, x := entityText(*s, false, s.Span), entityText(*w, false, w.Span); g != x {
				add("cell %s: differs from a fold of the retained window\n  want %s\n  got  %s", id, x, g)
				continue
			}
			rep.Proved++
		}
	}
	return diffs, rep
}

// entityText is an entity's served JSON with what is not served of it.
func entityText(v any, deleted bool, sp Span) string {
	return fmt.Sprintf("%s deleted=%v first=%d lastEvent=%d", mustJSON(v), deleted, sp.FirstSeq, sp.LastEvent)
}

// sortedIDs is the union of the keys of a and b, in order.
func sortedIDs[V any](a, b map[string]V) []string {
	ids := slices.Collect(maps.Keys(a))
	for id := range b {
		if _, ok := a[id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}
