package projection

import (
	"strings"
	"testing"
	"time"

	"cellos-allinone/event"
	"cellos-allinone/testutil"
)

// Fold rule 2: malformed events are counted and skipped; the cursor advances.
func TestApplyMalformed(t *testing.T) {
	ok := `"specversion":"1.0","id":"e1","source":"/s"`
	long := strings.Repeat("x", event.MaxIDLen+1)
	cases := []struct{ name, payload string }{
		{"not JSON", `{"specversion":`},
		{"empty", ``},
		{"JSON array", `[{"specversion":"1.0","id":"e1","source":"/s","type":"` + tCell + `admitted","data":{"cellId":"c1"}}]`},
		{"JSON string", `"hello"`},
		{"JSON number", `42`},
		{"JSON null", `null`},
		{"trailing garbage", `{` + ok + `,"type":"` + tCell + `admitted","data":{"cellId":"c1"}} x`},
		{"specversion 0.3", `{"specversion":"0.3","id":"e1","source":"/s","type":"` + tCell + `admitted","data":{"cellId":"c1"}}`},
		{"specversion missing", `{"id":"e1","source":"/s","type":"` + tCell + `admitted","data":{"cellId":"c1"}}`},
		{"specversion number", `{"specversion":1.0,"id":"e1","source":"/s","type":"` + tCell + `admitted","data":{"cellId":"c1"}}`},
		{"id missing", `{"specversion":"1.0","source":"/s","type":"` + tCell + `admitted","data":{"cellId":"c1"}}`},
		{"id empty", `{"specversion":"1.0","id":"","source":"/s","type":"` + tCell + `admitted","data":{"cellId":"c1"}}`},
		{"id number", `{"specversion":"1.0","id":7,"source":"/s","type":"` + tCell + `admitted","data":{"cellId":"c1"}}`},
		{"type missing", `{` + ok + `,"data":{"cellId":"c1"}}`},
		{"source missing", `{"specversion":"1.0","id":"e1","type":"` + tCell + `admitted","data":{"cellId":"c1"}}`},
		{"cell event without data", `{` + ok + `,"type":"` + tCell + `started"}`},
		{"cell event data null", `{` + ok + `,"type":"` + tCell + `started","data":null}`},
		{"cell event data string", `{` + ok + `,"type":"` + tCell + `started","data":"c1"}`},
		{"cellId missing", `{` + ok + `,"type":"` + tCell + `admitted","data":{"formationId":"f1"}}`},
		{"cellId empty", `{` + ok + `,"type":"` + tCell + `admitted","data":{"cellId":""}}`},
		{"cellId number", `{` + ok + `,"type":"` + tCell + `completed","data":{"cellId":12,"exitCode":0}}`},
		{"cellId object", `{` + ok + `,"type":"` + tCell + `failed","data":{"cellId":{"id":"c1"}}}`},
		{"cellId null", `{` + ok + `,"type":"` + tCell + `destroyed","data":{"cellId":null}}`},
		{"cellId not a token", `{` + ok + `,"type":"` + tCell + `admitted","data":{"cellId":"c.1"}}`},
		{"cellId too long", `{` + ok + `,"type":"` + tCell + `admitted","data":{"cellId":"` + long + `"}}`},
		{"summary without cellId", `{` + ok + `,"type":"` + tSummary + `","data":{"passed":true}}`},
		{"formationId missing", `{` + ok + `,"type":"` + tFormation + `created","data":{"cellId":"c1","name":"n"}}`},
		{"formationId array", `{` + ok + `,"type":"` + tFormation + `running","data":{"formationId":["f1"]}}`},
		{"formationId bool", `{` + ok + `,"type":"` + tFormation + `deleted","data":{"formationId":true}}`},
		{"formationId with space", `{` + ok + `,"type":"` + tFormation + `created","data":{"formationId":"f 1"}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := fold(t, cellEv("admitted", "keep", nil))
			before := string(p.Dump())
			r := &recorder{Projection: p}
			out := r.apply(Message{Seq: 2, Time: msgTime(2), Payload: []byte(tc.payload)})
			if out != Malformed {
				t.Fatalf("Apply(%q) = %v, want %v", tc.payload, out, Malformed)
			}
			if got, want := p.Counters(), (Counters{Applied: 1, Malformed: 1}); !got.Equal(want) {
				t.Errorf("Counters() after %q = %+v, want %+v", tc.payload, got, want)
			}
			if got := p.Cursor(); got != 2 {
				t.Errorf("Cursor() after %q = %d, want %d", tc.payload, got, 2)
			}
			if got := string(p.Dump()); got != before {
				t.Errorf("Dump() after %q = %s, want %s", tc.payload, got, before)
			}
			if r.saves != 0 {
				t.Errorf("Apply(%q) saved %d entities, want none", tc.payload, r.saves)
			}
		})
	}
}

// Fold rule 2: a well-formed CloudEvent of an unknown type is ignored,
// even when it carries no entity id.
func TestApplyUnknownTypeIgnored(t *testing.T) {
	cases := []struct{ name, typ string }{
		{"other producer", "com.example.thing.happened"},
		{"unknown cell phase", tCell + "paused"},
		{"unknown formation phase", tFormation + "scaled"},
		{"empty phase", tCell},
		{"compliance other", "dev.cellos.events.cell.compliance.v1.detail"},
		{"v2 cell", "dev.cellos.events.cell.lifecycle.v2.started"},
		{"case differs", "DEV.CELLOS.EVENTS.CELL.LIFECYCLE.V1.STARTED"},
		{"summary as lifecycle", tCell + "summary"},
	}
	for _, tc := range cases {
		for _, data := range []any{obj{"cellId": "c1", "formationId": "f1"}, nil} {
			pl := testutil.CEAt(tc.typ, "", data)
			t.Run(tc.name, func(t *testing.T) {
				p := New()
				if out := p.Apply(Message{Seq: 3, Time: msgTime(3), Payload: pl}); out != Ignored {
					t.Fatalf("Apply(%q) = %v, want %v", pl, out, Ignored)
				}
				if got, want := p.Counters(), (Counters{Ignored: 1}); !got.Equal(want) {
					t.Errorf("Counters() after %q = %+v, want %+v", pl, got, want)
				}
				if got := p.Cursor(); got != 3 {
					t.Errorf("Cursor() after %q = %d, want 3", pl, got)
				}
				if f, c := p.Size(); f != 0 || c != 0 {
					t.Errorf("Size() after %q = %d, %d, want 0, 0", pl, f, c)
				}
			})
		}
	}
}

// Fold rule 1: the entity id comes from data, the subject is routing only.
func TestEntityIDFromData(t *testing.T) {
	cases := []struct {
		name    string
		payload []byte
		cell    string
		form    string
	}{
		{"cell", testutil.CEAt(tCell+"admitted", "", obj{"cellId": "from-data"}), "from-data", ""},
		{"summary", testutil.CEAt(tSummary, "", obj{"cellId": "from-data"}), "from-data", ""},
		{"formation", testutil.CEAt(tFormation+"created", "", obj{"formationId": "f-data", "cellId": "not-me"}), "", "f-data"},
		{"cell with formationId", testutil.CEAt(tCell+"started", "", obj{"cellId": "c-data", "formationId": "f9"}), "c-data", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The CloudEvent subject and the NATS subject name another id.
			pl := []byte(strings.Replace(string(tc.payload), `"id":`, `"subject":"cellos.events.cell.subject-id.x","id":`, 1))
			p := fold(t, pl)
			if _, ok := p.Cell("subject-id"); ok {
				t.Errorf("Cell(%q) exists, want only data ids", "subject-id")
			}
			if tc.cell != "" {
				mustCell(t, p, tc.cell)
			}
			if tc.form != "" {
				mustFormation(t, p, tc.form)
			}
			wantF, wantC := 0, 0
			if tc.form != "" {
				wantF = 1
			}
			if tc.cell != "" {
				wantC = 1
			}
			if f, c := p.Size(); f != wantF || c != wantC {
				t.Errorf("Size() after %q = %d, %d, want %d, %d", pl, f, c, wantF, wantC)
			}
		})
	}
}

// Fold rule 1: tenant is data.tenantId, else data.correlation.tenantId.
func TestTenant(t *testing.T) {
	cases := []struct {
		name string
		data obj
		want string
	}{
		{"data.tenantId", obj{"tenantId": "t-data"}, "t-data"},
		{"correlation.tenantId", obj{"correlation": obj{"tenantId": "t-corr", "traceId": "x"}}, "t-corr"},
		{"both: data wins", obj{"tenantId": "t-data", "correlation": obj{"tenantId": "t-corr"}}, "t-data"},
		{"empty data.tenantId falls back", obj{"tenantId": "", "correlation": obj{"tenantId": "t-corr"}}, "t-corr"},
		{"neither", obj{"correlation": obj{"traceId": "x"}}, ""},
		{"correlation not an object", obj{"correlation": "t-corr"}, ""},
		{"tenantId not a string", obj{"tenantId": 5, "correlation": obj{"tenantId": "t-corr"}}, "t-corr"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := fold(t, cellEv("admitted", "c1", tc.data), formEv("created", "f1", tc.data))
			if got := mustCell(t, p, "c1").TenantID; got != tc.want {
				t.Errorf("Cell(%q).TenantID = %q, want %q", "c1", got, tc.want)
			}
			if f, _ := mustFormation(t, p, "f1"); f.TenantID != tc.want {
				t.Errorf("Formation(%q).TenantID = %q, want %q", "f1", f.TenantID, tc.want)
			}
		})
	}
}

// Fold rule 1: timestamps are the CloudEvent time, else the message time.
func TestEventTime(t *testing.T) {
	mt := msgTime(1)
	cases := []struct {
		name, ceTime string
		want         time.Time
	}{
		{"absent", "", mt},
		{"UTC", "2024-05-06T07:08:09Z", time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)},
		{"offset normalised to UTC", "2024-05-06T09:08:09+02:00", time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)},
		{"nanoseconds", "2024-05-06T07:08:09.123456789Z", time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)},
		{"not RFC 3339", "yesterday", mt},
		{"date only", "2024-05-06", mt},
		// Valid RFC 3339 whose UTC year JSON cannot encode.
		{"UTC year -1", "0000-01-01T00:00:00+00:30", mt},
		{"UTC year 10000", "9999-12-31T23:59:59-01:00", mt},
		{"year 0 UTC is fine", "0000-01-01T00:00:00Z", time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := fold(t, testutil.CEAt(tCell+"admitted", tc.ceTime, obj{"cellId": "c1"}),
				testutil.CEAt(tFormation+"created", tc.ceTime, obj{"formationId": "f1"}))
			c := mustCell(t, p, "c1")
			if !c.CreatedAt.Equal(tc.want) || !c.UpdatedAt.Equal(tc.want) {
				t.Errorf("Cell(time %q) at = %v/%v, want %v", tc.ceTime, c.CreatedAt, c.UpdatedAt, tc.want)
			}
			if c.CreatedAt.Location() != time.UTC {
				t.Errorf("Cell(time %q).CreatedAt zone = %v, want UTC", tc.ceTime, c.CreatedAt.Location())
			}
			f, _ := mustFormation(t, p, "f1")
			wantF := tc.want
			if tc.ceTime == "" || wantF.Equal(mt) {
				wantF = msgTime(2)
			}
			if !f.CreatedAt.Equal(wantF) {
				t.Errorf("Formation(time %q).CreatedAt = %v, want %v", tc.ceTime, f.CreatedAt, wantF)
			}
			// Whatever the time, the state can be encoded (Dump panics
			// on a time JSON cannot hold).
			p.Dump()
		})
	}
}

// docs/design.md §3: an event at or below the cursor is a no-op.
func TestApplyStale(t *testing.T) {
	p := fold(t, formEv("created", "f1", nil), cellEv("admitted", "c1", obj{"formationId": "f1"}))
	r := &recorder{Projection: p}
	dump, counters, id := string(p.Dump()), p.Counters(), p.CursorID()
	for _, seq := range []uint64{0, 1, 2} {
		pl := cellEv("completed", "c1", obj{"exitCode": 1})
		if out := r.apply(Message{Seq: seq, Time: msgTime(seq), Payload: pl}); out != Stale {
			t.Errorf("Apply(seq %d) = %v, want %v", seq, out, Stale)
		}
		if out := r.apply(Message{Seq: seq, Payload: []byte("garbage")}); out != Stale {
			t.Errorf("Apply(seq %d, garbage) = %v, want %v", seq, out, Stale)
		}
	}
	if got := string(p.Dump()); got != dump {
		t.Errorf("Dump() after stale = %s, want %s", got, dump)
	}
	if got := p.Counters(); !got.Equal(counters) {
		t.Errorf("Counters() after stale = %+v, want %+v", got, counters)
	}
	if got := p.Cursor(); got != 2 {
		t.Errorf("Cursor() after stale = %d, want 2", got)
	}
	if got := p.CursorID(); got != id {
		t.Errorf("CursorID() after stale = %q, want %q", got, id)
	}
	if r.saves != 0 {
		t.Errorf("stale events saved %d entities, want none", r.saves)
	}
}

func TestCursorID(t *testing.T) {
	valid := testutil.CEAt(tCell+"admitted", "", obj{"cellId": "c1"})
	env, err := event.Decode(valid)
	if err != nil {
		t.Fatalf("event.Decode(%q) error = %v", valid, err)
	}
	unknown := []byte(`{"specversion":"1.0","id":"u-1","source":"/s","type":"x.y"}`)
	bad := []byte(`{"not":"a cloudevent"}`)
	badCell := []byte(`{"specversion":"1.0","id":"b-1","source":"/s","type":"` + tCell + `started","data":{}}`)
	cases := []struct {
		name    string
		payload []byte
		want    string
	}{
		{"applied", valid, env.ID},
		{"ignored", unknown, "u-1"},
		{"malformed envelope", bad, event.MessageID(bad)},
		{"malformed entity id", badCell, "b-1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := New()
			p.Apply(Message{Seq: 1, Time: msgTime(1), Payload: tc.payload})
			if got := p.CursorID(); got != tc.want {
				t.Errorf("CursorID() after %q = %q, want %q", tc.payload, got, tc.want)
			}
		})
	}
	if got := event.MessageID(bad); !strings.HasPrefix(got, "sha256:") || got == event.MessageID([]byte("other")) {
		t.Errorf("event.MessageID(%q) = %q, want a distinct sha256: digest", bad, got)
	}
}

func TestGaps(t *testing.T) {
	cases := []struct {
		name string
		seqs []uint64
		want []Gap
	}{
		{"contiguous", []uint64{1, 2, 3}, nil},
		{"jumps", []uint64{1, 2, 5, 6, 10}, []Gap{{3, 4}, {7, 9}}},
		{"one missing", []uint64{1, 3}, []Gap{{2, 2}}},
		{"first seq above 1 is not a gap", []uint64{7, 8}, nil},
		{"stale does not make a gap", []uint64{1, 4, 2, 5}, []Gap{{2, 3}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := New()
			for _, s := range tc.seqs {
				p.Apply(Message{Seq: s, Time: msgTime(s), Payload: cellEv("started", "c1", nil)})
			}
			if got, want := jsonStr(p.Gaps()), jsonStr(tc.want); got != want {
				t.Errorf("Gaps() after %v = %s, want %s", tc.seqs, got, want)
			}
			if got, want := jsonStr(p.Meta().Gaps), jsonStr(tc.want); got != want {
				t.Errorf("Meta().Gaps after %v = %s, want %s", tc.seqs, got, want)
			}
		})
	}

	t.Run("bounded, newest kept", func(t *testing.T) {
		p := New()
		for i := uint64(1); i <= 2*MaxGaps+1; i++ {
			p.Apply(Message{Seq: 2*i - 1, Payload: []byte("x")}) // gap before every odd seq but the first
		}
		g := p.Gaps()
		if len(g) != MaxGaps {
			t.Fatalf("len(Gaps()) = %d, want %d", len(g), MaxGaps)
		}
		if last, want := g[len(g)-1], (Gap{From: 4 * MaxGaps, To: 4 * MaxGaps}); last != want {
			t.Errorf("Gaps()[last] = %+v, want %+v", last, want)
		}
		g[0] = Gap{}
		if p.Gaps()[0] == (Gap{}) {
			t.Errorf("Gaps() returned the internal slice, want a copy")
		}
	})
}

func TestSkip(t *testing.T) {
	p := fold(t, cellEv("admitted", "c1", nil))
	p.Skip(10)
	if got := p.Cursor(); got != 10 {
		t.Errorf("Skip(10): Cursor() = %d, want 10", got)
	}
	if got, want := jsonStr(p.Gaps()), jsonStr([]Gap{{2, 10}}); got != want {
		t.Errorf("Skip(10): Gaps() = %s, want %s", got, want)
	}
	p.Skip(5)
	if got := p.Cursor(); got != 10 {
		t.Errorf("Skip(5) below cursor: Cursor() = %d, want 10", got)
	}
	if out := p.Apply(Message{Seq: 10, Payload: cellEv("started", "c1", nil)}); out != Stale {
		t.Errorf("Apply(seq 10) after Skip(10) = %v, want %v", out, Stale)
	}
	if got, want := p.Counters(), (Counters{Applied: 1}); !got.Equal(want) {
		t.Errorf("Counters() after Skip = %+v, want %+v", got, want)
	}
}
