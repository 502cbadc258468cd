package web_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"cellos-allinone/testutil"
	"cellos-allinone/web"
)

const ceJSON = "application/cloudevents+json"

// ce is a valid cell event with attrs overriding (nil deletes) its
// attributes.
func ce(attrs map[string]any) []byte {
	ev := map[string]any{
		"specversion": "1.0",
		"id":          "ev-1",
		"source":      "/supervisor/a",
		"type":        "dev.cellos.events.cell.lifecycle.v1.started",
		"time":        "2026-01-02T03:04:05Z",
		"data":        map[string]any{"cellId": "c-1", "formationId": "f-1"},
	}
	for k, v := range attrs {
		if v == nil {
			delete(ev, k)
		} else {
			ev[k] = v
		}
	}
	b, _ := json.Marshal(ev)
	return b
}

type publishedBody struct {
	Seq       uint64 `json:"seq"`
	Subject   string `json:"subject"`
	Duplicate bool   `json:"duplicate"`
}

func TestIngestStoresOnceAndReportsDuplicates(t *testing.T) {
	e := wsStart(t, web.WSConfig{})
	e.publish(t, "cellos.events.cell.c0.admitted", 1)
	live, _ := e.dial(t, "", nil)

	status, body := e.do(t, "POST", "/v1/events", ceJSON, ce(nil))
	var first publishedBody
	if err := json.Unmarshal(body, &first); status != http.StatusCreated || err != nil {
		t.Fatalf("POST = %d %s, want 201", status, body)
	}
	if first != (publishedBody{Seq: 2, Subject: "cellos.events.cell.c-1.started"}) {
		t.Errorf("POST = %+v, want seq 2 on cellos.events.cell.c-1.started, not duplicate", first)
	}
	msg, found, err := e.a.Events.Get(testutil.Ctx(t, 5*time.Second), 2)
	if err != nil || !found || msg.Header.Get("Nats-Msg-Id") != "ev-1" {
		t.Fatalf("stored message: %+v %v %v, want Nats-Msg-Id ev-1", msg, found, err)
	}
	// A retry (same id, even with other content) is not stored again.
	for _, retry := range [][]byte{ce(nil), ce(map[string]any{"source": "/other"})} {
		status, body = e.do(t, "POST", "/v1/events", "application/json; charset=utf-8", retry)
		var again publishedBody
		if err := json.Unmarshal(body, &again); status != http.StatusOK || err != nil || again != (publishedBody{Seq: 2, Subject: first.Subject, Duplicate: true}) {
			t.Errorf("repeated POST = %d %s, want 200 seq 2 duplicate", status, body)
		}
	}
	status, body = e.do(t, "POST", "/v1/events", ceJSON, ce(map[string]any{
		"id": "ev-2", "type": "dev.cellos.events.formation.lifecycle.v1.created",
		"data": map[string]any{"formationId": "f_2", "name": "two"},
	}))
	if status != http.StatusCreated || !strings.Contains(string(body), `"subject":"cellos.events.formation.f_2.created"`) {
		t.Errorf("formation POST = %d %s, want 201 on cellos.events.formation.f_2.created", status, body)
	}
	status, body = e.do(t, "POST", "/v1/events", ceJSON, ce(map[string]any{
		"id": "ev-3", "type": "dev.cellos.events.cell.compliance.v1.summary",
	}))
	if status != http.StatusCreated || !strings.Contains(string(body), `"subject":"cellos.events.cell.c-1.summary"`) {
		t.Errorf("compliance POST = %d %s, want 201 on cellos.events.cell.c-1.summary", status, body)
	}
	got := readEvents(t, live, 3)
	if seqs := seqsOf(got); seqs[0] != 2 || seqs[1] != 3 || seqs[2] != 4 {
		t.Errorf("live socket got %v, want 2, 3, 4", seqs)
	}
	var stored map[string]any
	if err := json.Unmarshal(got[0].Event, &stored); err != nil || stored["id"] != "ev-1" || stored["source"] != "/supervisor/a" {
		t.Errorf("stored event = %s, want the posted CloudEvent", got[0].Event)
	}
	// The projection applies what was posted.
	testutil.WaitFor(t, 10*time.Second, "projection applies the posted events", func() bool {
		status, body := e.do(t, "GET", "/v1/cells/c-1", "", nil)
		return status == http.StatusOK && strings.Contains(string(body), `"state":"running"`)
	})
}

