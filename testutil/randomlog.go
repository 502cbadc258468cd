package testutil

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// LogMessage is one stored message of a RandomLog: its sequence, the time
// JetStream would have stored it, and its payload.
type LogMessage struct {
	Seq     uint64
	Time    time.Time
	Payload []byte
}

// logBase is the message-time origin of RandomLog.
var logBase = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

var logCounter atomic.Uint64

// CEAt encodes a CloudEvents 1.0 event with a fresh id and the time
// attribute at as given, valid or not ("" leaves it out); nil data is left
// out too. Fold tests use it for odd times and missing data.
func CEAt(typ, at string, data any) []byte {
	e := map[string]any{"specversion": "1.0", "id": fmt.Sprintf("log-%d", logCounter.Add(1)), "source": "/test/supervisor", "type": typ}
	if at != "" {
		e["time"] = at
	}
	if data != nil {
		e["data"] = data
	}
	b, err := json.Marshal(e)
	if err != nil {
		panic(err)
	}
	return b
}

// RandomLog draws a random event log for fold tests: small id spaces so that events
// collide, every event type, malformed and unknown events, random and odd
// times, sequence jumps (gaps) and repeats (stale).
func RandomLog(r *rand.Rand, n int) []LogMessage {
	formations := []string{"f0", "f1", "f2", "f3"}
	cells := []string{"c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7"}
	tenants := []string{"", "t0", "t1"}
	fPhases := []string{"created", "launching", "running", "degraded", "completed", "failed", "cancelled", "deleted"}
	cPhases := []string{"admitted", "started", "completed", "failed", "destroyed", "summary"}
	malformed := []string{
		`not json`, `[]`, `"str"`, `{}`, `null`,
		`{"specversion":"0.3","id":"m","source":"s","type":"` + CellType + `started","data":{"cellId":"c0"}}`,
		`{"specversion":"1.0","source":"s","type":"` + CellType + `started","data":{"cellId":"c1"}}`,
		`{"specversion":"1.0","id":"m","type":"` + CellType + `started","data":{"cellId":"c1"}}`,
		`{"specversion":"1.0","id":"m","source":"s","data":{"cellId":"c1"}}`,
		`{"specversion":"1.0","id":"m","source":"s","type":"` + CellType + `started","data":{"cellId":3}}`,
		`{"specversion":"1.0","id":"m","source":"s","type":"` + FormationType + `running","data":{}}`,
		`{"specversion":"1.0","id":"m","source":"s","type":"` + FormationType + `running","data":{"formationId":"a.b"}}`,
		// Invalid UTF-8 and HTML in a compliance summary (well-formed for the fold).
		"{\"specversion\":\"1.0\",\"id\":\"u\",\"source\":\"s\",\"type\":\"" + ComplianceType + "\",\"data\":{\"cellId\":\"c2\",\"note\":\"\xff<&>\u2028\"}}",
	}
	pick := func(xs []string) string { return xs[r.IntN(len(xs))] }
	maybe := func(pct int) bool { return r.IntN(100) < pct }

	randTime := func() string {
		switch r.IntN(10) {
		case 0, 1, 2, 3:
			return ""
		case 4:
			return "not a time"
		case 5:
			return pick([]string{"0000-01-01T00:00:00+00:30", "9999-12-31T23:59:59-01:00", "0000-01-01T00:00:00Z"})
		case 6:
			zone := time.FixedZone("z", (r.IntN(25)-12)*3600)
			return logBase.Add(time.Duration(r.Int64N(int64(48 * time.Hour)))).In(zone).Format(time.RFC3339Nano)
		}
		return logBase.Add(time.Duration(r.IntN(1000)) * time.Second).Format(time.RFC3339)
	}
	tenantFields := func(d map[string]any) {
		switch r.IntN(4) {
		case 0:
			d["tenantId"] = pick(tenants)
		case 1:
			d["correlation"] = map[string]any{"tenantId": pick(tenants), "traceId": fmt.Sprint(r.IntN(3))}
		case 2:
			d["tenantId"] = r.IntN(2) // wrong type
		}
	}

	msgs := make([]LogMessage, 0, n)
	seq := uint64(r.IntN(3))
	for range n {
		switch k := r.IntN(20); {
		case k == 0 && seq > 2:
			// a stale redelivery
		case k == 1:
			seq += 2 + uint64(r.IntN(4)) // a gap
		default:
			seq++
		}
		if seq == 0 {
			seq = 1
		}
		var payload []byte
		switch k := r.IntN(20); {
		case k == 0:
			payload = []byte(pick(malformed))
		case k == 1:
			payload = CEAt(pick([]string{"com.example.other", CellType + "paused", FormationType + "scaled"}), randTime(), map[string]any{"cellId": pick(cells)})
		case k < 7:
			d := map[string]any{"formationId": pick(formations)}
			if maybe(50) {
				d["name"] = pick([]string{"alpha", "beta", "<gamma>"})
			}
			if maybe(30) {
				d["labels"] = map[string]any{"env": pick([]string{"dev", "prod"}), "tier": fmt.Sprint(r.IntN(3))}
			}
			tenantFields(d)
			payload = CEAt(FormationType+pick(fPhases), randTime(), d)
		default:
			phase := pick(cPhases)
			d := map[string]any{"cellId": pick(cells)}
			if maybe(60) {
				d["formationId"] = pick(formations)
			}
			if maybe(40) {
				d["specId"] = pick([]string{"s0", "s1"})
			}
			if maybe(40) {
				d["runId"] = pick([]string{"r0", "r1"})
			}
			tenantFields(d)
			switch phase {
			case "completed":
				d["exitCode"] = []any{r.IntN(3), nil, "1", 1.5}[r.IntN(4)]
			case "failed":
				d["reason"] = pick([]string{"oom", "timeout", ""})
			case "summary":
				d["passed"] = maybe(50)
				d["findings"] = r.IntN(3)
				if maybe(30) {
					d["note"] = "<b>&amp;</b>\u2028"
				}
			}
			typ := CellType + phase
			if phase == "summary" {
				typ = ComplianceType
			}
			payload = CEAt(typ, randTime(), d)
		}
		at := logBase.Add(time.Duration(seq)*time.Second + time.Duration(r.IntN(1e9)))
		msgs = append(msgs, LogMessage{Seq: seq, Time: at, Payload: payload})
	}
	return msgs
}
