package projection

import "testing"

func foldFormationPhases(t *testing.T, id string, phases ...string) *Projection {
	t.Helper()
	pls := make([][]byte, len(phases))
	for i, ph := range phases {
		pls[i] = formEv(ph, id, nil)
	}
	return fold(t, pls...)
}

// Fold rule 6: status ranks.
func TestFormationStatus(t *testing.T) {
	cases := []struct {
		name    string
		phases  []string
		want    string
		lastSeq uint64
	}{
		{"created", []string{"created"}, FormationCreated, 1},
		{"forward", []string{"created", "launching", "running"}, FormationRunning, 3},
		{"running/degraded alternate", []string{"created", "running", "degraded", "running", "degraded"}, FormationDegraded, 5},
		{"degraded back to running", []string{"degraded", "running"}, FormationRunning, 2},
		{"repeated running is a no-op", []string{"running", "running"}, FormationRunning, 1},
		{"launching after running ignored", []string{"running", "launching"}, FormationRunning, 1},
		{"created cannot come back", []string{"launching", "created"}, FormationLaunching, 1},
		{"created after terminal ignored", []string{"completed", "created"}, FormationCompleted, 1},
		{"terminal first wins: completed", []string{"running", "completed", "failed", "cancelled"}, FormationCompleted, 2},
		{"terminal first wins: failed", []string{"failed", "completed"}, FormationFailed, 1},
		{"terminal first wins: cancelled", []string{"launching", "cancelled", "failed"}, FormationCancelled, 2},
		{"terminal is final", []string{"completed", "running", "degraded", "launching"}, FormationCompleted, 1},
		{"degraded to terminal", []string{"degraded", "failed"}, FormationFailed, 2},
		{"created by launching", []string{"launching"}, FormationLaunching, 1},
		{"created by running", []string{"running"}, FormationRunning, 1},
		{"created by degraded", []string{"degraded"}, FormationDegraded, 1},
		{"created by completed", []string{"completed"}, FormationCompleted, 1},
		{"created by failed", []string{"failed"}, FormationFailed, 1},
		{"created by cancelled", []string{"cancelled"}, FormationCancelled, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := foldFormationPhases(t, "f1", tc.phases...)
			f, _ := mustFormation(t, p, "f1")
			if f.Status != tc.want {
				t.Errorf("Formation(%q).Status = %v, want %v", "f1", f.Status, tc.want)
			}
			if f.LastSeq != tc.lastSeq {
				t.Errorf("Formation(%q).LastSeq = %v, want %v", "f1", f.LastSeq, tc.lastSeq)
			}
			if !f.UpdatedAt.Equal(msgTime(tc.lastSeq)) {
				t.Errorf("Formation(%q).UpdatedAt = %v, want %v", "f1", f.UpdatedAt, msgTime(tc.lastSeq))
			}
			if !f.CreatedAt.Equal(msgTime(1)) {
				t.Errorf("Formation(%q).CreatedAt = %v, want %v", "f1", f.CreatedAt, msgTime(1))
			}
		})
	}
}

// doc.go: name, tenantId and labels are set by the first event carrying
// them. (An event of another tenant is rejected: store/tenant_test.go.)
func TestFormationFixedFields(t *testing.T) {
	cases := []struct {
		name    string
		events  [][]byte
		want    Formation // Name, TenantID, Labels, LastSeq compared
		lastSeq uint64
	}{
		{"set by created, kept",
			[][]byte{formEv("created", "f1", obj{"name": "A", "tenantId": "t1", "labels": obj{"env": "dev"}}),
				formEv("running", "f1", obj{"name": "B", "tenantId": "t1", "labels": obj{"env": "prod"}})},
			Formation{Name: "A", TenantID: "t1", Labels: map[string]string{"env": "dev"}}, 2},
		{"filled by a no-op status event",
			[][]byte{formEv("running", "f1", nil), formEv("created", "f1", obj{"name": "A", "labels": obj{"k": "v"}})},
			Formation{Name: "A", Labels: map[string]string{"k": "v"}}, 2},
		{"nothing new is a no-op",
			[][]byte{formEv("created", "f1", obj{"name": "A"}), formEv("created", "f1", obj{"name": "B"})},
			Formation{Name: "A", Labels: map[string]string{}}, 1},
		{"tenant from correlation",
			[][]byte{formEv("created", "f1", obj{"correlation": obj{"tenantId": "tc"}})},
			Formation{TenantID: "tc", Labels: map[string]string{}}, 1},
		{"empty labels do not fill",
			[][]byte{formEv("created", "f1", obj{"labels": obj{}}), formEv("created", "f1", obj{"labels": obj{"a": "1"}})},
			Formation{Labels: map[string]string{"a": "1"}}, 2},
		{"non-string labels do not fill",
			[][]byte{formEv("created", "f1", obj{"labels": obj{"n": 1}}), formEv("created", "f1", obj{"labels": "x"})},
			Formation{Labels: map[string]string{}}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := fold(t, tc.events...)
			f, _ := mustFormation(t, p, "f1")
			got := Formation{Name: f.Name, TenantID: f.TenantID, Labels: f.Labels}
			if g, w := jsonStr(got), jsonStr(tc.want); g != w {
				t.Errorf("Formation(%q) fixed fields = %v, want %v", "f1", g, w)
			}
			if f.LastSeq != tc.lastSeq {
				t.Errorf("Formation(%q).LastSeq = %v, want %v", "f1", f.LastSeq, tc.lastSeq)
			}
		})
	}
}