func TestIngestRejectsInvalidEventsAndPublishesNothing(t *testing.T) {
	e := wsStart(t, web.WSConfig{})
	big := `{"specversion":"1.0","pad":"` + strings.Repeat("x", web.MaxEventBytes) + `"}`
	tests := []struct {
		name        string
		contentType string
		body        []byte
		status      int
		code, field string // field: text the message must name
	}{
		{"missing specversion", ceJSON, ce(map[string]any{"specversion": nil}), 400, "invalid_event", "specversion"},
		{"wrong specversion", ceJSON, ce(map[string]any{"specversion": "0.3"}), 400, "invalid_event", "specversion"},
		{"missing id", ceJSON, ce(map[string]any{"id": nil}), 400, "invalid_event", "id"},
		{"empty id", ceJSON, ce(map[string]any{"id": ""}), 400, "invalid_event", "id"},
		{"numeric id", ceJSON, ce(map[string]any{"id": 7}), 400, "invalid_event", "id"},
		{"id too long", ceJSON, ce(map[string]any{"id": strings.Repeat("i", 257)}), 400, "invalid_event", "id"},
		{"id with a newline", ceJSON, ce(map[string]any{"id": "a\nb"}), 400, "invalid_event", "id"},
		{"missing source", ceJSON, ce(map[string]any{"source": nil}), 400, "invalid_event", "source"},
		{"missing type", ceJSON, ce(map[string]any{"type": nil}), 400, "invalid_event", "type"},
		{"unknown type", ceJSON, ce(map[string]any{"type": "com.example.other"}), 400, "invalid_event", "type"},
		{"unknown cell phase", ceJSON, ce(map[string]any{"type": "dev.cellos.events.cell.lifecycle.v1.paused"}), 400, "invalid_event", "type"},
		{"subject not a string", ceJSON, ce(map[string]any{"subject": 1}), 400, "invalid_event", "subject"},
		{"bad time", ceJSON, ce(map[string]any{"time": "yesterday"}), 400, "invalid_event", "time"},
		{"non-JSON datacontenttype", ceJSON, ce(map[string]any{"datacontenttype": "text/plain"}), 400, "invalid_event", "datacontenttype"},
		{"data_base64", ceJSON, ce(map[string]any{"data": nil, "data_base64": "eyJ9"}), 400, "invalid_event", "data_base64"},
		{"missing data", ceJSON, ce(map[string]any{"data": nil}), 400, "invalid_event", "data"},
		{"data not an object", ceJSON, ce(map[string]any{"data": "c-1"}), 400, "invalid_event", "data"},
		{"missing cellId", ceJSON, ce(map[string]any{"data": map[string]any{"formationId": "f"}}), 400, "invalid_event", "data.cellId"},
		{"cellId not a string", ceJSON, ce(map[string]any{"data": map[string]any{"cellId": 5}}), 400, "invalid_event", "data.cellId"},
		{"cellId not a token", ceJSON, ce(map[string]any{"data": map[string]any{"cellId": "a.b"}}), 400, "invalid_event", "data.cellId"},
		{"cellId with a wildcard", ceJSON, ce(map[string]any{"data": map[string]any{"cellId": "*"}}), 400, "invalid_event", "data.cellId"},
		{"formationId missing", ceJSON, ce(map[string]any{"type": "dev.cellos.events.formation.lifecycle.v1.running", "data": map[string]any{"cellId": "c-1"}}), 400, "invalid_event", "data.formationId"},
		{"bad attribute name", ceJSON, ce(map[string]any{"Extra": "x"}), 400, "invalid_event", "Extra"},
		{"array body", ceJSON, []byte(`[` + string(ce(nil)) + `]`), 400, "invalid_event", "JSON object"},
		{"not JSON", ceJSON, []byte(`{"specversion":`), 400, "invalid_event", "JSON"},
		{"not UTF-8", ceJSON, []byte("{\"id\":\"\xff\"}"), 400, "invalid_event", "UTF-8"},
		{"empty body", ceJSON, nil, 400, "invalid_event", "JSON object"},
		{"too large", ceJSON, []byte(big), 413, "body_too_large", "bytes"},
		{"text/plain", "text/plain", ce(nil), 415, "unsupported_media_type", "Content-Type"},
		{"no content type", "", ce(nil), 415, "unsupported_media_type", "Content-Type"},
		{"batch of one object", "application/cloudevents-batch+json", ce(nil), 400, "invalid_batch", "JSON array"},
		{"xml event format", "application/cloudevents+xml", ce(nil), 415, "unsupported_media_type", "Content-Type"},
		{"latin-1", "application/json; charset=iso-8859-1", ce(nil), 415, "unsupported_media_type", "charset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := e.do(t, "POST", "/v1/events", tt.contentType, tt.body)
			if status != tt.status {
				t.Fatalf("POST %s = %d %s, want %d", tt.name, status, body, tt.status)
			}
			got := decodeError(t, string(body))
			if got.Error.Code != tt.code || !strings.Contains(got.Error.Message, tt.field) {
				t.Errorf("POST %s: %s, want code %s naming %q", tt.name, body, tt.code, tt.field)
			}
		})
	}
	if last := e.lastSeq(t); last != 0 {
		t.Errorf("stream last sequence after rejected posts = %d, want 0: nothing published", last)
	}
}
