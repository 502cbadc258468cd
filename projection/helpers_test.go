package projection

import (
	"cellos-allinone/testutil"
	"encoding/json"
	"fmt"
	"maps"
	"testing"
	"time"
)

// Full CloudEvent types of the v1 contract.
const (
	tFormation = "dev.cellos.events.formation.lifecycle.v1."
	tCell      = "dev.cellos.events.cell.lifecycle.v1."
	tSummary   = "dev.cellos.events.cell.compliance.v1.summary"
)

// base is the message-time origin: message n is stored at base + n seconds.
var base = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// msgTime is the JetStream storage time the helpers give sequence seq.
func msgTime(seq uint64) time.Time { return base.Add(time.Duration(seq) * time.Second) }

// obj is the data object (or any JSON object) of a test event.
type obj = map[string]any

// cellEv is a cell lifecycle event (phase "summary" gives a compliance
// summary) for cell id, with extra data fields merged in.
func cellEv(phase, id string, extra obj) []byte {
	d := obj{"cellId": id}
	maps.Copy(d, extra)
	if phase == "summary" {
		return testutil.CEAt(tSummary, "", d)
	}
	return testutil.CEAt(tCell+phase, "", d)
}

// formEv is a formation lifecycle event for formation id.
func formEv(phase, id string, extra obj) []byte {
	d := obj{"formationId": id}
	maps.Copy(d, extra)
	return testutil.CEAt(tFormation+phase, "", d)
}

// fold applies payloads as sequences 1..n, stored at msgTime(seq).
func fold(t testing.TB, payloads ...[]byte) *Projection {
	t.Helper()
	p := New()
	for i, pl := range payloads {
		seq := uint64(i + 1)
		if out := p.Apply(Message{Seq: seq, Time: msgTime(seq), Payload: pl}); out == Stale {
			t.Fatalf("Apply(seq %d) = %v on a fresh fold", seq, out)
		}
	}
	return p
}

func mustCell(t testing.TB, p *Projection, id string) Cell {
	t.Helper()
	c, ok := p.Cell(id)
	if !ok {
		t.Fatalf("Cell(%q) not found; dump %s", id, p.Dump())
	}
	return c
}

func mustFormation(t testing.TB, p *Projection, id string) (Formation, []Cell) {
	t.Helper()
	f, ok := p.Formation(id)
	if !ok {
		t.Fatalf("Formation(%q) not found; dump %s", id, p.Dump())
	}
	cells, _ := p.Cells(CellFilter{Formation: id}, Page{Limit: MaxLimit})
	return f, cells
}

// exitStr renders an exit code pointer for messages and comparisons.
func exitStr(p *int64) string {
	if p == nil {
		return "null"
	}
	return fmt.Sprint(*p)
}

func i64(n int64) *int64 { return &n }

// jsonStr is the JSON encoding of v, for comparisons of whole values.
func jsonStr(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "!" + err.Error()
	}
	return string(b)
}

// recorder is a State over a Projection that counts what the fold saves:
// an event that changes nothing must save nothing.
type recorder struct {
	*Projection
	saves int
}

func (r *recorder) SaveCell(c Cell)           { r.saves++; r.Projection.SaveCell(c) }
func (r *recorder) SaveFormation(f Formation) { r.saves++; r.Projection.SaveFormation(f) }

// apply folds m through the recorder.
func (r *recorder) apply(m Message) Outcome {
	var dec Decoder
	out, _ := Apply(r, dec.Decode(m))
	return out
}