// Fold rule 6: deleted removes the formation from every listing and leaves
// a tombstone; cells keep their formationId.
func TestFormationDeleted(t *testing.T) {
	cases := []struct {
		name   string
		before [][]byte
	}{
		{"known formation", [][]byte{formEv("created", "f1", obj{"name": "A", "tenantId": "t1"}), formEv("running", "f1", nil)}},
		{"unknown formation", nil},
		{"terminal formation", [][]byte{formEv("completed", "f1", obj{"tenantId": "t1"})}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			evs := append([][]byte{cellEv("admitted", "c1", obj{"formationId": "f1", "tenantId": "t1"})}, tc.before...)
			evs = append(evs, formEv("deleted", "f1", nil))
			p := fold(t, evs...)
			if _, ok := p.Formation("f1"); ok {
				t.Errorf("Formation(%q) found after deleted, want not found", "f1")
			}
			for _, flt := range []FormationFilter{{}, {Tenant: "t1"}, {Status: FormationRunning}, {Status: FormationCreated}} {
				if got, _ := p.Formations(flt, Page{}); len(got) != 0 {
					t.Errorf("Formations(%+v) = %v, want none", flt, jsonStr(got))
				}
			}
			if f, _ := p.Size(); f != 0 {
				t.Errorf("Size() formations = %d, want 0", f)
			}
			dump := string(p.Dump())
			tomb, _ := p.LoadFormation("f1")

			// Later events for the id are no-ops, though applied: the
			// tombstone only notes the last one (Span.LastEvent).
			applied := p.Counters().Applied
			later := [][]byte{
				formEv("created", "f1", obj{"name": "again", "labels": obj{"a": "b"}}),
				formEv("running", "f1", obj{"tenantId": "t1"}),
				formEv("completed", "f1", nil),
				formEv("deleted", "f1", nil),
			}
			r := &recorder{Projection: p}
			for i, pl := range later {
				seq := uint64(len(evs) + i + 1)
				if out := r.apply(Message{Seq: seq, Time: msgTime(seq), Payload: pl}); out != Applied {
					t.Errorf("Apply(%q) = %v, want %v", pl, out, Applied)
				}
			}
			if got := string(p.Dump()); got != dump {
				t.Errorf("Dump() after events on a tombstone = %s, want %s", got, dump)
			}
			tomb.LastEvent = p.Cursor()
			if got, _ := p.LoadFormation("f1"); r.saves != len(later) || jsonStr(got) != jsonStr(tomb) || got.Span != tomb.Span {
				t.Errorf("events on a tombstone saved %d entities, the tombstone %s %+v; want %d saves of %s %+v",
					r.saves, jsonStr(got), got.Span, len(later), jsonStr(tomb), tomb.Span)
			}
			if got, want := p.Counters().Applied, applied+uint64(len(later)); got != want {
				t.Errorf("Counters().Applied = %d, want %d", got, want)
			}
			if _, ok := p.Formation("f1"); ok {
				t.Errorf("Formation(%q) found after created on a tombstone, want not found", "f1")
			}

			// Cells keep their formationId and still fold.
			seq := p.Cursor() + 1
			p.Apply(Message{Seq: seq, Time: msgTime(seq), Payload: cellEv("started", "c1", nil)})
			c := mustCell(t, p, "c1")
			if c.FormationID != "f1" || c.State != CellRunning {
				t.Errorf("Cell(%q) = {formationId %q, state %q}, want {f1, running}", "c1", c.FormationID, c.State)
			}
			if got, _ := p.Cells(CellFilter{Formation: "f1"}, Page{}); len(got) != 1 {
				t.Errorf("Cells(formation f1) = %d cells, want 1", len(got))
			}
		})
	}
}

