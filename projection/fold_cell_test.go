package projection

import (
	"encoding/json"
	"fmt"
	"testing"

	"cellos-allinone/testutil"
)

// step is one event of a case: a cell phase ("summary" for a compliance
// summary) and extra data fields.
type step struct {
	phase string
	data  obj
}

// foldCell folds the steps of cell c1 and returns the projection and c1.
func foldCell(t *testing.T, steps []step) (*Projection, Cell) {
	t.Helper()
	pls := make([][]byte, len(steps))
	for i, s := range steps {
		pls[i] = cellEv(s.phase, "c1", s.data)
	}
	p := fold(t, pls...)
	return p, mustCell(t, p, "c1")
}

// Fold rules 3 and 4: state rank, out-of-order events, creation by any
// event, exitCode and reason.
func TestCellStateRank(t *testing.T) {
	cases := []struct {
		name    string
		steps   []step
		state   string
		exit    *int64
		reason  string
		lastSeq uint64 // also the seq whose message time is updatedAt
	}{
		{"admitted", []step{{"admitted", nil}}, CellAdmitted, nil, "", 1},
		{"happy path", []step{{"admitted", nil}, {"started", nil}, {"completed", obj{"exitCode": 0}}, {"destroyed", nil}}, CellDestroyed, i64(0), "", 4},
		{"completed sets exitCode", []step{{"admitted", nil}, {"started", nil}, {"completed", obj{"exitCode": 3}}}, CellCompleted, i64(3), "", 3},
		{"failed sets reason", []step{{"admitted", nil}, {"started", nil}, {"failed", obj{"reason": "oom"}}}, CellFailed, nil, "oom", 3},
		{"negative exitCode", []step{{"completed", obj{"exitCode": -9}}}, CellCompleted, i64(-9), "", 1},
		{"late started after completed", []step{{"admitted", nil}, {"completed", obj{"exitCode": 0}}, {"started", nil}}, CellCompleted, i64(0), "", 2},
		{"late admitted after started", []step{{"started", nil}, {"admitted", nil}}, CellRunning, nil, "", 1},
		{"first of completed/failed wins: completed", []step{{"completed", obj{"exitCode": 1}}, {"failed", obj{"reason": "late"}}}, CellCompleted, i64(1), "", 1},
		{"first of completed/failed wins: failed", []step{{"failed", obj{"reason": "crash"}}, {"completed", obj{"exitCode": 0}}}, CellFailed, nil, "crash", 1},
		{"second completed keeps first exitCode", []step{{"completed", obj{"exitCode": 1}}, {"completed", obj{"exitCode": 2}}}, CellCompleted, i64(1), "", 1},
		{"second failed keeps first reason", []step{{"failed", obj{"reason": "a"}}, {"failed", obj{"reason": "b"}}}, CellFailed, nil, "a", 1},
		{"destroyed is terminal", []step{{"destroyed", nil}, {"started", nil}, {"completed", obj{"exitCode": 0}}, {"failed", obj{"reason": "x"}}, {"admitted", nil}}, CellDestroyed, nil, "", 1},
		{"destroyed keeps reason", []step{{"failed", obj{"reason": "r"}}, {"destroyed", nil}}, CellDestroyed, nil, "r", 2},
		{"destroyed keeps exitCode", []step{{"completed", obj{"exitCode": 4}}, {"destroyed", obj{"exitCode": 9}}}, CellDestroyed, i64(4), "", 2},
		{"created by started", []step{{"started", nil}}, CellRunning, nil, "", 1},
		{"created by completed", []step{{"completed", obj{"exitCode": 7}}}, CellCompleted, i64(7), "", 1},
		{"created by failed", []step{{"failed", obj{"reason": "boom"}}}, CellFailed, nil, "boom", 1},
		{"created by destroyed", []step{{"destroyed", nil}}, CellDestroyed, nil, "", 1},
		{"second admitted is a no-op", []step{{"admitted", nil}, {"admitted", nil}}, CellAdmitted, nil, "", 1},
		{"repeated started is a no-op", []step{{"started", nil}, {"started", nil}}, CellRunning, nil, "", 1},
		{"completed without exitCode", []step{{"completed", nil}}, CellCompleted, nil, "", 1},
		{"exitCode null stays null", []step{{"completed", obj{"exitCode": nil}}}, CellCompleted, nil, "", 1},
		{"exitCode string is absent", []step{{"completed", obj{"exitCode": "3"}}}, CellCompleted, nil, "", 1},
		{"exitCode fraction is absent", []step{{"completed", obj{"exitCode": 1.5}}}, CellCompleted, nil, "", 1},
		{"reason not a string is absent", []step{{"failed", obj{"reason": 42}}}, CellFailed, nil, "", 1},
		{"exitCode on failed is not read", []step{{"failed", obj{"reason": "r", "exitCode": 1}}}, CellFailed, nil, "r", 1},
		{"reason on completed is not read", []step{{"completed", obj{"reason": "r", "exitCode": 0}}}, CellCompleted, i64(0), "", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, c := foldCell(t, tc.steps)
			if c.State != tc.state {
				t.Errorf("Cell(%q).State = %v, want %v", "c1", c.State, tc.state)
			}
			if got, want := exitStr(c.ExitCode), exitStr(tc.exit); got != want {
				t.Errorf("Cell(%q).ExitCode = %v, want %v", "c1", got, want)
			}
			if c.Reason != tc.reason {
				t.Errorf("Cell(%q).Reason = %q, want %q", "c1", c.Reason, tc.reason)
			}
			if c.LastSeq != tc.lastSeq {
				t.Errorf("Cell(%q).LastSeq = %v, want %v", "c1", c.LastSeq, tc.lastSeq)
			}
			if want := msgTime(tc.lastSeq); !c.UpdatedAt.Equal(want) {
				t.Errorf("Cell(%q).UpdatedAt = %v, want %v", "c1", c.UpdatedAt, want)
			}
			if want := msgTime(1); !c.CreatedAt.Equal(want) {
				t.Errorf("Cell(%q).CreatedAt = %v, want %v", "c1", c.CreatedAt, want)
			}
			if got, want := p.Counters(), (Counters{Applied: uint64(len(tc.steps))}); !got.Equal(want) {
				t.Errorf("Counters() = %+v, want %+v", got, want)
			}
		})
	}
}

