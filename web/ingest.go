package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"cellos-allinone/eventlog"
	"cellos-allinone/projection"
)

// MaxEventBytes bounds the body of POST /v1/events.
const MaxEventBytes = 1 << 20

// maxEventIDLen bounds the CloudEvent id, which becomes the Nats-Msg-Id
// header.
const maxEventIDLen = 256

type published struct {
	Seq       uint64 `json:"seq"`
	Subject   string `json:"subject"`
	Duplicate bool   `json:"duplicate"`
}

// postEvent is POST /v1/events: one CloudEvent (structured mode) is
// validated, routed to the subject its type and entity id derive, and
// published with its id as the JetStream message id. Nothing is published
// when validation fails.
func (s *Server) postEvent(w http.ResponseWriter, r *http.Request) error {
	if _, err := parseQuery(r.URL); err != nil {
		return err
	}
	if err := checkEventContentType(r.Header.Get("Content-Type")); err != nil {
		return err
	}
	if r.ContentLength > MaxEventBytes {
		return Errorf(CodeBodyTooLarge, "the body is %d bytes; an event may have at most %d", r.ContentLength, MaxEventBytes)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxEventBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return Errorf(CodeBodyTooLarge, "the body is larger than %d bytes, the most an event may have", MaxEventBytes)
		}
		return Errorf(CodeBadParameter, "reading the body: %v", err)
	}
	ev, err := validateEvent(body)
	if err != nil {
		return err
	}
	if s.cfg.Log == nil {
		return Errorf(CodeUnavailable, "the event log is not available")
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	pub, err := s.cfg.Log.Publish(ctx, ev.subject, ev.payload, ev.id)
	if errors.Is(err, eventlog.ErrTooLarge) {
		return Errorf(CodeBodyTooLarge, "the event does not fit one message of the event log: %v", err)
	}
	if err != nil {
		return Errorf(CodeUnavailable, "event log unavailable: %v", err)
	}
	status := http.StatusCreated
	if pub.Duplicate {
		status = http.StatusOK
	}
	writeJSON(w, status, published{Seq: pub.Seq, Subject: ev.subject, Duplicate: pub.Duplicate})
	return nil
}

// checkEventContentType accepts application/cloudevents+json (structured
// mode) and application/json, in UTF-8.
func checkEventContentType(ct string) error {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || (mt != "application/cloudevents+json" && mt != "application/json") {
		return Errorf(CodeUnsupportedMedia, "Content-Type %q: send one CloudEvent as application/cloudevents+json (or application/json)", ct)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return Errorf(CodeUnsupportedMedia, "Content-Type %q: the charset must be utf-8", ct)
	}
	return nil
}

// ingestEvent is a validated event ready to publish.
type ingestEvent struct {
	id      string
	subject string
	payload []byte // the event as stored: the body, compacted
}