// Fold rule 7: derived cell counts, including cells that arrive before
// their formation, and membership.
func TestFormationCellCounts(t *testing.T) {
	in := func(f string) obj { return obj{"formationId": f} }
	p := fold(t,
		cellEv("admitted", "c1", in("f1")), // before the formation exists
		cellEv("started", "c2", in("f1")),
		formEv("created", "f1", nil),
		cellEv("admitted", "c3", in("f1")),
		cellEv("completed", "c3", obj{"exitCode": 0}),
		cellEv("failed", "c4", in("f1")),
		cellEv("destroyed", "c5", in("f1")),
		cellEv("admitted", "c6", nil),
		cellEv("started", "c6", in("f1")), // formationId filled late
		cellEv("admitted", "c7", in("f2")),
		cellEv("started", "c1", in("f2")), // cannot move to f2
		cellEv("summary", "c8", in("f1")),
		cellEv("admitted", "c9", in("f3")), // f3 never exists
	)
	cases := []struct {
		id    string
		want  CellCounts
		cells []string
	}{
		{"f1", CellCounts{Total: 7, Admitted: 1, Running: 3, Completed: 1, Failed: 1, Destroyed: 1}, []string{"c1", "c2", "c3", "c4", "c5", "c6", "c8"}},
	}
	for _, tc := range cases {
		t.Run(tc.id, func(t *testing.T) {
			f, cells := mustFormation(t, p, tc.id)
			if f.Cells != tc.want {
				t.Errorf("Formation(%q).Cells = %+v, want %+v", tc.id, f.Cells, tc.want)
			}
			var ids []string
			for _, c := range cells {
				ids = append(ids, c.ID)
			}
			if g, w := jsonStr(ids), jsonStr(tc.cells); g != w {
				t.Errorf("Formation(%q) cells = %v, want %v", tc.id, g, w)
			}
			list, _ := p.Formations(FormationFilter{}, Page{})
			for _, lf := range list {
				if lf.ID == tc.id && lf.Cells != tc.want {
					t.Errorf("Formations()[%q].Cells = %+v, want %+v", tc.id, lf.Cells, tc.want)
				}
			}
		})
	}
	t.Run("f2 created later counts its cell", func(t *testing.T) {
		seq := p.Cursor() + 1
		p.Apply(Message{Seq: seq, Time: msgTime(seq), Payload: formEv("running", "f2", nil)})
		f, _ := mustFormation(t, p, "f2")
		if want := (CellCounts{Total: 1, Admitted: 1}); f.Cells != want {
			t.Errorf("Formation(%q).Cells = %+v, want %+v", "f2", f.Cells, want)
		}
		// Counts are derived: the earlier cell event did not make it exist.
		if f.LastSeq != seq {
			t.Errorf("Formation(%q).LastSeq = %d, want %d", "f2", f.LastSeq, seq)
		}
	})
	t.Run("failed cells still count as failed after teardown", func(t *testing.T) {
		q := fold(t,
			formEv("created", "f9", nil),
			cellEv("failed", "d1", obj{"formationId": "f9", "reason": "oom-killed"}),
			cellEv("destroyed", "d1", nil),
			cellEv("completed", "d2", obj{"formationId": "f9", "exitCode": 0}),
			cellEv("destroyed", "d2", nil),
			cellEv("admitted", "d3", obj{"formationId": "f9"}),
			cellEv("destroyed", "d3", nil),
			cellEv("started", "d4", obj{"formationId": "f9"}),
		)
		f, _ := mustFormation(t, q, "f9")
		if want := (CellCounts{Total: 4, Running: 1, Completed: 1, Failed: 1, Destroyed: 3}); f.Cells != want {
			t.Errorf("Formation(%q).Cells = %+v, want %+v (rule 7: completed and failed by outcome)", "f9", f.Cells, want)
		}
	})
	t.Run("cell events do not touch the formation", func(t *testing.T) {
		before, _ := mustFormation(t, p, "f1")
		seq := p.Cursor() + 1
		p.Apply(Message{Seq: seq, Time: msgTime(seq), Payload: cellEv("destroyed", "c1", nil)})
		after, _ := mustFormation(t, p, "f1")
		if after.LastSeq != before.LastSeq || !after.UpdatedAt.Equal(before.UpdatedAt) {
			t.Errorf("Formation(%q) lastSeq/updatedAt = %d/%v, want %d/%v", "f1", after.LastSeq, after.UpdatedAt, before.LastSeq, before.UpdatedAt)
		}
		if want := (CellCounts{Total: 7, Admitted: 1, Running: 2, Completed: 1, Failed: 1, Destroyed: 2}); after.Cells != want {
			t.Errorf("Formation(%q).Cells = %+v, want %+v", "f1", after.Cells, want)
		}
	})
}
