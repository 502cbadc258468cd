package store

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"cellos-allinone/projection"
	"cellos-allinone/testutil"
)

// The tenant rules of fold v3 (docs/design.md §3), run against both States
// — the in-memory Projection and a Batch of this package — with equal
// results. A Batch commits after every event, after every second one, or
// only at the end, so that a formation's cells are found through the
// committed index, through what joined it since the last commit, and both.

type obj = map[string]any

// step is one stored event and what Apply must say of it.
type step struct {
	subject string
	payload []byte
	out     projection.Outcome
	why     projection.Rejection
	// prune, when not 0, makes the step no event but a prune at this
	// floor (prune_test.go).
	prune uint64
}

// subjectOf is an event's subject; tenant "" is the untenanted form.
func subjectOf(tenant, entity, id, phase string) string {
	if tenant == "" {
		return "cellos.events." + entity + "." + id + "." + phase
	}
	return "cellos.events." + tenant + "." + entity + "." + id + "." + phase
}

// cellStep is a cell event (phase "summary": a compliance summary)
// published under tenant's sub-tree, or untenanted for "".
func cellStep(tenant, phase, id string, data obj) step {
	d := obj{"cellId": id}
	for k, v := range data {
		d[k] = v
	}
	typ := testutil.CellType + phase
	if phase == "summary" {
		typ = testutil.ComplianceType
	}
	return step{subject: subjectOf(tenant, "cell", id, phase), payload: testutil.CEAt(typ, "", d), out: projection.Applied}
}

// formStep is a formation event.
func formStep(tenant, phase, id string, data obj) step {
	d := obj{"formationId": id}
	for k, v := range data {
		d[k] = v
	}
	return step{subject: subjectOf(tenant, "formation", id, phase), payload: testutil.CEAt(testutil.FormationType+phase, "", d), out: projection.Applied}
}

// rejected is s, expected to be rejected by rule why.
func (s step) rejected(why projection.Rejection) step {
	s.out, s.why = projection.Rejected, why
	return s
}

// at is s stored under another subject.
func (s step) at(subject string) step {
	s.subject = subject
	return s
}

// stepTime is when JetStream stored event seq; the events carry no time
// of their own, so it is also their updatedAt.
func stepTime(seq uint64) time.Time { return time.Unix(1700000000+int64(seq), 0).UTC() }

// entity is what a case expects of a cell (state) or a live formation
// (status); nil: not there (a formation: not live).
type entity struct {
	tenant, state string
	lastSeq       uint64
}

func is(tenant, state string, lastSeq uint64) *entity { return &entity{tenant, state, lastSeq} }

type tenantCase struct {
	name       string
	steps      []step
	cells      map[string]*entity
	formations map[string]*entity
	counters   projection.Counters
}

func untenanted(kv ...any) map[string]uint64 {
	m := map[string]uint64{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = uint64(kv[i+1].(int))
	}
	return m
}

const (
	bySubject   = projection.RejectedSubjectTenant
	byEntity    = projection.RejectedEntityTenant
	byFormation = projection.RejectedFormationTenant
)

