package projection

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"
)

// goldenLog is a tiny fixed log whose state hash is pinned below: every
// kind of field has a value, there is a tombstone with a cell, and a
// formation with labels.
func goldenLog(t testing.TB) *Projection {
	return fold(t,
		formEv("created", "f-1", obj{"name": "build", "tenantId": "acme", "labels": obj{"zone": "b", "arch": "arm64"}}),
		formEv("running", "f-1", nil),
		cellEv("admitted", "c-1", obj{"formationId": "f-1", "specId": "s-1", "runId": "r-1", "correlation": obj{"trace": "t-9", "tenantId": "acme"}}),
		cellEv("started", "c-1", nil),
		cellEv("completed", "c-1", obj{"exitCode": 0}),
		cellEv("summary", "c-1", obj{"passed": true, "checks": 3}),
		formEv("created", "f-2", nil),
		cellEv("failed", "c-2", obj{"formationId": "f-2", "reason": "oom"}),
		formEv("deleted", "f-2", nil),
		cellEv("admitted", "c-3", nil),
	)
}

// The value is pinned: an encoding that changes by accident (a field
// moved, another integer width, map order leaking in) fails here. A
// deliberate change is a new HashVersion, and a new golden value.
func TestHashGolden(t *testing.T) {
	const golden = "85a0e3c97497373525ec2edf1e38e160f5253e294d54866fd269d17848b4acab"
	p := goldenLog(t)
	h, err := Hash(p)
	if err != nil {
		t.Fatal(err)
	}
	want := StateHash{Version: "cellos-state-hash/v1", Cursor: 10, Value: golden, Formations: 2, Cells: 3}
	if h != want {
		t.Fatalf("Hash(golden log) = %+v\nwant %+v", h, want)
	}
}

