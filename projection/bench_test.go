package projection

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"cellos-allinone/event"
)

// benchFormation builds the events of formation f: 10 cells, each
// admitted → started → compliance summary → completed (or failed, one in
// five) → destroyed, the formation going created → launching → running →
// completed, with CloudEvent times set like a supervisor's.
func benchFormation(f int) [][]byte {
	at := base.Add(time.Duration(f) * time.Second)
	n := 0
	mk := func(typ string, data obj) []byte {
		at = at.Add(1500 * time.Microsecond)
		n++
		e := obj{
			"specversion": "1.0", "id": fmt.Sprintf("evt-%d-%d", f, n), "source": "/cellos/supervisor/node-1",
			"type": typ, "time": at.Format(time.RFC3339Nano), "datacontenttype": "application/json", "data": data,
		}
		b, err := json.Marshal(e)
		if err != nil {
			panic(err)
		}
		return b
	}
	fid := fmt.Sprintf("formation-%06d", f)
	tenant := fmt.Sprintf("tenant-%d", f%7)
	log := [][]byte{
		mk(tFormation+"created", obj{"formationId": fid, "name": "build " + fid, "tenantId": tenant, "labels": obj{"team": "ci", "env": "prod"}}),
		mk(tFormation+"launching", obj{"formationId": fid}),
		mk(tFormation+"running", obj{"formationId": fid}),
	}
	for c := range 10 {
		cid := fmt.Sprintf("%s-cell-%02d", fid, c)
		corr := obj{"tenantId": tenant, "traceId": "4bf92f3577b34da6a3ce929d0e0e4736", "spanId": "00f067aa0ba902b7"}
		log = append(log,
			mk(tCell+"admitted", obj{"cellId": cid, "formationId": fid, "specId": "spec-7", "runId": "run-" + fid, "correlation": corr}),
			mk(tCell+"started", obj{"cellId": cid, "formationId": fid}),
			mk(tSummary, obj{"cellId": cid, "formationId": fid, "policy": "baseline-v3", "passed": c%9 != 0,
				"findings": []obj{{"rule": "no-root", "severity": "low"}}}))
		if c%5 == 4 {
			log = append(log, mk(tCell+"failed", obj{"cellId": cid, "formationId": fid, "reason": "OOMKilled"}))
		} else {
			log = append(log, mk(tCell+"completed", obj{"cellId": cid, "formationId": fid, "exitCode": 0}))
		}
		log = append(log, mk(tCell+"destroyed", obj{"cellId": cid, "formationId": fid}))
	}
	return append(log, mk(tFormation+"completed", obj{"formationId": fid}))
}

// benchLog is the events of formations from..to-1, formation by formation.
func benchLog(from, to int) [][]byte {
	var log [][]byte
	for f := from; f < to; f++ {
		log = append(log, benchFormation(f)...)
	}
	return log
}

// BenchmarkApply folds a realistic mix of events; a fresh projection
// starts each time the log has been used up.
func BenchmarkApply(b *testing.B) {
	log := benchLog(0, 1000) // 54,000 events
	var size int
	msgs := make([]Message, 0, len(log))
	for _, pl := range log {
		size += len(pl)
		msgs = append(msgs, Message{Time: base, Payload: pl})
	}
	b.SetBytes(int64(size / len(log)))
	benchFold(b, msgs)
}

// BenchmarkApplyTenantForm folds the same events published in their
// tenant's sub-tree (cellos.events.<tenant>.…), as a tenant producer's
// are: the subject is parsed, the data's tenant checked against it.
func BenchmarkApplyTenantForm(b *testing.B) {
	var msgs []Message
	for f := range 1000 {
		tenant := fmt.Sprintf("tenant-%d", f%7)
		for _, pl := range benchFormation(f) {
			subject, _, err := event.Route(pl)
			if err != nil {
				b.Fatal(err)
			}
			subject = strings.Replace(subject, event.SubjectPrefix, event.SubjectPrefix+tenant+".", 1)
			msgs = append(msgs, Message{Subject: subject, Time: base, Payload: pl})
		}
	}
	benchFold(b, msgs)
}

// benchFold applies msgs, numbered from 1, b.N times in all; a fresh
// projection starts each time they have been used up. Every one must
// apply.
func benchFold(b *testing.B, msgs []Message) {
	b.ReportAllocs()
	p := New()
	var seq uint64
	b.ResetTimer()
	for i := range b.N {
		if i%len(msgs) == 0 && i > 0 {
			p, seq = New(), 0
		}
		seq++
		m := msgs[i%len(msgs)]
		m.Seq = seq
		if out := p.Apply(m); out != Applied {
			b.Fatalf("event %d: %v, want applied", seq, out)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkDecode reads the same events without folding them: the part
// of the fold that can run on another core.
func BenchmarkDecode(b *testing.B) {
	log := benchLog(0, 1000)
	var size int
	for _, pl := range log {
		size += len(pl)
	}
	b.SetBytes(int64(size / len(log)))
	b.ReportAllocs()
	var dec Decoder
	b.ResetTimer()
	for i := range b.N {
		dec.Decode(Message{Seq: uint64(i + 1), Time: base, Payload: log[i%len(log)]})
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