func tenantCases() []tenantCase {
	f1 := obj{"formationId": "f1"}
	return []tenantCase{
		// Rule a: the subject's tenant is the server's word.
		{name: "a: data.tenantId of another tenant than the subject's",
			steps: []step{cellStep("t0", "admitted", "c1", obj{"tenantId": "t1"}).rejected(bySubject)},
			cells: map[string]*entity{"c1": nil}, counters: projection.Counters{Rejected: 1}},
		{name: "a: data.correlation.tenantId of another tenant",
			steps: []step{cellStep("t0", "admitted", "c1", obj{"correlation": obj{"tenantId": "t1"}}).rejected(bySubject)},
			cells: map[string]*entity{"c1": nil}, counters: projection.Counters{Rejected: 1}},
		{name: "a: data.tenantId agrees, correlation does not",
			steps: []step{cellStep("t0", "admitted", "c1", obj{"tenantId": "t0", "correlation": obj{"tenantId": "t1"}}).rejected(bySubject)},
			cells: map[string]*entity{"c1": nil}, counters: projection.Counters{Rejected: 1}},
		{name: "a: data that agrees applies",
			steps: []step{cellStep("t0", "admitted", "c1", obj{"tenantId": "t0", "correlation": obj{"tenantId": "t0"}})},
			cells: map[string]*entity{"c1": is("t0", "admitted", 1)}, counters: projection.Counters{Applied: 1}},
		{name: "a: the subject's tenant without data",
			steps: []step{cellStep("t0", "admitted", "c1", nil)},
			cells: map[string]*entity{"c1": is("t0", "admitted", 1)}, counters: projection.Counters{Applied: 1}},
		{name: "a: a formation event",
			steps:      []step{formStep("t0", "created", "f1", obj{"tenantId": "t1"}).rejected(bySubject)},
			formations: map[string]*entity{"f1": nil}, counters: projection.Counters{Rejected: 1}},
		{name: "a: an odd subject is judged as its tenant's",
			steps: []step{
				cellStep("", "admitted", "c1", obj{"tenantId": "t1"}).at("cellos.events.t0.odd").rejected(bySubject),
				cellStep("", "admitted", "c2", nil).at("cellos.events.t0"),
			},
			cells: map[string]*entity{"c1": nil, "c2": is("t0", "admitted", 2)}, counters: projection.Counters{Applied: 1, Rejected: 1}},
		{name: "a: an unknown type is ignored, not rejected",
			steps: []step{{subject: "cellos.events.t0.cell.c1.paused", payload: testutil.CEAt(testutil.CellType+"paused", "", obj{"cellId": "c1", "tenantId": "t1"}), out: projection.Ignored}},
			cells: map[string]*entity{"c1": nil}, counters: projection.Counters{Ignored: 1}},

		// Rule b: an entity's tenant never changes.
		{name: "b: a cell of another tenant",
			steps: []step{cellStep("t0", "admitted", "c1", nil), cellStep("t1", "started", "c1", nil).rejected(byEntity)},
			cells: map[string]*entity{"c1": is("t0", "admitted", 1)}, counters: projection.Counters{Applied: 1, Rejected: 1}},
		{name: "b: another tenant declared in an untenanted event",
			steps: []step{
				cellStep("", "admitted", "c1", obj{"tenantId": "t0"}),
				cellStep("", "failed", "c1", obj{"tenantId": "t1", "reason": "x"}).rejected(byEntity),
			},
			cells:    map[string]*entity{"c1": is("t0", "admitted", 1)},
			counters: projection.Counters{Applied: 1, Rejected: 1, UntenantedOfTenant: untenanted("t0", 1, "t1", 1)}},
		{name: "b: an event without a tenant makes no claim",
			steps:    []step{cellStep("t0", "admitted", "c1", nil), cellStep("", "started", "c1", nil)},
			cells:    map[string]*entity{"c1": is("t0", "running", 2)},
			counters: projection.Counters{Applied: 2, UntenantedOfTenant: untenanted("t0", 1)}},
		{name: "b: a formation of another tenant",
			steps: []step{
				formStep("t0", "created", "f1", nil),
				formStep("t1", "running", "f1", nil).rejected(byEntity),
				formStep("", "failed", "f1", obj{"correlation": obj{"tenantId": "t1"}}).rejected(byEntity),
			},
			formations: map[string]*entity{"f1": is("t0", "created", 1)},
			counters:   projection.Counters{Applied: 1, Rejected: 2, UntenantedOfTenant: untenanted("t1", 1)}},
		{name: "b: another tenant cannot delete a formation",
			steps:      []step{formStep("t0", "created", "f1", nil), formStep("t1", "deleted", "f1", nil).rejected(byEntity)},
			formations: map[string]*entity{"f1": is("t0", "created", 1)}, counters: projection.Counters{Applied: 1, Rejected: 1}},
		{name: "b: a tombstone keeps its tenant",
			steps: []step{
				formStep("t0", "created", "f1", nil),
				formStep("t0", "deleted", "f1", nil),
				formStep("t1", "created", "f1", nil).rejected(byEntity),
				formStep("t0", "running", "f1", nil), // a no-op on the tombstone
			},
			formations: map[string]*entity{"f1": nil}, counters: projection.Counters{Applied: 3, Rejected: 1}},
		{name: "b: an inherited tenant is the cell's",
			steps: []step{
				formStep("t0", "created", "f1", nil),
				cellStep("", "admitted", "c1", f1),
				cellStep("t1", "destroyed", "c1", nil).rejected(byEntity),
			},
			cells:    map[string]*entity{"c1": is("t0", "admitted", 2)},
			counters: projection.Counters{Applied: 2, Rejected: 1, UntenantedOfTenant: untenanted("t0", 1)}},

		// Rule c: a cell cannot name a formation of another tenant.
		{name: "c: a new cell naming another tenant's formation",
			steps:      []step{formStep("t0", "created", "f1", nil), cellStep("t1", "admitted", "c1", f1).rejected(byFormation)},
			cells:      map[string]*entity{"c1": nil},
			formations: map[string]*entity{"f1": is("t0", "created", 1)},
			counters:   projection.Counters{Applied: 1, Rejected: 1}},
		{name: "c: a tombstone of another tenant",
			steps: []step{
				formStep("t0", "deleted", "f1", nil),
				cellStep("", "admitted", "c1", obj{"formationId": "f1", "tenantId": "t1"}).rejected(byFormation),
			},
			cells: map[string]*entity{"c1": nil}, counters: projection.Counters{Applied: 1, Rejected: 1, UntenantedOfTenant: untenanted("t1", 1)}},
		{name: "c: the cell's own tenant when the event claims none",
			steps: []step{
				cellStep("t1", "admitted", "c1", nil),
				formStep("t0", "created", "f1", nil),
				cellStep("", "started", "c1", f1).rejected(byFormation),
			},
			cells:    map[string]*entity{"c1": is("t1", "admitted", 1)},
			counters: projection.Counters{Applied: 2, Rejected: 1, UntenantedOfTenant: untenanted("t1", 1)}},
		{name: "c: a cell of another formation still may not name it",
			steps: []step{
				cellStep("t1", "admitted", "c1", obj{"formationId": "f2"}),
				formStep("t0", "created", "f1", nil),
				cellStep("t1", "started", "c1", f1).rejected(byFormation),
			},
			cells: map[string]*entity{"c1": is("t1", "admitted", 1)}, counters: projection.Counters{Applied: 2, Rejected: 1}},
		{name: "c: a cell of the formation's tenant joins it",
			steps: []step{formStep("t0", "created", "f1", nil), cellStep("t0", "admitted", "c1", f1)},
			cells: map[string]*entity{"c1": is("t0", "admitted", 2)}, counters: projection.Counters{Applied: 2}},
		{name: "c: a formation without a tenant takes a cell of any",
			steps:      []step{formStep("", "created", "f1", nil), cellStep("t1", "admitted", "c1", f1)},
			cells:      map[string]*entity{"c1": is("t1", "admitted", 2)},
			formations: map[string]*entity{"f1": is("", "created", 1)},
			counters:   projection.Counters{Applied: 2}},

		// Rule 4: a cell without a tenant of its own takes its formation's.
		{name: "inherit: at creation",
			steps:    []step{formStep("t0", "created", "f1", nil), cellStep("", "admitted", "c1", f1)},
			cells:    map[string]*entity{"c1": is("t0", "admitted", 2)},
			counters: projection.Counters{Applied: 2, UntenantedOfTenant: untenanted("t0", 1)}},
		{name: "inherit: at creation by a compliance summary",
			steps:    []step{formStep("t0", "created", "f1", nil), cellStep("", "summary", "c1", f1)},
			cells:    map[string]*entity{"c1": is("t0", "admitted", 2)},
			counters: projection.Counters{Applied: 2, UntenantedOfTenant: untenanted("t0", 1)}},
		{name: "inherit: on getting its formationId",
			steps: []step{
				formStep("t0", "created", "f1", nil),
				cellStep("", "admitted", "c1", nil),
				cellStep("", "started", "c1", f1),
			},
			cells:    map[string]*entity{"c1": is("t0", "running", 3)},
			counters: projection.Counters{Applied: 3, UntenantedOfTenant: untenanted("t0", 1)}},
		{name: "inherit: when the formation gets its first tenant later",
			steps: []step{
				cellStep("", "admitted", "c1", f1),
				cellStep("", "started", "c2", f1),
				cellStep("t1", "admitted", "c3", f1), // has its own tenant
				cellStep("", "admitted", "c4", obj{"formationId": "f2"}),
				formStep("", "created", "f1", nil),
				formStep("t0", "running", "f1", nil),
				// c3 keeps t1, and its events may not name f1 any more.
				cellStep("t1", "started", "c3", f1).rejected(byFormation),
			},
			cells: map[string]*entity{
				"c1": is("t0", "admitted", 1), "c2": is("t0", "running", 2),
				"c3": is("t1", "admitted", 3), "c4": is("", "admitted", 4),
			},
			formations: map[string]*entity{"f1": is("t0", "running", 6)},
			counters:   projection.Counters{Applied: 6, Rejected: 1}},
		{name: "inherit: when the formation is created with a declared tenant",
			steps:      []step{cellStep("", "admitted", "c1", f1), formStep("", "created", "f1", obj{"tenantId": "t0"})},
			cells:      map[string]*entity{"c1": is("t0", "admitted", 1)},
			formations: map[string]*entity{"f1": is("t0", "created", 2)},
			counters:   projection.Counters{Applied: 2, UntenantedOfTenant: untenanted("t0", 1)}},
		{name: "inherit: the formation's subject gives the tenant",
			steps:    []step{cellStep("", "admitted", "c1", f1), formStep("t0", "created", "f1", nil)},
			cells:    map[string]*entity{"c1": is("t0", "admitted", 1)},
			counters: projection.Counters{Applied: 2}},
		{name: "inherit: a tombstone's tenant",
			steps: []step{
				cellStep("", "admitted", "c1", f1),
				formStep("t0", "deleted", "f1", nil), // the tombstone's first tenant
				cellStep("", "admitted", "c2", f1),
			},
			cells:      map[string]*entity{"c1": is("t0", "admitted", 1), "c2": is("t0", "admitted", 3)},
			formations: map[string]*entity{"f1": nil},
			counters:   projection.Counters{Applied: 3, UntenantedOfTenant: untenanted("t0", 1)}},
		{name: "inherit: once, never changed",
			steps: []step{
				formStep("t0", "created", "f1", nil),
				cellStep("", "admitted", "c1", f1),
				cellStep("t1", "started", "c1", nil).rejected(byEntity),
				cellStep("", "started", "c1", obj{"tenantId": "t0"}),
			},
			cells:    map[string]*entity{"c1": is("t0", "running", 4)},
			counters: projection.Counters{Applied: 3, Rejected: 1, UntenantedOfTenant: untenanted("t0", 2)}},
	}
}