// Any change of one field of one entity, or of the cursor, changes the
// hash, and FirstDifference names the entity.
func TestHashChangesWithEveryField(t *testing.T) {
	p := goldenLog(t)
	base, _ := Hash(p)
	if again, _ := Hash(FromRegistry(p.Registry(), *p.Meta())); again != base {
		t.Fatalf("a copy of the registry hashes %s, the fold %s", again.Value, base.Value)
	}
	exit := int64(7)
	formations := map[string]func(*Formation){
		"name":      func(f *Formation) { f.Name += "x" },
		"tenantId":  func(f *Formation) { f.TenantID = "other" },
		"status":    func(f *Formation) { f.Status = FormationDegraded },
		"label":     func(f *Formation) { f.Labels = map[string]string{"zone": "c", "arch": "arm64"} },
		"label key": func(f *Formation) { f.Labels = map[string]string{"zone": "b", "archx": "arm64"} },
		"no labels": func(f *Formation) { f.Labels = nil },
		// Cells is derived from the cells held; PrunedCells is what
		// the served counts add.
		"counts":    func(f *Formation) { f.PrunedCells.Total++ },
		"createdAt": func(f *Formation) { f.CreatedAt = f.CreatedAt.Add(time.Nanosecond) },
		"updatedAt": func(f *Formation) { f.UpdatedAt = f.UpdatedAt.Add(time.Second) },
		"lastSeq":   func(f *Formation) { f.LastSeq++ },
		"deleted":   func(f *Formation) { f.Deleted = true },
		"firstSeq":  func(f *Formation) { f.FirstSeq++ },
		"lastEvent": func(f *Formation) { f.LastEvent++ },
	}
	cells := map[string]func(*Cell){
		"formationId": func(c *Cell) { c.FormationID = "f-2" },
		"tenantId":    func(c *Cell) { c.TenantID = "" },
		"specId":      func(c *Cell) { c.SpecID = "s-2" },
		"runId":       func(c *Cell) { c.RunID = "" },
		"state":       func(c *Cell) { c.State = CellDestroyed },
		"outcome":     func(c *Cell) { c.Outcome = OutcomeFailed },
		"exitCode":    func(c *Cell) { c.ExitCode = &exit },
		"no exitCode": func(c *Cell) { c.ExitCode = nil },
		"reason":      func(c *Cell) { c.Reason = "x" },
		"correlation": func(c *Cell) { c.Correlation = json.RawMessage(`{"trace":"t-8","tenantId":"acme"}`) },
		"compliance":  func(c *Cell) { c.Compliance = nil },
		"createdAt":   func(c *Cell) { c.CreatedAt = c.CreatedAt.Add(-time.Nanosecond) },
		"updatedAt":   func(c *Cell) { c.UpdatedAt = time.Time{} },
		"lastSeq":     func(c *Cell) { c.LastSeq-- },
		"firstSeq":    func(c *Cell) { c.FirstSeq-- },
		"lastEvent":   func(c *Cell) { c.LastEvent++ },
	}
	check := func(what, entity string, changed *Projection) {
		t.Helper()
		h, err := Hash(changed)
		if err != nil {
			t.Fatal(err)
		}
		if h.Value == base.Value {
			t.Errorf("%s: the hash did not change", what)
		}
		if d, _ := FirstDifference(p, changed); !strings.Contains(d, entity) {
			t.Errorf("%s: FirstDifference = %q, want it to name %s", what, d, entity)
		}
	}
	for name, change := range formations {
		r := p.Registry()
		f := r.Formations["f-1"]
		f.Labels = maps.Clone(f.Labels)
		change(&f)
		r.Formations["f-1"] = f
		check("formation "+name, "formation f-1", FromRegistry(r, *p.Meta()))
	}
	for name, change := range cells {
		r := p.Registry()
		c := r.Cells["c-1"]
		change(&c)
		r.Cells["c-1"] = c
		// What moves the cell in its formation's counts changes the
		// formation first, in the order of the walk.
		entity := "cell c-1"
		if name == "state" || name == "outcome" || name == "formationId" {
			entity = "formation f-"
		}
		check("cell "+name, entity, FromRegistry(r, *p.Meta()))
	}
	// The tombstone is hashed: a deletion must compare.
	r := p.Registry()
	delete(r.Formations, "f-2")
	check("no tombstone", "formation f-2", FromRegistry(r, *p.Meta()))
	r = p.Registry()
	delete(r.Cells, "c-3")
	check("a cell less", "cell c-3", FromRegistry(r, *p.Meta()))
	r = p.Registry()
	r.Cells["c-0"] = Cell{ID: "c-0", State: CellAdmitted}
	check("a cell more", "cell c-0", FromRegistry(r, *p.Meta()))
	m := *p.Meta()
	m.Cursor++
	check("cursor", "cursor", FromRegistry(p.Registry(), m))
}

// The hash is of the entities alone: the event counters, the id of the
// message at the cursor and the gaps are not in it, nor is the order in
// which the state came to hold its entities.
func TestHashOfTheRegistryOnly(t *testing.T) {
	p := goldenLog(t)
	base, _ := Hash(p)
	m := *p.Meta()
	m.CursorID, m.Counters.Applied, m.Gaps = "other", 99, []Gap{{From: 1, To: 2}}
	if h, _ := Hash(FromRegistry(p.Registry(), m)); h != base {
		t.Errorf("with other counters: %+v, want %+v", h, base)
	}
}

