package projection

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// genMessages draws a random event log: small id spaces so that events
// collide, every event type, malformed and unknown events, random and odd
// times, sequence jumps (gaps) and repeats (stale).
func genMessages(r *rand.Rand, n int) []Message {
	formations := []string{"f0", "f1", "f2", "f3"}
	cells := []string{"c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7"}
	tenants := []string{"", "t0", "t1"}
	fPhases := []string{"created", "launching", "running", "degraded", "completed", "failed", "cancelled", "deleted"}
	cPhases := []string{"admitted", "started", "completed", "failed", "destroyed", "summary"}
	malformed := []string{
		`not json`, `[]`, `"str"`, `{}`, `null`,
		`{"specversion":"0.3","id":"m","source":"s","type":"` + tCell + `started","data":{"cellId":"c0"}}`,
		`{"specversion":"1.0","source":"s","type":"` + tCell + `started","data":{"cellId":"c1"}}`,
		`{"specversion":"1.0","id":"m","type":"` + tCell + `started","data":{"cellId":"c1"}}`,
		`{"specversion":"1.0","id":"m","source":"s","data":{"cellId":"c1"}}`,
		`{"specversion":"1.0","id":"m","source":"s","type":"` + tCell + `started","data":{"cellId":3}}`,
		`{"specversion":"1.0","id":"m","source":"s","type":"` + tFormation + `running","data":{}}`,
		`{"specversion":"1.0","id":"m","source":"s","type":"` + tFormation + `running","data":{"formationId":"a.b"}}`,
		// Invalid UTF-8 and HTML in a compliance summary (well-formed for the fold).
		"{\"specversion\":\"1.0\",\"id\":\"u\",\"source\":\"s\",\"type\":\"" + tSummary + "\",\"data\":{\"cellId\":\"c2\",\"note\":\"\xff<&>\u2028\"}}",
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
			return base.Add(time.Duration(r.Int64N(int64(48 * time.Hour)))).In(zone).Format(time.RFC3339Nano)
		}
		return base.Add(time.Duration(r.IntN(1000)) * time.Second).Format(time.RFC3339)
	}
	tenantFields := func(d obj) {
		switch r.IntN(4) {
		case 0:
			d["tenantId"] = pick(tenants)
		case 1:
			d["correlation"] = obj{"tenantId": pick(tenants), "traceId": fmt.Sprint(r.IntN(3))}
		case 2:
			d["tenantId"] = r.IntN(2) // wrong type
		}
	}

	msgs := make([]Message, 0, n)
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
			payload = ce(pick([]string{"com.example.other", tCell + "paused", tFormation + "scaled"}), randTime(), obj{"cellId": pick(cells)})
		case k < 7:
			d := obj{"formationId": pick(formations)}
			if maybe(50) {
				d["name"] = pick([]string{"alpha", "beta", "<gamma>"})
			}
			if maybe(30) {
				d["labels"] = obj{"env": pick([]string{"dev", "prod"}), "tier": fmt.Sprint(r.IntN(3))}
			}
			tenantFields(d)
			payload = ce(tFormation+pick(fPhases), randTime(), d)
		default:
			phase := pick(cPhases)
			d := obj{"cellId": pick(cells)}
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
				d["exitCode"] = pick2(r, any(r.IntN(3)), any(nil), any("1"), any(1.5))
			case "failed":
				d["reason"] = pick([]string{"oom", "timeout", ""})
			case "summary":
				d["passed"] = maybe(50)
				d["findings"] = r.IntN(3)
				if maybe(30) {
					d["note"] = "<b>&amp;</b>\u2028"
				}
			}
			typ := tCell + phase
			if phase == "summary" {
				typ = tSummary
			}
			payload = ce(typ, randTime(), d)
		}
		at := base.Add(time.Duration(seq)*time.Second + time.Duration(r.IntN(1e9)))
		msgs = append(msgs, Message{Seq: seq, Time: at, Payload: payload})
	}
	return msgs
}

func pick2(r *rand.Rand, xs ...any) any { return xs[r.IntN(len(xs))] }

// checkpointRun applies msgs to p, taking change sets at random points into
// st; some writes fail (Requeue) and some change sets follow a MarkReset.
// It ends with a successful write, so st holds p's state.
func checkpointRun(t *testing.T, r *rand.Rand, p *Projection, st *store, msgs []Message) {
	t.Helper()
	take := func() {
		if r.IntN(8) == 0 {
			p.MarkReset()
		}
		ch := p.TakeChanges()
		if r.IntN(4) == 0 {
			p.Requeue(ch) // the write failed: nothing reached the store
			return
		}
		st.write(ch)
	}
	for _, m := range msgs {
		p.Apply(m)
		if r.IntN(6) == 0 {
			take()
		}
	}
	for {
		ch := p.TakeChanges()
		if r.IntN(3) > 0 {
			st.write(ch)
			return
		}
		p.Requeue(ch)
	}
}

