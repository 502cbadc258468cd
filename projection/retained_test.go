package projection

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// prunedFold folds msgs, pruning at a floor that moves up now and then as
// commits would — also past events still to be applied (read before they
// expired) — and ends with a floor at or above the last one pruned at (the
// stream expired more since the last commit). It returns the state, the
// messages it applied, and that final floor.
func prunedFold(r *rand.Rand, msgs []Message) (*Projection, []Message, uint64) {
	p := New()
	var applied []Message
	var floor uint64
	for _, m := range msgs {
		if p.Apply(m) == Stale {
			continue
		}
		applied = append(applied, m)
		if r.IntN(5) == 0 {
			floor = max(floor, uint64(max(0, int64(m.Seq)+2-r.Int64N(20))))
			p.Prune(floor)
		}
	}
	if r.IntN(2) == 0 {
		floor += uint64(r.IntN(10))
	}
	return p, applied, floor
}

// windowFold folds the applied messages from floor on: a fold of the
// retained window.
func windowFold(applied []Message, floor uint64) *Window {
	w := NewWindow()
	for _, m := range applied {
		if m.Seq >= floor {
			w.Apply(m)
		}
	}
	return w
}

// A state pruned by the rule at any points is what its retained window
// proves: no difference, whatever the log, and the window proves some
// entities and leaves others to the rule (over all the logs).
func TestCompareRetainedHoldsForPrunedFolds(t *testing.T) {
	var total RetainedReport
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 17))
		p, applied, floor := prunedFold(r, genMessages(r, 200))
		state := FromRegistry(p.Registry(), *p.Meta())
		diffs, rep := CompareRetained(state, windowFold(applied, floor), floor, 10)
		if len(diffs) != 0 {
			t.Fatalf("seed %d, floor %d: CompareRetained() = %s\nwant no difference", seed, floor, strings.Join(diffs, "\n"))
		}
		total.Proved += rep.Proved
		total.Before += rep.Before
		total.Pruned += rep.Pruned
	}
	if total.Proved == 0 || total.Before == 0 || total.Pruned == 0 {
		t.Errorf("over all logs: %+v; want entities proved, held from before the window, and pruned at the floor", total)
	}
}

// A state that lost, changed or made up an entity the window proves is
// told apart.
func TestCompareRetainedFindsDifferences(t *testing.T) {
	f1 := obj{"formationId": "f1"}
	events := [][]byte{
		cellEv("admitted", "old", nil), // 1: held from before the window
		formEv("running", "f1", nil),   // 2
		cellEv("admitted", "c1", f1),   // 3
		cellEv("admitted", "c2", nil),  // 4
	}
	const floor = 2
	fold := func() *Projection {
		p := New()
		for i, pl := range events {
			p.Apply(Message{Seq: uint64(i + 1), Time: msgTime(uint64(i + 1)), Payload: pl})
		}
		return p
	}
	window := NewWindow()
	for i, pl := range events[floor-1:] {
		seq := uint64(i + floor)
		window.Apply(Message{Seq: seq, Time: msgTime(seq), Payload: pl})
	}
	if diffs, rep := CompareRetained(FromRegistry(fold().Registry(), Meta{}), window, floor, 10); len(diffs) != 0 || rep.Proved != 3 || rep.Before != 1 {
		t.Fatalf("the untouched state: %q, %+v; want no difference, 3 proved, 1 from before", diffs, rep)
	}
	for _, tc := range []struct {
		name   string
		tamper func(r *Registry)
		want   string
	}{
		{"a cell lost", func(r *Registry) { delete(r.Cells, "c2") }, "cell c2: a fold of the retained window holds it"},
		{"a formation lost", func(r *Registry) { delete(r.Formations, "f1") }, "formation f1: a fold of the retained window holds it"},
		{"a cell changed", func(r *Registry) { c := r.Cells["c1"]; c.State = CellRunning; r.Cells["c1"] = c }, "cell c1: differs"},
		{"a span changed", func(r *Registry) { c := r.Cells["c2"]; c.LastEvent = 9; r.Cells["c2"] = c }, "cell c2: differs"},
		{"a formation's count", func(r *Registry) {
			f := r.Formations["f1"]
			f.PrunedCells = CellCounts{}
			r.Cells["c3"] = Cell{ID: "c3", FormationID: "f1", State: CellRunning, Span: Span{FirstSeq: 3, LastEvent: 3}, LastSeq: 3}
		}, "cell c3: born at #3 in the retained window, which holds no such cell"},
		{"an entity made up", func(r *Registry) {
			r.Formations["f9"] = Formation{ID: "f9", Status: FormationRunning, Span: Span{FirstSeq: 4, LastEvent: 4}, LastSeq: 4}
		}, "formation f9: born at #4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := fold().Registry()
			tc.tamper(&reg)
			diffs, _ := CompareRetained(FromRegistry(reg, Meta{}), window, floor, 10)
			if got := strings.Join(diffs, "\n"); !strings.Contains(got, tc.want) {
				t.Errorf("CompareRetained() = %q, want %q", got, tc.want)
			}
		})
	}
}
