package projection

import (
	"encoding/json"
	"fmt"
	"slices"
)

// Meta is the projection's position and counters, stored beside its
// entities in a checkpoint.
type Meta struct {
	Cursor   uint64   `json:"cursor"`
	CursorID string   `json:"cursorId"`
	Counters Counters `json:"counters"`
	Gaps     []Gap    `json:"gaps,omitempty"`
}

// Changes is what changed since the previous TakeChanges: the encoded
// records to write, keyed by id. Reset means everything stored before
// must be dropped first (the projection was rebuilt).
type Changes struct {
	Reset      bool
	Meta       Meta
	Formations map[string][]byte
	Cells      map[string][]byte
}

// Empty reports whether no entity changed and no reset is pending.
func (c Changes) Empty() bool {
	return !c.Reset && len(c.Formations) == 0 && len(c.Cells) == 0
}

// Meta returns the projection's position and counters.
func (p *Projection) Meta() Meta {
	return Meta{Cursor: p.cursor, CursorID: p.cursorID, Counters: p.counters, Gaps: p.Gaps()}
}

// TakeChanges encodes every entity changed since the last call and clears
// the change set. If writing them fails, hand them back with Requeue.
func (p *Projection) TakeChanges() Changes {
	ch := Changes{
		Reset:      p.reset,
		Meta:       p.Meta(),
		Formations: make(map[string][]byte, len(p.dirtyFormations)),
		Cells:      make(map[string][]byte, len(p.dirtyCells)),
	}
	for id := range p.dirtyFormations {
		ch.Formations[id] = mustJSON(p.formations[id])
	}
	for id := range p.dirtyCells {
		ch.Cells[id] = mustJSON(p.cells[id])
	}
	p.reset = false
	clear(p.dirtyFormations)
	clear(p.dirtyCells)
	return ch
}

// Requeue marks the entities of a change set that could not be written as
// changed again, so the next TakeChanges includes their current state.
func (p *Projection) Requeue(ch Changes) {
	p.reset = p.reset || ch.Reset
	for id := range ch.Formations {
		p.dirtyFormations[id] = struct{}{}
	}
	for id := range ch.Cells {
		p.dirtyCells[id] = struct{}{}
	}
}

// MarkReset records that the stored checkpoint must be replaced wholesale
// by the next change set (after a rebuild from scratch). Every entity is
// marked changed, so that change set holds the whole state even when
// earlier change sets were already taken.
func (p *Projection) MarkReset() {
	p.reset = true
	for id := range p.formations {
		p.dirtyFormations[id] = struct{}{}
	}
	for id := range p.cells {
		p.dirtyCells[id] = struct{}{}
	}
}

// Restore builds a projection from checkpointed records. A record that
// does not decode is an error: the caller treats the checkpoint as corrupt.
func Restore(meta Meta, formations, cells func(yield func(id string, rec []byte) error) error) (*Projection, error) {
	p := New()
	p.cursor, p.cursorID, p.counters = meta.Cursor, meta.CursorID, meta.Counters
	p.gaps = append([]Gap(nil), meta.Gaps...)
	err := formations(func(id string, rec []byte) error {
		var f Formation
		if err := json.Unmarshal(rec, &f); err != nil || f.ID != id {
			return fmt.Errorf("formation %q: bad record", id)
		}
		f.Cells = CellCounts{}
		p.formations[id] = &f
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = cells(func(id string, rec []byte) error {
		var c Cell
		if err := json.Unmarshal(rec, &c); err != nil || c.ID != id || !ValidCellState(c.State) || !ValidOutcome(c.Outcome) {
			return fmt.Errorf("cell %q: bad record", id)
		}
		p.cells[id] = &c
		p.recount(id, countKey{}, keyOf(&c))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Dump is a canonical encoding of the entity state (formations including
// tombstones, and cells, ordered by id). Two projections with equal dumps
// serve the same registry.
func (p *Projection) Dump() []byte {
	type entry struct {
		Formations []Formation `json:"formations"`
		Cells      []Cell      `json:"cells"`
	}
	var d entry
	for _, id := range sortedKeys(p.formations) {
		d.Formations = append(d.Formations, p.formationView(p.formations[id]))
	}
	for _, id := range sortedKeys(p.cells) {
		d.Cells = append(d.Cells, *p.cells[id])
	}
	return mustJSON(d)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Only plain structs, strings and compacted JSON are encoded here.
		panic(fmt.Sprintf("projection: encode: %v", err))
	}
	return b
}