func foldAll(msgs []Message) *Projection {
	p := New()
	for _, m := range msgs {
		p.Apply(m)
	}
	return p
}

// Restoring from accumulated incremental change sets and applying the rest
// equals folding everything from scratch (docs/design.md §3: a pure fold).
func TestRestoreEquivalence(t *testing.T) {
	seeds := []uint64{1, 2, 3, 42, 1234567}
	n := 200
	if testing.Short() {
		n = 20
	}
	for i := range n {
		seeds = append(seeds, uint64(i)*0x9E3779B97F4A7C15+7)
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, seed^0xC0FFEE))
			msgs := genMessages(r, 1+r.IntN(300))
			want := foldAll(msgs)
			k := r.IntN(len(msgs) + 1)

			p := New()
			st := newStore()
			if r.IntN(2) == 0 {
				p.MarkReset() // a rebuild starts with a reset
			}
			checkpointRun(t, r, p, st, msgs[:k])
			r1 := st.restore(t)
			sameState(t, fmt.Sprintf("restored at %d/%d", k, len(msgs)), r1, p)

			// The restored projection goes on checkpointing the rest into
			// the same store; a second restore still equals the scratch fold.
			checkpointRun(t, r, r1, st, msgs[k:])
			sameState(t, fmt.Sprintf("restored at %d, applied rest", k), r1, want)
			sameState(t, "restored again at the end", st.restore(t), want)
		})
	}
}

// Fixed fields never change once set, and the state rank never goes down,
// whatever the order of events.
func TestFoldMonotonic(t *testing.T) {
	for seed := range uint64(40) {
		r := rand.New(rand.NewPCG(seed, 99))
		msgs := genMessages(r, 150)
		p := New()
		prev := map[string]Cell{}
		for _, m := range msgs {
			p.Apply(m)
			cs, _ := p.Cells(CellFilter{}, Page{})
			for _, c := range cs {
				old, ok := prev[c.ID]
				prev[c.ID] = c
				if !ok {
					continue
				}
				if stateRank(c.State) < stateRank(old.State) {
					t.Fatalf("seed %d seq %d: Cell(%q).State = %v, want rank >= %v", seed, m.Seq, c.ID, c.State, old.State)
				}
				for _, f := range [][2]string{{old.FormationID, c.FormationID}, {old.SpecID, c.SpecID}, {old.RunID, c.RunID}, {old.TenantID, c.TenantID}, {string(old.Correlation), string(c.Correlation)}} {
					if f[0] != "" && f[0] != f[1] {
						t.Fatalf("seed %d seq %d: Cell(%q) fixed field = %q, want %q", seed, m.Seq, c.ID, f[1], f[0])
					}
				}
				if old.ExitCode != nil && exitStr(old.ExitCode) != exitStr(c.ExitCode) {
					t.Fatalf("seed %d seq %d: Cell(%q).ExitCode = %v, want %v", seed, m.Seq, c.ID, exitStr(c.ExitCode), exitStr(old.ExitCode))
				}
				if c.LastSeq < old.LastSeq || (c.LastSeq == old.LastSeq && jsonStr(c) != jsonStr(old)) {
					t.Fatalf("seed %d seq %d: Cell(%q) changed without lastSeq moving: %s -> %s", seed, m.Seq, c.ID, jsonStr(old), jsonStr(c))
				}
			}
		}
		// Counts equal a recount of the cells.
		cs, _ := p.Cells(CellFilter{}, Page{})
		want := map[string]*CellCounts{}
		for _, c := range cs {
			if c.FormationID == "" {
				continue
			}
			if want[c.FormationID] == nil {
				want[c.FormationID] = &CellCounts{}
			}
			w := want[c.FormationID]
			w.Total++
			switch c.State {
			case CellAdmitted:
				w.Admitted++
			case CellRunning:
				w.Running++
			case CellDestroyed:
				w.Destroyed++
			}
			// Rule 7: completed and failed count outcomes, also after teardown.
			switch c.Outcome {
			case OutcomeCompleted:
				w.Completed++
			case OutcomeFailed:
				w.Failed++
			}
		}
		fs, _ := p.Formations(FormationFilter{}, Page{})
		for _, f := range fs {
			w := CellCounts{}
			if want[f.ID] != nil {
				w = *want[f.ID]
			}
			if f.Cells != w {
				t.Fatalf("seed %d: Formation(%q).Cells = %+v, want %+v", seed, f.ID, f.Cells, w)
			}
		}
		var d struct{ Formations, Cells []json.RawMessage }
		if err := json.Unmarshal(p.Dump(), &d); err != nil {
			t.Fatalf("seed %d: Dump() is not JSON: %v", seed, err)
		}
	}
}
