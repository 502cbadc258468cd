package projection

import (
	"fmt"
	"testing"
)

// An entity's span (docs/design.md §3, retention): FirstSeq is the event
// that created it; LastEvent is its last change while it lives, and once
// it has ended also every later event that names it — a no-op, one
// rejected for its tenant, and for a formation a cell event naming it —
// so that the retention rule never removes what a retained event names.
func TestSpan(t *testing.T) {
	tenant := func(id string) obj { return obj{"tenantId": id} }
	f1 := obj{"formationId": "f1"}
	type want struct {
		id                           string
		firstSeq, lastSeq, lastEvent uint64
	}
	cases := []struct {
		name   string
		events [][]byte
		want   []want
	}{
		{"a live cell: its changes only",
			[][]byte{cellEv("admitted", "c1", nil), cellEv("started", "c1", nil), cellEv("admitted", "c1", nil)},
			[]want{{"c:c1", 1, 2, 2}}},
		{"an ended cell: every event naming it",
			[][]byte{cellEv("admitted", "c1", nil), cellEv("completed", "c1", nil), cellEv("started", "c1", nil), cellEv("failed", "c1", nil)},
			[]want{{"c:c1", 1, 2, 4}}},
		{"a live formation: its changes only",
			[][]byte{formEv("created", "f1", nil), formEv("created", "f1", nil), cellEv("admitted", "c1", f1)},
			[]want{{"f:f1", 1, 1, 1}, {"c:c1", 3, 3, 3}}},
		{"an ended formation: also the cell events naming it",
			[][]byte{formEv("created", "f1", nil), formEv("completed", "f1", nil), formEv("running", "f1", nil), cellEv("admitted", "c1", f1), cellEv("started", "c1", nil)},
			[]want{{"f:f1", 1, 2, 4}, {"c:c1", 4, 5, 5}}},
		{"a tombstone: every later event for its id",
			[][]byte{formEv("running", "f1", nil), formEv("deleted", "f1", nil), formEv("created", "f1", nil)},
			[]want{{"f:f1", 1, 2, 3}}},
		{"events rejected for their tenant name the ended entity",
			[][]byte{formEv("cancelled", "f1", tenant("t1")), cellEv("destroyed", "c1", tenant("t1")),
				formEv("running", "f1", tenant("t2")), cellEv("summary", "c1", tenant("t2")),
				cellEv("summary", "c2", obj{"formationId": "f1", "tenantId": "t2"})},
			[]want{{"f:f1", 1, 1, 5}, {"c:c1", 2, 2, 4}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := fold(t, tc.events...)
			reg := p.Registry()
			for _, w := range tc.want {
				var sp Span
				var last uint64
				var ok bool
				switch w.id[0] {
				case 'f':
					var f Formation
					f, ok = reg.Formations[w.id[2:]]
					sp, last = f.Span, f.LastSeq
				default:
					var c Cell
					c, ok = reg.Cells[w.id[2:]]
					sp, last = c.Span, c.LastSeq
				}
				got := fmt.Sprintf("%v first %d last %d lastEvent %d", ok, sp.FirstSeq, last, sp.LastEvent)
				if want := fmt.Sprintf("true first %d last %d lastEvent %d", w.firstSeq, w.lastSeq, w.lastEvent); got != want {
					t.Errorf("%s: %s, want %s", w.id, got, want)
				}
			}
		})
	}
}