// Fold rule 4 (and doc.go): formationId, specId, runId, tenantId and
// correlation are set by the first event carrying them, never changed. (An
// event of another tenant is rejected: store/tenant_test.go.)
func TestCellFixedFields(t *testing.T) {
	corrA := obj{"traceId": "A", "tenantId": "tA"}
	corrB := obj{"traceId": "B"}
	cases := []struct {
		name    string
		steps   []step
		want    Cell // only the fixed fields and LastSeq are compared
		lastSeq uint64
	}{
		{"set by admitted, kept",
			[]step{{"admitted", obj{"formationId": "f1", "specId": "s1", "runId": "r1", "tenantId": "t1", "correlation": corrA}},
				{"started", obj{"formationId": "f2", "specId": "s2", "runId": "r2", "tenantId": "t1", "correlation": corrB}}},
			Cell{FormationID: "f1", SpecID: "s1", RunID: "r1", TenantID: "t1", Correlation: json.RawMessage(`{"tenantId":"tA","traceId":"A"}`)}, 2},
		{"filled by a no-op state event",
			[]step{{"completed", obj{"exitCode": 0}}, {"started", obj{"formationId": "f1", "specId": "s1"}}},
			Cell{FormationID: "f1", SpecID: "s1"}, 2},
		{"filled by a second admitted",
			[]step{{"admitted", nil}, {"admitted", obj{"runId": "r1", "tenantId": "t1"}}},
			Cell{RunID: "r1", TenantID: "t1"}, 2},
		{"second admitted changes nothing set",
			[]step{{"admitted", obj{"formationId": "f1"}}, {"admitted", obj{"formationId": "f2"}}},
			Cell{FormationID: "f1"}, 1},
		{"each field from its first carrier",
			[]step{{"admitted", obj{"specId": "s1"}}, {"started", obj{"runId": "r1", "specId": "s9"}}, {"destroyed", obj{"formationId": "f1", "runId": "r9"}}},
			Cell{FormationID: "f1", SpecID: "s1", RunID: "r1"}, 3},
		{"tenant from correlation, then kept",
			[]step{{"admitted", obj{"correlation": corrA}}, {"started", obj{"correlation": corrB}}},
			Cell{TenantID: "tA", Correlation: json.RawMessage(`{"tenantId":"tA","traceId":"A"}`)}, 2},
		{"filled by a summary",
			[]step{{"summary", obj{"formationId": "f1", "passed": true}}},
			Cell{FormationID: "f1"}, 1},
		{"empty values do not fill",
			[]step{{"admitted", obj{"formationId": "", "specId": ""}}, {"started", obj{"formationId": "f1", "specId": "s1"}}},
			Cell{FormationID: "f1", SpecID: "s1"}, 2},
		{"wrong types do not fill",
			[]step{{"admitted", obj{"formationId": 1, "runId": true, "correlation": "x"}}, {"admitted", obj{"formationId": "f1"}}},
			Cell{FormationID: "f1"}, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, c := foldCell(t, tc.steps)
			got := Cell{FormationID: c.FormationID, SpecID: c.SpecID, RunID: c.RunID, TenantID: c.TenantID, Correlation: c.Correlation}
			if g, w := jsonStr(got), jsonStr(tc.want); g != w {
				t.Errorf("Cell(%q) fixed fields = %v, want %v", "c1", g, w)
			}
			if c.LastSeq != tc.lastSeq {
				t.Errorf("Cell(%q).LastSeq = %v, want %v", "c1", c.LastSeq, tc.lastSeq)
			}
		})
	}
}

