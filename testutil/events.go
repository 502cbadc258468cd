package testutil

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"cellos-allinone/event"
)

// Type prefixes of the v1 contract.
const (
	FormationType  = event.FormationPrefix
	CellType       = event.CellPrefix
	ComplianceType = event.ComplianceType
)

var idSeq atomic.Uint64

// Event is a CloudEvent with its subject, ready to publish.
type Event struct {
	Subject string
	Payload []byte
}

// CE builds a CloudEvents 1.0 JSON payload of type typ with data, a unique
// id and the given time (zero time: no time attribute).
func CE(typ string, data map[string]any, at time.Time) []byte {
	ev := map[string]any{
		"specversion":     "1.0",
		"id":              fmt.Sprintf("ev-%d-%d", time.Now().UnixNano(), idSeq.Add(1)),
		"source":          "/test/supervisor",
		"type":            typ,
		"datacontenttype": "application/json",
		"data":            data,
	}
	if !at.IsZero() {
		ev["time"] = at.UTC().Format(time.RFC3339Nano)
	}
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	return b
}

// Formation is a formation lifecycle event (phase: created, running, …).
func Formation(id, phase string, extra map[string]any) Event {
	data := map[string]any{"formationId": id}
	for k, v := range extra {
		data[k] = v
	}
	return Event{
		Subject: event.Subject(event.KindFormation, id, phase),
		Payload: CE(FormationType+phase, data, time.Time{}),
	}
}

// Cell is a cell lifecycle event (phase: admitted, started, completed, …).
func Cell(id, phase string, extra map[string]any) Event {
	data := map[string]any{"cellId": id}
	for k, v := range extra {
		data[k] = v
	}
	typ := CellType + phase
	if phase == "summary" {
		typ = ComplianceType
	}
	return Event{
		Subject: event.Subject(event.KindCell, id, phase),
		Payload: CE(typ, data, time.Time{}),
	}
}

// Raw is an arbitrary payload on a cell subject (malformed or unknown events).
func Raw(payload string) Event {
	return Event{Subject: "cellos.events.cell.raw.x", Payload: []byte(payload)}
}

// Workload returns n events describing formations of ten cells each going
// through their whole life, with a few unknown and malformed events mixed
// in: a realistic, deterministic mix.
func Workload(n int) []Event {
	out := make([]Event, 0, n)
	for f := 0; len(out) < n; f++ {
		fid := fmt.Sprintf("f-%05d", f)
		tenant := fmt.Sprintf("tenant-%d", f%3)
		out = append(out, Formation(fid, "created", map[string]any{"name": "formation " + fid, "tenantId": tenant}))
		out = append(out, Formation(fid, "launching", nil), Formation(fid, "running", nil))
		for c := 0; c < 10; c++ {
			cid := fmt.Sprintf("%s-c%02d", fid, c)
			meta := map[string]any{"formationId": fid, "tenantId": tenant, "specId": "spec-" + fid, "runId": "run-1"}
			out = append(out, Cell(cid, "admitted", meta), Cell(cid, "started", nil))
			if c%4 == 3 {
				out = append(out, Cell(cid, "failed", map[string]any{"reason": "oom"}))
			} else {
				out = append(out, Cell(cid, "completed", map[string]any{"exitCode": c % 2}))
			}
			out = append(out, Cell(cid, "summary", map[string]any{"passed": 12, "failed": c % 3}), Cell(cid, "destroyed", nil))
		}
		out = append(out, Formation(fid, "completed", nil))
		if f%7 == 0 {
			out = append(out, Event{Subject: "cellos.events.formation." + fid + ".audit",
				Payload: CE("dev.cellos.events.formation.audit.v1.note", map[string]any{"formationId": fid}, time.Time{})})
		}
		if f%11 == 0 {
			out = append(out, Raw(strings.Repeat("x", 20)))
		}
	}
	return out[:n]
}

// InTenant is e published in the tenant form of its subject,
// cellos.events.<tenant>.<entity>.<id>.<phase> (docs/design.md §2), as a
// tenant's producer stores it.
func InTenant(tenant string, e Event) Event {
	e.Subject = event.SubjectPrefix + tenant + "." + strings.TrimPrefix(e.Subject, event.SubjectPrefix)
	return e
}
