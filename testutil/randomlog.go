package testutil

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// LogMessage is one stored message of a RandomLog: its sequence, its
// subject, the time JetStream would have stored it, and its payload.
type LogMessage struct {
	Seq     uint64
	Subject string
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
// times, sequence jumps (gaps) and repeats (stale). Subjects come in both
// forms (docs/design.md §3) and odd ones; tenants are declared in data,
// agreeing with the subject's or not, or not at all — so that tenants
// collide: cross-tenant events, cells that inherit their formation's
// tenant, producers of a tenant that publish untenanted.
func RandomLog(r *rand.Rand, n int) []LogMessage {
	formations := []string{"f0", "f1", "f2", "f3"}
	cells := []string{"c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7"}
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
	// Each entity has a home tenant its producers mostly claim — f0 and
	// the cells of f0 are t0's, f1's t1's, f2's t2's, f3's nobody's — and
	// a cell has a home formation (c<i> belongs to f<i%4>). Now and then an
	// event claims another tenant or names another formation.
	homeTenant := []string{"t0", "t1", "t2", ""}
	tenantOf := func(home int) string {
		if maybe(12) {
			return pick([]string{"", "t0", "t1", "t2"})
		}
		return homeTenant[home]
	}
	// claim puts the tenant an event claims where a producer would: in the
	// subject (tenant form), the data, both — agreeing or not — or
	// nowhere. It returns the subject's tenant, "" for the untenanted form.
	claim := func(d map[string]any, tenant string) string {
		if maybe(5) {
			d["tenantId"] = r.IntN(2) // wrong type: no claim
		}
		if tenant == "" {
			return ""
		}
		switch r.IntN(7) {
		case 0:
			return tenant
		case 1:
			d["tenantId"] = tenant
			return tenant
		case 2:
			// A tenant producer's data declaring another tenant.
			d["correlation"] = map[string]any{"tenantId": pick([]string{"t0", "t1", "t2", tenant}), "traceId": fmt.Sprint(r.IntN(3))}
			return tenant
		case 3:
			d["tenantId"] = tenant
		case 4:
			d["correlation"] = map[string]any{"tenantId": tenant, "traceId": fmt.Sprint(r.IntN(3))}
		}
		return ""
	}
	// subject is where a producer would store the event; now and then an
	// odd one (a tenant sub-tree with another shape, an id that is not the
	// data's).
	subject := func(st, entity, id, phase string) string {
		prefix := "cellos.events."
		if st != "" {
			prefix += st + "."
		}
		switch r.IntN(30) {
		case 0:
			return prefix + "odd"
		case 1, 2:
			return prefix + entity + ".other." + phase
		}
		return prefix + entity + "." + id + "." + phase
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
		var subj string
		switch k := r.IntN(20); {
		case k == 0:
			payload = []byte(pick(malformed))
			subj = subject(tenantOf(r.IntN(4)), "cell", "raw", "x")
		case k == 1:
			i := r.IntN(len(cells))
			d := map[string]any{"cellId": cells[i]}
			st := claim(d, tenantOf(i%4))
			payload = CEAt(pick([]string{"com.example.other", CellType + "paused", FormationType + "scaled"}), randTime(), d)
			subj = subject(st, "cell", cells[i], "x")
		case k < 7:
			i, phase := r.IntN(len(formations)), pick(fPhases)
			id := formations[i]
			d := map[string]any{"formationId": id}
			if maybe(50) {
				d["name"] = pick([]string{"alpha", "beta", "<gamma>"})
			}
			if maybe(30) {
				d["labels"] = map[string]any{"env": pick([]string{"dev", "prod"}), "tier": fmt.Sprint(r.IntN(3))}
			}
			st := claim(d, tenantOf(i))
			payload = CEAt(FormationType+phase, randTime(), d)
			subj = subject(st, "formation", id, phase)
		default:
			phase := pick(cPhases)
			i := r.IntN(len(cells))
			cell := cells[i]
			d := map[string]any{"cellId": cell}
			if maybe(60) {
				d["formationId"] = formations[i%len(formations)]
				if maybe(15) {
					d["formationId"] = pick(formations)
				}
			}
			if maybe(40) {
				d["specId"] = pick([]string{"s0", "s1"})
			}
			if maybe(40) {
				d["runId"] = pick([]string{"r0", "r1"})
			}
			// Some cells' producers claim no tenant: they inherit their
			// formation's.
			st := ""
			if i < 6 {
				st = claim(d, tenantOf(i%4))
			}
			subj = subject(st, "cell", cell, phase)
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
		msgs = append(msgs, LogMessage{Seq: seq, Subject: subj, Time: at, Payload: payload})
	}
	return msgs
}
