package projection

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

// Entities is a registry as comparable records: live formations (with
// their derived cell counts) and cells, each as JSON by id. Tombstones are
// left out: they are not served.
type Entities struct {
	Formations map[string][]byte
	Cells      map[string][]byte
}

// Entities returns the projection's served registry as records.
func (p *Projection) Entities() Entities {
	e := Entities{Formations: map[string][]byte{}, Cells: map[string][]byte{}}
	for id, f := range p.formations {
		if !f.Deleted {
			e.Formations[id] = mustJSON(p.formationView(f))
		}
	}
	for id, c := range p.cells {
		e.Cells[id] = mustJSON(c)
	}
	return e
}

// AddFormation and AddCell fill Entities from served resources.
func (e *Entities) AddFormation(f Formation) {
	if f.Labels == nil {
		f.Labels = map[string]string{}
	}
	e.Formations[f.ID] = mustJSON(f)
}

// AddCell adds one served cell.
func (e *Entities) AddCell(c Cell) { e.Cells[c.ID] = mustJSON(c) }

// NewEntities returns an empty registry.
func NewEntities() Entities {
	return Entities{Formations: map[string][]byte{}, Cells: map[string][]byte{}}
}

// DiffEntities lists up to most differences between want and got, in id
// order: entities missing from one side, and entities whose records differ.
func DiffEntities(want, got Entities, most int) []string {
	var out []string
	add := func(kind string, w, g map[string][]byte) {
		ids := make([]string, 0, len(w)+len(g))
		for id := range w {
			ids = append(ids, id)
		}
		for id := range g {
			if _, ok := w[id]; !ok {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		for _, id := range ids {
			if len(out) >= most {
				return
			}
			wr, inW := w[id]
			gr, inG := g[id]
			switch {
			case !inG:
				out = append(out, fmt.Sprintf("%s %s: missing; want %s", kind, id, wr))
			case !inW:
				out = append(out, fmt.Sprintf("%s %s: unexpected %s", kind, id, gr))
			case !bytes.Equal(wr, gr):
				out = append(out, fmt.Sprintf("%s %s:\n  want %s\n  got  %s", kind, id, wr, gr))
			}
		}
	}
	add("formation", want.Formations, got.Formations)
	add("cell", want.Cells, got.Cells)
	return out
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Only plain structs, strings and compacted JSON are encoded here.
		panic(fmt.Sprintf("projection: encode: %v", err))
	}
	return b
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
	for _, id := range slices.Sorted(maps.Keys(p.formations)) {
		d.Formations = append(d.Formations, p.formationView(p.formations[id]))
	}
	for _, id := range slices.Sorted(maps.Keys(p.cells)) {
		d.Cells = append(d.Cells, *p.cells[id])
	}
	return mustJSON(d)
}

// Registry is every entity a state holds, tombstones included: formations
// with their served counts (PrunedCells set), cells, each with its Span.
// It is what snapshot verify compares with the retained log.
type Registry struct {
	Formations map[string]Formation
	Cells      map[string]Cell
}

// Registry returns every entity the projection holds.
func (p *Projection) Registry() Registry {
	r := Registry{Formations: make(map[string]Formation, len(p.formations)), Cells: make(map[string]Cell, len(p.cells))}
	for id, f := range p.formations {
		r.Formations[id] = p.formationView(f)
	}
	for id, c := range p.cells {
		r.Cells[id] = *c
	}
	return r
}