func TestTenantRules(t *testing.T) {
	for _, tc := range tenantCases() {
		t.Run(tc.name, func(t *testing.T) {
			mem := projection.New()
			applySteps(t, "Projection", mem, tc.steps, nil)
			checkTenantCase(t, "Projection", mem, tc)
			for _, every := range []int{1, 2, 0} {
				name := fmt.Sprintf("Batch committing every %d", every)
				s := mustOpen(t, filepath.Join(t.TempDir(), "cp.db"))
				if err := s.Reset("e"); err != nil {
					t.Fatal(err)
				}
				b, err := s.Batch()
				if err != nil {
					t.Fatal(err)
				}
				applySteps(t, name, b, tc.steps, func(seq int) {
					if every > 0 && seq%every == 0 {
						if err := b.Commit(time.Now()); err != nil {
							t.Fatal(err)
						}
					}
				})
				if err := b.Commit(time.Now()); err != nil {
					t.Fatal(err)
				}
				b.Close()
				sameAs(t, s, mem)
				err = s.View(func(v *View) error {
					checkTenantCase(t, name, v, tc)
					if d := v.Check(10); len(d) != 0 {
						t.Errorf("%s: Check() = %q, want nothing", name, d)
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// applySteps applies steps as sequences 1..n to st, calling after (if
// set) after each.
func applySteps(t *testing.T, name string, st projection.State, steps []step, after func(seq int)) {
	t.Helper()
	var dec projection.Decoder
	for i, s := range steps {
		seq := uint64(i + 1)
		out, why := projection.Apply(st, dec.Decode(projection.Message{Seq: seq, Subject: s.subject, Time: stepTime(seq), Payload: s.payload}))
		if out != s.out || why != s.why {
			t.Errorf("%s: Apply(seq %d, %s %s) = %v %q, want %v %q", name, seq, s.subject, s.payload, out, why, s.out, s.why)
		}
		if after != nil {
			after(int(seq))
		}
	}
}

func checkTenantCase(t *testing.T, name string, r projection.Reader, tc tenantCase) {
	t.Helper()
	for id, want := range tc.cells {
		c, ok := r.Cell(id)
		switch {
		case want == nil && ok:
			t.Errorf("%s: Cell(%q) = %+v, want none", name, id, c)
		case want == nil:
		case !ok:
			t.Errorf("%s: Cell(%q) not found, want %+v", name, id, *want)
		case c.TenantID != want.tenant || c.State != want.state || c.LastSeq != want.lastSeq || !c.UpdatedAt.Equal(stepTime(want.lastSeq)):
			t.Errorf("%s: Cell(%q) = tenant %q, state %s, lastSeq %d, updatedAt %v; want %q, %s, %d, %v", name, id,
				c.TenantID, c.State, c.LastSeq, c.UpdatedAt, want.tenant, want.state, want.lastSeq, stepTime(want.lastSeq))
		}
	}
	for id, want := range tc.formations {
		f, ok := r.Formation(id)
		switch {
		case want == nil && ok:
			t.Errorf("%s: Formation(%q) = %+v, want none", name, id, f)
		case want == nil:
		case !ok:
			t.Errorf("%s: Formation(%q) not found, want %+v", name, id, *want)
		case f.TenantID != want.tenant || f.Status != want.state || f.LastSeq != want.lastSeq:
			t.Errorf("%s: Formation(%q) = tenant %q, status %s, lastSeq %d; want %q, %s, %d", name, id,
				f.TenantID, f.Status, f.LastSeq, want.tenant, want.state, want.lastSeq)
		}
	}
	if got := r.Counters(); !got.Equal(tc.counters) {
		t.Errorf("%s: Counters() = %+v, want %+v", name, got, tc.counters)
	}
}

// The untenanted-form counter names at most MaxUntenantedTenants tenants,
// the first met; the others count under the overflow key. The store keeps
// it as the fold does, across a reopen.
func TestUntenantedOfTenantIsBounded(t *testing.T) {
	const extra = 3
	var steps []step
	for i := range projection.MaxUntenantedTenants + extra {
		steps = append(steps, cellStep("", "admitted", fmt.Sprintf("c%d", i), obj{"tenantId": fmt.Sprintf("t%d", i)}))
	}
	steps = append(steps, cellStep("", "started", "c0", nil), cellStep("t0", "destroyed", "c0", nil))
	mem := projection.New()
	applySteps(t, "Projection", mem, steps, nil)
	got := mem.Counters().UntenantedOfTenant
	if len(got) != projection.MaxUntenantedTenants+1 || got[projection.UntenantedOverflow] != extra || got["t0"] != 2 || got["t999"] != 1 {
		t.Fatalf("UntenantedOfTenant has %d keys, %q: %d, t0: %d, t999: %d; want %d, %d, 2, 1", len(got),
			projection.UntenantedOverflow, got[projection.UntenantedOverflow], got["t0"], got["t999"], projection.MaxUntenantedTenants+1, extra)
	}

	path := filepath.Join(t.TempDir(), "cp.db")
	s := mustOpen(t, path)
	if err := s.Reset("e"); err != nil {
		t.Fatal(err)
	}
	b, err := s.Batch()
	if err != nil {
		t.Fatal(err)
	}
	applySteps(t, "Batch", b, steps, nil)
	if err := b.Commit(time.Now()); err != nil {
		t.Fatal(err)
	}
	b.Close()
	s.Close()
	sameAs(t, mustOpen(t, path), mem)
}
