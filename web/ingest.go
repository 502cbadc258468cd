package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"mime"
	"net/http"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"cellos-allinone/api"
	"cellos-allinone/event"
	"cellos-allinone/eventlog"
)

// Bounds of POST /v1/events (docs/websocket.md, "POST /v1/events").
const (
	// MaxEventBytes bounds the body of one event (structured or binary
	// mode) and each event of a batch.
	MaxEventBytes = 1 << 20
	// MaxBatchBytes bounds the body of a batch.
	MaxBatchBytes = 4 << 20
	// MaxBatchEvents bounds the number of events in a batch.
	MaxBatchEvents = 1000
)

// Content modes of the CloudEvents HTTP protocol binding.
type contentMode int

const (
	modeStructured contentMode = iota // the body is the event
	modeBinary                        // ce-* headers are the attributes, the body is data
	modeBatch                         // the body is a JSON array of events
)

// postEvent is POST /v1/events: CloudEvents in any of the HTTP binding's
// three content modes. Each event is validated and routed by event.Check
// and published with its id as the JetStream message id; nothing is
// published for an event that fails validation.
func (s *Server) postEvent(w http.ResponseWriter, r *http.Request) error {
	if _, err := parseQuery(r.URL); err != nil {
		return err
	}
	mode, err := contentModeOf(r.Header)
	if err != nil {
		return err
	}
	limit, what := int64(MaxEventBytes), "an event"
	if mode == modeBatch {
		limit, what = MaxBatchBytes, "a batch"
	}
	body, err := readBody(w, r, limit, what)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), eventsTimeout)
	defer cancel()
	// Check names the attribute; in binary mode it came from a header.
	refusal := ""
	who := callerOf(r)
	switch mode {
	case modeBatch:
		return s.postBatch(ctx, w, who, body)
	case modeBinary:
		if body, err = binaryToStructured(r.Header, body); err != nil {
			return err
		}
		refusal = "binary mode: "
	}
	ev, err := checkEvent(body, refusal)
	if err != nil {
		return err
	}
	pub, err := s.publishEvent(ctx, who, ev)
	if err != nil {
		return err
	}
	s.metrics.ingested(nil, pub.Duplicate)
	status := http.StatusCreated
	if pub.Duplicate {
		status = http.StatusOK
	}
	writeJSON(w, status, pub)
	return nil
}

// postBatch answers a batch with one result per event, in order: a batch
// that parsed is 200 whatever became of its events, and a refused event
// does not stop the ones after it.
func (s *Server) postBatch(ctx context.Context, w http.ResponseWriter, who caller, body []byte) error {
	if !utf8.Valid(body) {
		return Errorf(CodeInvalidBatch, "the batch is not UTF-8")
	}
	var items []json.RawMessage
	if t := bytes.TrimSpace(body); len(t) == 0 || t[0] != '[' {
		return Errorf(CodeInvalidBatch, "a batch must be a JSON array of CloudEvents")
	}
	if err := json.Unmarshal(body, &items); err != nil {
		return Errorf(CodeInvalidBatch, "the batch is not a JSON array: %v", err)
	}
	if len(items) > MaxBatchEvents {
		return Errorf(CodeBodyTooLarge, "the batch has %d events; a batch may have at most %d", len(items), MaxBatchEvents)
	}
	out := api.Batch{Results: make([]api.BatchResult, len(items))}
	for i, item := range items {
		pub, err := s.publishItem(ctx, who, item)
		var e *Error
		switch {
		case errors.As(err, &e):
			s.metrics.ingested(err, false) // per event: the batch itself is answered 200
			out.Results[i].Error = &api.ItemError{Code: e.Code, Message: e.Message}
		case err != nil:
			return err
		default:
			s.metrics.ingested(nil, pub.Duplicate)
			out.Results[i].Published = &pub
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// publishItem checks and publishes one event of a batch.
func (s *Server) publishItem(ctx context.Context, who caller, item []byte) (api.Published, error) {
	if len(item) > MaxEventBytes {
		return api.Published{}, Errorf(CodeBodyTooLarge, "the event is %d bytes; an event may have at most %d", len(item), MaxEventBytes)
	}
	ev, err := checkEvent(item, "")
	if err != nil {
		return api.Published{}, err
	}
	return s.publishEvent(ctx, who, ev)
}

// checkEvent is event.Check with its refusal, after prefix, as an API
// error.
func checkEvent(payload []byte, prefix string) (event.Checked, error) {
	ev, err := event.Check(payload)
	var inv *event.Invalid
	if errors.As(err, &inv) {
		return ev, Errorf(CodeInvalidEvent, "%s%s", prefix, inv.Reason)
	}
	return ev, err
}

// publishEvent stores a checked event under its id (the JetStream
// message id), so a repeat inside the duplicate window is not stored
// again and answers the first one's sequence.
//
// A tenant publisher's event goes into its sub-tree,
// cellos.events.<tenant>.…, with the message id <tenant>/<id>: the tenant
// is the server's word, never the body's, and one tenant's id never
// shadows another's inside the duplicate window. An event that declares
// another tenant is refused and nothing is published.
func (s *Server) publishEvent(ctx context.Context, who caller, ev event.Checked) (api.Published, error) {
	msgID := ev.ID
	if t := who.tenant(); t != "" {
		for _, declared := range ev.Tenants {
			if declared != t {
				return api.Published{}, Errorf(CodeForbidden, "the event declares tenant %q; principal %q publishes for tenant %q only", declared, who.name(), t)
			}
		}
		ev.Subject = event.TenantSubject(t, ev.Kind, ev.EntityID, ev.Phase)
		msgID = t + "/" + ev.ID
	}
	pub, err := s.cfg.Events.Publish(ctx, ev.Subject, ev.Payload, msgID)
	if errors.Is(err, eventlog.ErrTooLarge) {
		return api.Published{}, Errorf(CodeBodyTooLarge, "the event does not fit one message of the event log: %v", err)
	}
	if err != nil {
		return api.Published{}, Errorf(CodeUnavailable, "event log unavailable: %v", err)
	}
	if pub.Duplicate {
		s.dups.add(who.tenant())
	}
	return api.Published{Seq: pub.Seq, Subject: ev.Subject, Duplicate: pub.Duplicate}, nil
}

// readBody reads at most limit bytes of the request body.
func readBody(w http.ResponseWriter, r *http.Request, limit int64, what string) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, Errorf(CodeBodyTooLarge, "the body is %d bytes; %s may have at most %d", r.ContentLength, what, limit)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, Errorf(CodeBodyTooLarge, "the body is larger than %d bytes, the most %s may have", limit, what)
		}
		return nil, Errorf(CodeBadParameter, "reading the body: %v", err)
	}
	return body, nil
}

