package web_test

// POST /v1/events as the CloudEvents Go SDK sends it: its HTTP client in
// binary mode (its default) and in structured mode, and batches built by
// its HTTP binding (the SDK's client has no batch sending).

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"cellos-allinone/api"
	"cellos-allinone/testutil"
	"cellos-allinone/web"
)

// sdkClient is the SDK's HTTP client aimed at POST /v1/events, on the
// test's own HTTP client (whose idle connections are closed at the end).
func (e *wsEnv) sdkClient(t testing.TB) cloudevents.Client {
	t.Helper()
	c, err := cloudevents.NewClientHTTP(cloudevents.WithTarget(e.a.URL()+"/v1/events"), cehttp.WithClient(*e.client))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sdkEvent is a CloudEvent made with the SDK, its data JSON.
func sdkEvent(t testing.TB, id, typ string, data any) cloudevents.Event {
	t.Helper()
	ev := cloudevents.NewEvent()
	ev.SetID(id)
	ev.SetSource("/supervisor/sdk")
	ev.SetType(typ)
	ev.SetTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	if err := ev.SetData(cloudevents.ApplicationJSON, data); err != nil {
		t.Fatal(err)
	}
	return ev
}

const (
	typFormationCreated = "dev.cellos.events.formation.lifecycle.v1.created"
	typCellAdmitted     = "dev.cellos.events.cell.lifecycle.v1.admitted"
	typCellStarted      = "dev.cellos.events.cell.lifecycle.v1.started"
	typCellCompleted    = "dev.cellos.events.cell.lifecycle.v1.completed"
)

// sdkSend sends ev with the SDK's client and returns the HTTP status and
// the result (whose text carries the answer's body when it is an error).
func sdkSend(ctx context.Context, t testing.TB, c cloudevents.Client, ev cloudevents.Event) (int, error) {
	t.Helper()
	res := c.Send(ctx, ev)
	var hr *cehttp.Result
	if !cloudevents.ResultAs(res, &hr) {
		t.Fatalf("send %s: %v, not an HTTP result", ev.ID(), res)
	}
	return hr.StatusCode, res
}

// postBatch posts events as one batch request made by the SDK's HTTP
// binding and decodes the 200 answer.
func (e *wsEnv) postBatch(t testing.TB, events ...cloudevents.Event) api.Batch {
	t.Helper()
	req, err := cloudevents.NewHTTPRequestFromEvents(testutil.Ctx(t, 10*time.Second), e.a.URL()+"/v1/events", events)
	if err != nil {
		t.Fatal(err)
	}
	status, body := e.send(t, req)
	var out api.Batch
	if err := json.Unmarshal(body, &out); status != http.StatusOK || err != nil || len(out.Results) != len(events) {
		t.Fatalf("batch POST = %d %s, want 200 with %d results", status, body, len(events))
	}
	return out
}

// stored reads the message at seq and decodes its event.
func (e *wsEnv) stored(t testing.TB, seq uint64) (msgID string, ev map[string]any) {
	t.Helper()
	msg, found, err := e.a.Events.Get(testutil.Ctx(t, 5*time.Second), seq)
	if err != nil || !found {
		t.Fatalf("stored message %d: found %v, %v", seq, found, err)
	}
	if err := json.Unmarshal(msg.Data, &ev); err != nil {
		t.Fatalf("stored message %d is not a JSON object: %s", seq, msg.Data)
	}
	return msg.Header.Get("Nats-Msg-Id"), ev
}

func TestIngestSDKClientAllThreeModes(t *testing.T) {
	e := wsStart(t, web.WSConfig{})
	c := e.sdkClient(t)
	ctx := testutil.Ctx(t, 30*time.Second)

	// Binary mode, the SDK's default; an extension travels as a ce-* header.
	formation := sdkEvent(t, "sdk-1", typFormationCreated, map[string]any{"formationId": "f-sdk", "name": "sdk"})
	admitted := sdkEvent(t, "sdk-2", typCellAdmitted, map[string]any{"cellId": "c-bin", "formationId": "f-sdk"})
	admitted.SetExtension("partitionkey", "p-7")
	for i, step := range []struct {
		ev     cloudevents.Event
		status int
	}{
		{formation, http.StatusCreated},
		{admitted, http.StatusCreated},
		{admitted, http.StatusOK}, // a retry: a duplicate, not stored again
	} {
		if status, res := sdkSend(ctx, t, c, step.ev); status != step.status || !cloudevents.IsACK(res) {
			t.Fatalf("binary send %d (%s) = %d %v, want %d", i, step.ev.ID(), status, res, step.status)
		}
	}

	// Structured mode.
	structured := cloudevents.WithEncodingStructured(ctx)
	started := sdkEvent(t, "sdk-3", typCellStarted, map[string]any{"cellId": "c-bin"})
	for i, want := range []int{http.StatusCreated, http.StatusOK} {
		if status, res := sdkSend(structured, t, c, started); status != want || !cloudevents.IsACK(res) {
			t.Fatalf("structured send %d = %d %v, want %d", i, status, res, want)
		}
	}

	// Batch mode: answered per event, in order; a repeat inside the batch
	// is a duplicate of the first.
	batAdmitted := sdkEvent(t, "sdk-4", typCellAdmitted, map[string]any{"cellId": "c-bat", "formationId": "f-sdk"})
	batDone := sdkEvent(t, "sdk-5", typCellCompleted, map[string]any{"cellId": "c-bat", "exitCode": 0})
	got := e.postBatch(t, batAdmitted, batDone, batAdmitted, formation)
	want := []api.Published{
		{Seq: 4, Subject: "cellos.events.cell.c-bat.admitted"},
		{Seq: 5, Subject: "cellos.events.cell.c-bat.completed"},
		{Seq: 4, Subject: "cellos.events.cell.c-bat.admitted", Duplicate: true},
		{Seq: 1, Subject: "cellos.events.formation.f-sdk.created", Duplicate: true}, // sent earlier in binary mode
	}
	for i, r := range got.Results {
		if r.Error != nil || r.Published == nil || *r.Published != want[i] {
			t.Errorf("batch result %d = %+v %+v, want %+v", i, r.Published, r.Error, want[i])
		}
	}

	// Stored once each, under the CloudEvent id, in the JSON event format.
	if last := e.lastSeq(t); last != 5 {
		t.Fatalf("stream last sequence = %d, want 5: duplicates are not stored", last)
	}
	for seq, want := range map[uint64]struct{ id, typ string }{
		1: {"sdk-1", typFormationCreated}, 2: {"sdk-2", typCellAdmitted}, 3: {"sdk-3", typCellStarted},
		4: {"sdk-4", typCellAdmitted}, 5: {"sdk-5", typCellCompleted},
	} {
		msgID, ev := e.stored(t, seq)
		if msgID != want.id || ev["id"] != want.id || ev["type"] != want.typ || ev["specversion"] != "1.0" ||
			ev["source"] != "/supervisor/sdk" || ev["time"] != "2026-01-02T03:04:05Z" {
			t.Errorf("stored %d: Nats-Msg-Id %q, event %v; want id %s, type %s, the SDK's attributes", seq, msgID, ev, want.id, want.typ)
		}
		if _, ok := ev["data"].(map[string]any); !ok {
			t.Errorf("stored %d: data = %v, want the JSON object sent", seq, ev["data"])
		}
	}
	if _, ev := e.stored(t, 2); ev["partitionkey"] != "p-7" || ev["datacontenttype"] != "application/json" {
		t.Errorf("binary-mode event stored as %v, want the ce-partitionkey extension and datacontenttype application/json", ev)
	}

	// And projected.
	testutil.WaitFor(t, 10*time.Second, "the projection applies the SDK's events", func() bool {
		status, body := e.do(t, "GET", "/v1/formations/f-sdk", "", nil)
		var f struct {
			Formation struct{ Name string } `json:"formation"`
			Cells     []struct {
				ID    string `json:"id"`
				State string `json:"state"`
			} `json:"cells"`
		}
		if status != http.StatusOK || json.Unmarshal(body, &f) != nil || f.Formation.Name != "sdk" || len(f.Cells) != 2 {
			return false
		}
		states := map[string]string{}
		for _, c := range f.Cells {
			states[c.ID] = c.State
		}
		return states["c-bin"] == "running" && states["c-bat"] == "completed"
	})
}

func TestIngestSDKBadInputPerMode(t *testing.T) {
	e := wsStart(t, web.WSConfig{})
	c := e.sdkClient(t)
	ctx := testutil.Ctx(t, 30*time.Second)
	url := e.a.URL() + "/v1/events"
	good := func(id string) cloudevents.Event {
		return sdkEvent(t, id, typCellAdmitted, map[string]any{"cellId": "c-" + id})
	}
	badType := sdkEvent(t, "bad-type", "com.example.other", map[string]any{"cellId": "c-x"})

	wantRefused := func(what string, status int, text string, code, field string) {
		t.Helper()
		want := http.StatusBadRequest
		if code == "body_too_large" {
			want = http.StatusRequestEntityTooLarge
		}
		if status != want || !strings.Contains(text, `"code":"`+code+`"`) || !strings.Contains(text, field) {
			t.Errorf("%s = %d %s, want %s naming %q", what, status, text, code, field)
		}
	}

	// Binary mode.
	req, err := cehttp.NewHTTPRequestFromEvent(ctx, url, good("no-specversion"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Del("Ce-Specversion")
	status, body := e.send(t, req)
	wantRefused("binary without ce-specversion", status, string(body), "invalid_event", "ce-specversion")
	for _, tt := range []struct{ header, value, field string }{
		{"Ce-Specversion", "2.0", "ce-specversion"},
		{"Ce-Specversion", "0.3", "binary mode: specversion"},
		{"Ce-Id", "", "binary mode: id"},
		{"Ce-Time", "yesterday", "time"},
	} {
		req, err := cehttp.NewHTTPRequestFromEvent(ctx, url, good("hdr"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Del(tt.header)
		if tt.value != "" {
			req.Header.Set(tt.header, tt.value)
		}
		status, body := e.send(t, req)
		wantRefused("binary with "+tt.header+": "+tt.value, status, string(body), "invalid_event", tt.field)
	}

	status, res := sdkSend(ctx, t, c, badType)
	wantRefused("binary, unknown type", status, res.Error(), "invalid_event", "type")

	badJSON := good("bad-json")
	if err := badJSON.SetData(cloudevents.ApplicationJSON, []byte(`{"cellId":`)); err != nil {
		t.Fatal(err)
	}
	status, res = sdkSend(ctx, t, c, badJSON)
	wantRefused("binary, data not JSON", status, res.Error(), "invalid_event", "data")

	textData := good("text-data")
	if err := textData.SetData(cloudevents.TextPlain, "c-1"); err != nil {
		t.Fatal(err)
	}
	status, res = sdkSend(ctx, t, c, textData)
	wantRefused("binary, text/plain data", status, res.Error(), "invalid_event", "datacontenttype")

	noCell := sdkEvent(t, "no-cell", typCellStarted, map[string]any{"formationId": "f-1"})
	status, res = sdkSend(ctx, t, c, noCell)
	wantRefused("binary, data without cellId", status, res.Error(), "invalid_event", "data.cellId")

	// Structured mode.
	status, res = sdkSend(cloudevents.WithEncodingStructured(ctx), t, c, badType)
	wantRefused("structured, unknown type", status, res.Error(), "invalid_event", "type")

	// Malformed batches: refused whole.
	const batchCT = "application/cloudevents-batch+json"
	for _, tt := range []struct {
		name, body  string
		code, field string
	}{
		{"an object", `{"specversion":"1.0"}`, "invalid_batch", "JSON array"},
		{"truncated", `[{"specversion":"1.0"}`, "invalid_batch", "JSON array"},
		{"null", `null`, "invalid_batch", "JSON array"},
		{"not UTF-8", "[\"\xff\"]", "invalid_batch", "UTF-8"},
		{"too many events", "[" + strings.Repeat("{},", web.MaxBatchEvents) + "{}]", "body_too_large", fmt.Sprint(web.MaxBatchEvents)},
		{"too large", `["` + strings.Repeat("x", web.MaxBatchBytes) + `"]`, "body_too_large", "bytes"},
	} {
		status, body := e.do(t, "POST", "/v1/events", batchCT, []byte(tt.body))
		wantRefused("batch "+tt.name, status, string(body), tt.code, tt.field)
	}
	if last := e.lastSeq(t); last != 0 {
		t.Fatalf("stream last sequence after refused events = %d, want 0", last)
	}

	// An empty batch is an empty answer.
	if status, body := e.do(t, "POST", "/v1/events", batchCT, []byte(`[]`)); status != http.StatusOK || strings.TrimSpace(string(body)) != `{"results":[]}` {
		t.Errorf("empty batch = %d %s, want 200 {\"results\":[]}", status, body)
	}

	// A batch with bad events among good ones: the good ones are stored,
	// each bad one is answered with its code, the order is kept.
	got := e.postBatch(t, good("b1"), badType, good("b2"), noCell, good("b3"))
	for i, wantSeq := range []uint64{1, 0, 2, 0, 3} {
		r := got.Results[i]
		switch {
		case wantSeq == 0 && (r.Published != nil || r.Error == nil || r.Error.Code != "invalid_event"):
			t.Errorf("batch result %d = %+v %+v, want an invalid_event error", i, r.Published, r.Error)
		case wantSeq != 0 && (r.Error != nil || r.Published == nil || r.Published.Seq != wantSeq || r.Published.Duplicate):
			t.Errorf("batch result %d = %+v %+v, want seq %d", i, r.Published, r.Error, wantSeq)
		}
	}
	if r := got.Results[1].Error; r == nil || !strings.Contains(r.Message, "type") {
		t.Errorf("bad type in a batch answered %+v, want a message naming type", r)
	}
	if r := got.Results[3].Error; r == nil || !strings.Contains(r.Message, "data.cellId") {
		t.Errorf("missing cellId in a batch answered %+v, want a message naming data.cellId", r)
	}
	if last := e.lastSeq(t); last != 3 {
		t.Errorf("stream last sequence = %d, want 3: only the good events of the batch", last)
	}
	testutil.WaitFor(t, 10*time.Second, "the projection applies the batch's good events", func() bool {
		status, body := e.do(t, "GET", "/v1/cells/c-b3", "", nil)
		return status == http.StatusOK && strings.Contains(string(body), `"state":"admitted"`)
	})
}