// Fold rule 5: a compliance summary replaces compliance in any state,
// creates the cell in admitted, never changes the state.
func TestCellCompliance(t *testing.T) {
	sumA := obj{"passed": true, "findings": 0}
	sumB := obj{"passed": false, "findings": 2, "note": "<b>&</b>"}
	cases := []struct {
		name    string
		steps   []step
		state   string
		sum     obj // the data of the summary that must be attached
		lastSeq uint64
	}{
		{"creates cell in admitted", []step{{"summary", sumA}}, CellAdmitted, sumA, 1},
		{"then admitted is a no-op", []step{{"summary", sumA}, {"admitted", nil}}, CellAdmitted, sumA, 1},
		{"then started moves state", []step{{"summary", sumA}, {"started", nil}}, CellRunning, sumA, 2},
		{"attached while running", []step{{"started", nil}, {"summary", sumA}}, CellRunning, sumA, 2},
		{"attached after completed", []step{{"completed", obj{"exitCode": 0}}, {"summary", sumA}}, CellCompleted, sumA, 2},
		{"attached after failed", []step{{"failed", obj{"reason": "r"}}, {"summary", sumA}}, CellFailed, sumA, 2},
		{"attached after destroyed", []step{{"destroyed", nil}, {"summary", sumA}}, CellDestroyed, sumA, 2},
		{"replaced by a later summary", []step{{"summary", sumA}, {"started", nil}, {"summary", sumB}}, CellRunning, sumB, 3},
		{"older summary replaces too", []step{{"summary", sumB}, {"summary", sumA}}, CellAdmitted, sumA, 2},
		{"identical summary changes nothing", []step{{"summary", sumB}, {"started", nil}, {"summary", sumB}}, CellRunning, sumB, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, c := foldCell(t, tc.steps)
			if c.State != tc.state {
				t.Errorf("Cell(%q).State = %v, want %v", "c1", c.State, tc.state)
			}
			var got obj
			if err := json.Unmarshal(c.Compliance, &got); err != nil {
				t.Fatalf("Cell(%q).Compliance = %s: %v", "c1", c.Compliance, err)
			}
			want := obj{"cellId": "c1"} // doc.go: the whole data object
			for k, v := range tc.sum {
				want[k] = v
			}
			if g, w := jsonStr(got), jsonStr(want); g != w {
				t.Errorf("Cell(%q).Compliance = %v, want %v", "c1", g, w)
			}
			if c.LastSeq != tc.lastSeq {
				t.Errorf("Cell(%q).LastSeq = %v, want %v", "c1", c.LastSeq, tc.lastSeq)
			}
			if !c.CreatedAt.Equal(msgTime(1)) {
				t.Errorf("Cell(%q).CreatedAt = %v, want %v", "c1", c.CreatedAt, msgTime(1))
			}
		})
	}
}