// validateEvent checks body as one CloudEvents 1.0 JSON event of a type
// this server can route and names the first attribute that is wrong.
// Unknown types are refused: their subject cannot be derived.
func validateEvent(body []byte) (ingestEvent, error) {
	bad := func(format string, args ...any) (ingestEvent, error) {
		return ingestEvent{}, Errorf(CodeInvalidEvent, format, args...)
	}
	if !utf8.Valid(body) {
		return bad("the body is not UTF-8")
	}
	var attrs map[string]json.RawMessage
	if t := bytes.TrimSpace(body); len(t) == 0 || t[0] != '{' {
		return bad("the body must be one CloudEvent, a JSON object")
	}
	if err := json.Unmarshal(body, &attrs); err != nil {
		return bad("the body is not a JSON object: %v", err)
	}
	str := func(name string, required bool) (string, error) {
		raw, ok := attrs[name]
		if !ok || string(raw) == "null" {
			if required {
				return "", Errorf(CodeInvalidEvent, "%s: the required attribute is missing", name)
			}
			return "", nil
		}
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			return "", Errorf(CodeInvalidEvent, "%s: must be a string, got %s", name, clip(raw))
		}
		if v == "" {
			return "", Errorf(CodeInvalidEvent, "%s: must not be empty", name)
		}
		return v, nil
	}
	specversion, err := str("specversion", true)
	if err != nil {
		return ingestEvent{}, err
	}
	if specversion != "1.0" {
		return bad("specversion: must be \"1.0\", got %q", specversion)
	}
	id, err := str("id", true)
	if err != nil {
		return ingestEvent{}, err
	}
	if len(id) > maxEventIDLen || strings.IndexFunc(id, unicode.IsControl) >= 0 {
		return bad("id: at most %d characters without control characters", maxEventIDLen)
	}
	source, err := str("source", true)
	if err != nil {
		return ingestEvent{}, err
	}
	if _, err := url.Parse(source); err != nil {
		return bad("source: not a URI reference: %v", err)
	}
	typ, err := str("type", true)
	if err != nil {
		return ingestEvent{}, err
	}
	kind, phase, ok := projection.ClassifyType(typ)
	if !ok {
		return bad("type: %q is not a v1 CellOS event type (dev.cellos.events.formation.lifecycle.v1.*, dev.cellos.events.cell.lifecycle.v1.*, dev.cellos.events.cell.compliance.v1.summary), so its subject cannot be derived", typ)
	}
	if _, err := str("subject", false); err != nil {
		return ingestEvent{}, err
	}
	if t, err := str("time", false); err != nil {
		return ingestEvent{}, err
	} else if t != "" {
		if _, err := time.Parse(time.RFC3339Nano, t); err != nil {
			return bad("time: not an RFC 3339 timestamp: %q", t)
		}
	}
	if ct, err := str("datacontenttype", false); err != nil {
		return ingestEvent{}, err
	} else if ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return bad("datacontenttype: %q is not JSON; data must be a JSON object", ct)
		}
	}
	if _, ok := attrs["data_base64"]; ok {
		return bad("data_base64: not supported; data must be a JSON object")
	}
	entityID, err := entityIDOf(attrs["data"], kind)
	if err != nil {
		return ingestEvent{}, err
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range attrs {
			if !yield(k) {
				return
			}
		}
	})
	for _, name := range names {
		if !validAttributeName(name) {
			return bad("attribute name %q: CloudEvents attribute names are lowercase letters and digits", name)
		}
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, body); err != nil {
		return bad("the body is not JSON: %v", err)
	}
	return ingestEvent{
		id:      id,
		subject: eventlog.EventSubject(kind.String(), entityID, phase),
		payload: compact.Bytes(),
	}, nil
}

// entityIDOf reads data.formationId or data.cellId: the subject's id
// token.
func entityIDOf(data json.RawMessage, kind projection.Kind) (string, error) {
	field := projection.EntityIDField(kind)
	var obj map[string]json.RawMessage
	if len(data) == 0 || json.Unmarshal(data, &obj) != nil || obj == nil {
		return "", Errorf(CodeInvalidEvent, "data: must be a JSON object carrying %s", field)
	}
	raw, ok := obj[field]
	if !ok {
		return "", Errorf(CodeInvalidEvent, "data.%s: missing; a %s event needs it", field, kind)
	}
	var id string
	if err := json.Unmarshal(raw, &id); err != nil {
		return "", Errorf(CodeInvalidEvent, "data.%s: must be a string, got %s", field, clip(raw))
	}
	if !projection.ValidID(id) {
		return "", Errorf(CodeInvalidEvent, "data.%s: %q is not a valid id (1-%d letters, digits, '-' or '_')", field, id, projection.MaxIDLen)
	}
	return id, nil
}

func validAttributeName(name string) bool {
	if name == "data_base64" || name == "" {
		return name != ""
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// clip shortens a JSON value quoted in an error message.
func clip(raw json.RawMessage) string {
	const max = 40
	if len(raw) > max {
		return fmt.Sprintf("%s…", raw[:max])
	}
	return string(raw)
}
