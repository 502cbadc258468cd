package projection

import (
	"bytes"
	"fmt"
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