// Fold rule 8: lastSeq and updatedAt move only with a change; createdAt is
// the creating event's time.
func TestCellTimestamps(t *testing.T) {
	p := fold(t,
		testutil.CEAt(tCell+"started", "2024-01-01T00:00:01Z", obj{"cellId": "c1"}),
		testutil.CEAt(tCell+"admitted", "2024-01-01T00:00:02Z", obj{"cellId": "c1"}),  // no-op
		testutil.CEAt(tCell+"started", "2024-01-01T00:00:03Z", obj{"cellId": "c1"}),   // no-op
		testutil.CEAt(tCell+"failed", "2024-01-01T00:00:04Z", obj{"cellId": "c1"}),    // change
		testutil.CEAt(tCell+"completed", "2024-01-01T00:00:05Z", obj{"cellId": "c1"}), // no-op
		testutil.CEAt(tCell+"admitted", "2024-01-01T00:00:06Z", obj{"cellId": "c2"}),  // other cell
	)
	c := mustCell(t, p, "c1")
	cases := []struct {
		field string
		got   any
		want  any
	}{
		{"CreatedAt", c.CreatedAt.Format(timeFmt), "2024-01-01T00:00:01Z"},
		{"UpdatedAt", c.UpdatedAt.Format(timeFmt), "2024-01-01T00:00:04Z"},
		{"LastSeq", c.LastSeq, uint64(4)},
	}
	for _, tc := range cases {
		t.Run(tc.field, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("Cell(%q).%s = %v, want %v", "c1", tc.field, tc.got, tc.want)
			}
		})
	}
}

const timeFmt = "2006-01-02T15:04:05Z07:00"

// Resource shape: exitCode null until set; absent strings are "", never null.
func TestCellJSONShape(t *testing.T) {
	p := fold(t, cellEv("admitted", "c1", nil), cellEv("completed", "c2", obj{"exitCode": 0}))
	cases := []struct {
		id   string
		want []string
		not  []string
	}{
		{"c1", []string{`"exitCode":null`, `"outcome":""`, `"reason":""`, `"formationId":""`, `"specId":""`, `"runId":""`, `"tenantId":""`, `"state":"admitted"`}, []string{`"compliance"`, `"correlation"`}},
		{"c2", []string{`"exitCode":0`, `"state":"completed"`, `"outcome":"completed"`}, nil},
	}
	for _, tc := range cases {
		testutil.CheckContains(t, fmt.Sprintf("json(Cell(%q))", tc.id), jsonStr(mustCell(t, p, tc.id)), tc.want, tc.not)
	}
}

// Fold v2, rule 3: the first completed or failed sets the outcome, which
// nothing changes afterwards — destroyed keeps it with the exit code and
// the reason.
func TestCellOutcome(t *testing.T) {
	cases := []struct {
		name    string
		steps   []step
		outcome string
	}{
		{"admitted", []step{{"admitted", nil}}, OutcomeNone},
		{"running", []step{{"admitted", nil}, {"started", nil}}, OutcomeNone},
		{"completed", []step{{"started", nil}, {"completed", obj{"exitCode": 0}}}, OutcomeCompleted},
		{"failed", []step{{"started", nil}, {"failed", obj{"reason": "oom-killed"}}}, OutcomeFailed},
		{"failed then destroyed", []step{{"started", nil}, {"failed", obj{"reason": "oom-killed"}}, {"destroyed", nil}}, OutcomeFailed},
		{"completed then destroyed", []step{{"completed", obj{"exitCode": 0}}, {"destroyed", nil}}, OutcomeCompleted},
		{"destroyed without either", []step{{"admitted", nil}, {"destroyed", nil}}, OutcomeNone},
		{"late failed after destroyed", []step{{"destroyed", nil}, {"failed", obj{"reason": "late"}}}, OutcomeNone},
		{"first wins: completed", []step{{"completed", nil}, {"failed", nil}, {"destroyed", nil}}, OutcomeCompleted},
		{"first wins: failed", []step{{"failed", nil}, {"completed", nil}, {"destroyed", nil}}, OutcomeFailed},
		{"summary does not set it", []step{{"summary", obj{"passed": 1}}}, OutcomeNone},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, c := foldCell(t, tc.steps)
			if c.Outcome != tc.outcome {
				t.Errorf("Cell(%q).Outcome = %q, want %q", "c1", c.Outcome, tc.outcome)
			}
		})
	}
	t.Run("destroyed keeps reason and exit code", func(t *testing.T) {
		_, c := foldCell(t, []step{{"failed", obj{"reason": "oom-killed"}}, {"destroyed", nil}})
		if c.State != CellDestroyed || c.Outcome != OutcomeFailed || c.Reason != "oom-killed" {
			t.Errorf("Cell = state %q outcome %q reason %q, want destroyed, failed, oom-killed", c.State, c.Outcome, c.Reason)
		}
	})
}
