package projection

import (
	"testing"
	"time"

	"cellos-allinone/event"
	"cellos-allinone/testutil"
)

func fuzzSeeds() [][]byte {
	return [][]byte{
		cellEv("admitted", "c1", obj{"formationId": "f1", "specId": "s", "runId": "r", "correlation": obj{"tenantId": "t"}}),
		cellEv("started", "c1", nil),
		cellEv("completed", "c2", obj{"exitCode": 0}),
		cellEv("completed", "c2", obj{"exitCode": nil}),
		cellEv("failed", "c1", obj{"reason": "oom"}),
		cellEv("destroyed", "c1", nil),
		cellEv("summary", "c3", obj{"passed": true, "note": "<&>"}),
		formEv("created", "f1", obj{"name": "n", "tenantId": "t", "labels": obj{"a": "b"}}),
		formEv("degraded", "f2", nil),
		formEv("deleted", "f1", nil),
		testutil.CEAt(tCell+"started", "0000-01-01T00:00:00+00:30", obj{"cellId": "c4"}),
		testutil.CEAt(tCell+"started", "2024-02-03T04:05:06.789+02:00", obj{"cellId": "c4"}),
		testutil.CEAt("com.example.other", "", nil),
		[]byte(`{"specversion":"1.0","id":"x","source":"s","type":"` + tCell + `started","data":{"cellId":7}}`),
		[]byte(`{"specversion":"1.0","ID":"x","Source":"s","TYPE":"` + tCell + `started","DATA":{"cellId":"c9"}}`),
		[]byte("{\"specversion\":\"1.0\",\"id\":\"x\",\"source\":\"s\",\"type\":\"" + tSummary + "\",\"data\":{\"cellId\":\"c1\",\"n\":\"\xff\"}}"),
		[]byte(`[1,2]`),
		[]byte(`"s"`),
		[]byte(`null`),
		[]byte(``),
		[]byte(`{"specversion":"1.0"`),
	}
}

// FuzzApply: Apply never panics, whatever the subject and the payload; the
// cursor moves to every fresh sequence, a stale one changes nothing, an
// event not applied changes no entity, and the state can always be encoded
// (the store's own fuzz target checks its records).
func FuzzApply(f *testing.F) {
	subjects := []string{"", "cellos.events.cell.c1.started", "cellos.events.t.cell.c1.started",
		"cellos.events.u.formation.f1.deleted", "cellos.events.t", "cellos.events.", "other"}
	for i, s := range fuzzSeeds() {
		f.Add(uint64(3+i%2), int64(i)*1e9, subjects[i%len(subjects)], s)
	}
	f.Add(uint64(1), int64(0), "", fuzzSeeds()[0])
	f.Add(uint64(1<<63), int64(-1), "cellos.events.t.cell", fuzzSeeds()[2])
	prelude := [][]byte{
		formEv("created", "f1", obj{"name": "n", "tenantId": "t"}),
		cellEv("admitted", "c1", obj{"formationId": "f1"}),
	}
	f.Fuzz(func(t *testing.T, seq uint64, unixNano int64, subject string, payload []byte) {
		p := fold(t, prelude...)
		before, counters := string(p.Dump()), p.Counters()

		out := p.Apply(Message{Seq: seq, Subject: subject, Time: time.Unix(0, unixNano), Payload: payload})
		if seq <= uint64(len(prelude)) {
			if out != Stale || p.Cursor() != uint64(len(prelude)) || string(p.Dump()) != before || !p.Counters().Equal(counters) {
				t.Fatalf("Apply(seq %d, %q) = %v, cursor %d, want %v and no change", seq, payload, out, p.Cursor(), Stale)
			}
			return
		}
		if out == Stale {
			t.Fatalf("Apply(seq %d, %q) = %v, want not stale", seq, payload, out)
		}
		if p.Cursor() != seq {
			t.Fatalf("Apply(seq %d, %q): Cursor() = %d, want %d", seq, payload, p.Cursor(), seq)
		}
		c := p.Counters()
		if got, want := c.Applied+c.Ignored+c.Malformed+c.Rejected, counters.Applied+1; got != want {
			t.Fatalf("Apply(seq %d, %q): counters %+v sum to %d, want %d", seq, payload, c, got, want)
		}
		if out != Applied && string(p.Dump()) != before {
			t.Fatalf("Apply(seq %d, %q) = %v but Dump() changed to %s", seq, payload, out, p.Dump())
		}
		if _, err := event.Decode(payload); err != nil && out != Malformed {
			t.Fatalf("Apply(%q) = %v, but event.Decode error = %v", payload, out, err)
		}
		p.Dump()
	})
}