// contentModeOf tells the content mode from the headers as the SDK's HTTP
// binding does (the event-format media types, else ce-specversion for
// binary mode), and keeps plain application/json without ce-specversion
// as a structured event, as it was before binary mode existed.
func contentModeOf(h http.Header) (contentMode, error) {
	ct := h.Get("Content-Type")
	switch cehttp.NewMessage(h, nil).ReadEncoding() {
	case binding.EncodingBinary:
		return modeBinary, nil
	case binding.EncodingBatch:
		return modeBatch, checkCharset(ct)
	case binding.EncodingStructured:
		return modeStructured, checkCharset(ct)
	}
	if v := h.Get("Ce-Specversion"); v != "" {
		return 0, Errorf(CodeInvalidEvent, "ce-specversion: %q is not a CloudEvents version; send 1.0", v)
	}
	for name := range h {
		if strings.HasPrefix(name, "Ce-") {
			return 0, Errorf(CodeInvalidEvent, "ce-specversion: the header is missing; a binary-mode event (ce-* headers) needs ce-specversion: 1.0")
		}
	}
	if mt, _, err := mime.ParseMediaType(ct); err == nil && mt == "application/json" {
		return modeStructured, checkCharset(ct)
	}
	return 0, Errorf(CodeUnsupportedMedia, "Content-Type %q: send one CloudEvent as application/cloudevents+json (or application/json), "+
		"a batch as application/cloudevents-batch+json, or binary mode: ce-* headers with the data as a JSON body", ct)
}

// checkCharset refuses a body in another charset than UTF-8.
func checkCharset(ct string) error {
	_, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return Errorf(CodeUnsupportedMedia, "Content-Type %q: %v", ct, err)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return Errorf(CodeUnsupportedMedia, "Content-Type %q: the charset must be utf-8", ct)
	}
	return nil
}

// binaryToStructured reads a binary-mode event with the SDK's HTTP binding
// (attributes from the ce-* headers, datacontenttype from Content-Type,
// data from the body) and renders it in the JSON event format, so that
// event.Check applies the same rules as to a structured event and the
// stored event has the same form.
func binaryToStructured(h http.Header, body []byte) ([]byte, error) {
	ce, err := binding.ToEvent(context.Background(), cehttp.NewMessage(h, io.NopCloser(bytes.NewReader(body))))
	if err != nil {
		return nil, Errorf(CodeInvalidEvent, "binary mode: the ce-* headers are not a CloudEvent: %v", err)
	}
	// The SDK writes JSON data as it is: it must be JSON to make a
	// JSON event (data of another media type is refused by Check).
	if mt, _ := ce.Context.GetDataMediaType(); (mt == "" || mt == "application/json" || strings.HasSuffix(mt, "+json")) && len(body) > 0 && !json.Valid(body) {
		return nil, Errorf(CodeInvalidEvent, "data: the body of a binary-mode event must be a JSON object carrying %s or %s; it is not JSON",
			event.EntityIDField(event.KindFormation), event.EntityIDField(event.KindCell))
	}
	payload, err := json.Marshal(ce)
	if err != nil {
		return nil, Errorf(CodeInvalidEvent, "binary mode: the event cannot be written as JSON: %v", err)
	}
	return payload, nil
}

// dupCounts counts the duplicates POST /v1/events answered, per tenant of
// the publisher ("" for untenanted ones), since the process started: a
// producer that retries too much shows in /v1/status. Tenants come from
// the auth file, so the map stays small.
type dupCounts struct {
	mu sync.Mutex
	n  map[string]uint64
}

func (d *dupCounts) add(tenant string) {
	d.mu.Lock()
	if d.n == nil {
		d.n = map[string]uint64{}
	}
	d.n[tenant]++
	d.mu.Unlock()
}

func (d *dupCounts) snapshot() map[string]uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]uint64, len(d.n))
	maps.Copy(out, d.n)
	return out
}