// The encoding is the one docs/design.md §5 documents, written here
// again from the document alone (not from hash.go), for a registry with
// one of everything: what another implementation would compute.
func TestHashEncodingAsDocumented(t *testing.T) {
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	exit := int64(-3)
	f := Formation{ID: "f-1", Name: "build", TenantID: "acme", Status: FormationCancelled, Labels: map[string]string{"zone": "b", "arch": "arm64"},
		CreatedAt: at("2025-03-01T12:00:00.5+01:00"), UpdatedAt: at("1969-12-31T23:59:59Z"), LastSeq: 7, Deleted: true,
		Span: Span{FirstSeq: 2, LastEvent: 9}}
	c := Cell{ID: "c-1", FormationID: "f-1", TenantID: "acme", SpecID: "s", RunID: "", State: CellFailed, Outcome: OutcomeFailed,
		ExitCode: &exit, Reason: "oom", Correlation: json.RawMessage(`{"trace":"t"}`),
		CreatedAt: at("2025-03-01T12:00:01Z"), UpdatedAt: at("2025-03-01T12:00:02.000000001Z"), LastSeq: 8, Span: Span{FirstSeq: 3, LastEvent: 8}}
	p := FromRegistry(Registry{Formations: map[string]Formation{f.ID: f}, Cells: map[string]Cell{c.ID: c}}, Meta{Cursor: 12})

	var b bytes.Buffer
	u32 := func(n uint32) { binary.Write(&b, binary.BigEndian, n) }
	u64 := func(n uint64) { binary.Write(&b, binary.BigEndian, n) }
	i64 := func(n int64) { binary.Write(&b, binary.BigEndian, n) }
	str := func(s string) { u32(uint32(len(s))); b.WriteString(s) }
	tm := func(t time.Time) { i64(t.Unix()); u32(uint32(t.Nanosecond())) }
	str("cellos-state-hash/v1")
	u64(12)
	b.WriteByte('F')
	str("f-1")
	str("build")
	str("acme")
	str("cancelled")
	u32(2)
	str("arch")
	str("arm64")
	str("zone")
	str("b")
	for _, n := range []int64{1, 0, 0, 0, 1, 0} { // the cell: total 1, failed 1
		i64(n)
	}
	tm(f.CreatedAt)
	tm(f.UpdatedAt)
	u64(7)
	b.WriteByte(1)
	u64(2)
	u64(9)
	b.WriteByte('C')
	for _, s := range []string{"c-1", "f-1", "acme", "s", "", "failed", "failed"} {
		str(s)
	}
	b.WriteByte(1)
	i64(-3)
	str("oom")
	str(`{"trace":"t"}`)
	str("")
	tm(c.CreatedAt)
	tm(c.UpdatedAt)
	u64(8)
	u64(3)
	u64(8)
	b.WriteByte('E')
	u64(1)
	u64(1)
	want := sha256.Sum256(b.Bytes())

	h, err := Hash(p)
	if err != nil {
		t.Fatal(err)
	}
	if h.Value != hex.EncodeToString(want[:]) || h.Formations != 1 || h.Cells != 1 || h.Cursor != 12 {
		t.Fatalf("Hash = %+v, want the documented encoding's %x", h, want)
	}
}

// cancelAfterFirst is a Projection whose walk cancels a context at its
// first formation: a hash asked to stop while it reads.
type cancelAfterFirst struct {
	*Projection
	cancel  context.CancelFunc
	visited int
}

func (c *cancelAfterFirst) EachFormation(fn func(Formation) error) error {
	return c.Projection.EachFormation(func(f Formation) error {
		c.visited++
		c.cancel()
		return fn(f)
	})
}

// A hash stops soon after its context is done (a shutdown does not wait
// for all of a large state), with the context's error and no value.
func TestHashContextStops(t *testing.T) {
	evs := make([][]byte, 3*hashCheckEvery)
	for i := range evs {
		evs[i] = formEv("created", fmt.Sprintf("f-%06d", i), nil)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &cancelAfterFirst{Projection: fold(t, evs...), cancel: cancel}
	h, err := HashContext(ctx, w)
	if !errors.Is(err, context.Canceled) || h != (StateHash{}) {
		t.Fatalf("HashContext, cancelled during the walk = %+v, %v; want context.Canceled", h, err)
	}
	if w.visited > hashCheckEvery {
		t.Fatalf("the walk went on for %d formations after the cancel, want at most %d", w.visited, hashCheckEvery)
	}
	if _, err := HashContext(ctx, w.Projection); !errors.Is(err, context.Canceled) {
		t.Fatalf("HashContext, cancelled before = %v, want context.Canceled", err)
	}
	if h, err := Hash(w.Projection); err != nil || h.Formations != len(evs) {
		t.Fatalf("Hash = %+v, %v; want all %d formations", h, err, len(evs))
	}
}
