package projection

import (
	"encoding/json"
	"math/rand/v2"
	"testing"

	"cellos-allinone/testutil"
)

// genMessages draws a random event log (testutil.RandomLog) as messages.
func genMessages(r *rand.Rand, n int) []Message {
	var out []Message
	for _, m := range testutil.RandomLog(r, n) {
		out = append(out, Message{Seq: m.Seq, Subject: m.Subject, Time: m.Time, Payload: m.Payload})
	}
	return out
}

// Fixed fields never change once set, and the state rank never goes down,
// whatever the order of events. Tenants (fold v3): an entity's never
// changes, a cell of a formation with a tenant always has one, and only
// inheriting it changes a cell without moving its lastSeq.
func TestFoldMonotonic(t *testing.T) {
	for seed := range uint64(40) {
		r := rand.New(rand.NewPCG(seed, 99))
		msgs := genMessages(r, 150)
		p := New()
		prev := map[string]Cell{}
		tenantOf := map[string]string{} // formation id → its tenant, tombstones included
		for _, m := range msgs {
			p.Apply(m)
			for id, f := range p.formations {
				if old := tenantOf[id]; old != "" && f.TenantID != old {
					t.Fatalf("seed %d seq %d: Formation(%q).TenantID = %q, want %q", seed, m.Seq, id, f.TenantID, old)
				}
				tenantOf[id] = f.TenantID
			}
			cs, _ := p.Cells(CellFilter{}, Page{})
			for _, c := range cs {
				if ft := tenantOf[c.FormationID]; ft != "" && c.TenantID == "" {
					t.Fatalf("seed %d seq %d: Cell(%q) has no tenant, its formation %q has %q", seed, m.Seq, c.ID, c.FormationID, ft)
				}
				old, ok := prev[c.ID]
				prev[c.ID] = c
				if !ok {
					continue
				}
				if stateRank(c.State) < stateRank(old.State) {
					t.Fatalf("seed %d seq %d: Cell(%q).State = %v, want rank >= %v", seed, m.Seq, c.ID, c.State, old.State)
				}
				for _, f := range [][2]string{{old.FormationID, c.FormationID}, {old.SpecID, c.SpecID}, {old.RunID, c.RunID}, {old.TenantID, c.TenantID}, {string(old.Correlation), string(c.Correlation)}} {
					if f[0] != "" && f[0] != f[1] {
						t.Fatalf("seed %d seq %d: Cell(%q) fixed field = %q, want %q", seed, m.Seq, c.ID, f[1], f[0])
					}
				}
				if old.ExitCode != nil && exitStr(old.ExitCode) != exitStr(c.ExitCode) {
					t.Fatalf("seed %d seq %d: Cell(%q).ExitCode = %v, want %v", seed, m.Seq, c.ID, exitStr(c.ExitCode), exitStr(old.ExitCode))
				}
				// Inheriting the formation's tenant (rule 4) is the one change
				// that leaves lastSeq alone.
				inherited := c
				if old.TenantID == "" && c.TenantID != "" && c.LastSeq == old.LastSeq {
					inherited.TenantID = ""
					if f, ok := p.LoadFormation(c.FormationID); !ok || f.TenantID != c.TenantID {
						t.Fatalf("seed %d seq %d: Cell(%q) got tenant %q without an event, not its formation's (%+v)", seed, m.Seq, c.ID, c.TenantID, f)
					}
				}
				if c.LastSeq < old.LastSeq || (c.LastSeq == old.LastSeq && jsonStr(inherited) != jsonStr(old)) {
					t.Fatalf("seed %d seq %d: Cell(%q) changed without lastSeq moving: %s -> %s", seed, m.Seq, c.ID, jsonStr(old), jsonStr(c))
				}
			}
		}
		// Counts equal a recount of the cells.
		cs, _ := p.Cells(CellFilter{}, Page{})
		want := map[string]*CellCounts{}
		for _, c := range cs {
			if c.FormationID == "" {
				continue
			}
			if want[c.FormationID] == nil {
				want[c.FormationID] = &CellCounts{}
			}
			w := want[c.FormationID]
			w.Total++
			switch c.State {
			case CellAdmitted:
				w.Admitted++
			case CellRunning:
				w.Running++
			case CellDestroyed:
				w.Destroyed++
			}
			// Rule 7: completed and failed count outcomes, also after teardown.
			switch c.Outcome {
			case OutcomeCompleted:
				w.Completed++
			case OutcomeFailed:
				w.Failed++
			}
		}
		fs, _ := p.Formations(FormationFilter{}, Page{})
		for _, f := range fs {
			w := CellCounts{}
			if want[f.ID] != nil {
				w = *want[f.ID]
			}
			if f.Cells != w {
				t.Fatalf("seed %d: Formation(%q).Cells = %+v, want %+v", seed, f.ID, f.Cells, w)
			}
		}
		var d struct{ Formations, Cells []json.RawMessage }
		if err := json.Unmarshal(p.Dump(), &d); err != nil {
			t.Fatalf("seed %d: Dump() is not JSON: %v", seed, err)
		}
	}
}
