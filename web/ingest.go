package web

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"cellos-allinone/api"
	"cellos-allinone/event"
	"cellos-allinone/eventlog"
)

// MaxEventBytes bounds the body of POST /v1/events.
const MaxEventBytes = 1 << 20

// postEvent is POST /v1/events: one CloudEvent (structured mode) is
// validated and routed by event.Check and published with its id as the
// JetStream message id. Nothing is published when validation fails.
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
	ev, err := event.Check(body)
	var inv *event.Invalid
	if errors.As(err, &inv) {
		return Errorf(CodeInvalidEvent, "%s", inv.Reason)
	}
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), eventsTimeout)
	defer cancel()
	pub, err := s.cfg.Events.Publish(ctx, ev.Subject, ev.Payload, ev.ID)
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
	writeJSON(w, status, api.Published{Seq: pub.Seq, Subject: ev.Subject, Duplicate: pub.Duplicate})
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
