package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"cellos-allinone/eventlog"
)

// helloFrame is the first frame of every /ws/events socket.
type helloFrame struct {
	Type     string `json:"type"`
	FirstSeq uint64 `json:"firstSeq"`
	LastSeq  uint64 `json:"lastSeq"`
	Epoch    string `json:"epoch"`
}

// eventItem is one event of a /v1/events page, framed like a WebSocket
// event frame.
type eventItem struct {
	Seq     uint64          `json:"seq"`
	Subject string          `json:"subject"`
	Event   json.RawMessage `json:"event"`
}

type eventPage struct {
	FirstSeq uint64      `json:"firstSeq"`
	LastSeq  uint64      `json:"lastSeq"`
	Events   []eventItem `json:"events"`
	Next     uint64      `json:"next"`
}

// appendEventValue appends a stored payload as the "event" value of a
// frame: the payload itself when it is a JSON object, otherwise a JSON
// string of its bytes, so that malformed events keep the sequence
// gap-free.
func appendEventValue(dst, payload []byte) []byte {
	if t := bytes.TrimLeft(payload, " \t\r\n"); len(t) > 0 && t[0] == '{' && json.Valid(payload) {
		return append(dst, payload...)
	}
	return appendJSONString(dst, string(payload))
}

// appendEventFrame appends {"type":"event","seq":…,"subject":…,"event":…}:
// built by hand because it is written once per event and socket.
func appendEventFrame(dst []byte, d eventlog.Delivery) []byte {
	dst = append(dst, `{"type":"event","seq":`...)
	dst = strconv.AppendUint(dst, d.Seq, 10)
	dst = append(dst, `,"subject":`...)
	dst = appendJSONString(dst, d.Subject)
	dst = append(dst, `,"event":`...)
	dst = appendEventValue(dst, d.Payload)
	return append(dst, '}')
}

func appendJSONString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return append(dst, b...)
}

// cursorError turns a *eventlog.CursorError into cursor_expired (410 /
// 4410) carrying what the client resumes with.
func cursorError(err error, st eventlog.State) error {
	var ce *eventlog.CursorError
	if !errors.As(err, &ce) {
		return err
	}
	return &Error{
		Code:    CodeCursorExpired,
		Message: ce.Reason + "; refetch the snapshot and resume from its cursor",
		Extra:   map[string]any{"firstSeq": st.FirstSeq, "lastSeq": st.LastSeq, "epoch": st.Epoch},
	}
}

// headerHasToken reports whether a comma-separated header holds token
// (case-insensitive).
func headerHasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// listEvents is GET /v1/events: the stored events after since, in
// sequence order, one page at a time. It never waits for new events.
func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) error {
	q, err := parseQuery(r.URL, "since", "limit", "subject")
	if err != nil {
		return err
	}
	var since uint64
	hasSince := q.has("since")
	if hasSince {
		if since, err = ParseSeq("since", q.str("since")); err != nil {
			return err
		}
	}
	limit, err := ParseLimit(q.str("limit"), q.has("limit"), defaultLimit)
	if err != nil {
		return err
	}
	filter, err := parseFilter(q)
	if err != nil {
		return err
	}
	if s.cfg.Log == nil {
		return Errorf(CodeUnavailable, "the event log is not available")
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	st, err := s.cfg.Log.State(ctx)
	if err != nil {
		return Errorf(CodeUnavailable, "event log unavailable: %v", err)
	}
	if !hasSince && st.FirstSeq > 1 {
		// No cursor: the client claims nothing, so the page starts at the
		// oldest retained event instead of reporting a gap.
		since = st.FirstSeq - 1
	}
	start, err := eventlog.Resume(eventlog.Cursor{Since: since, HasSince: true}, st)
	if err != nil {
		return cursorError(err, st)
	}
	page := eventPage{FirstSeq: st.FirstSeq, LastSeq: st.LastSeq, Events: []eventItem{}, Next: since}
	if start <= st.LastSeq {
		if err := s.readPage(ctx, &page, start, filter, limit); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

// readPage fills page with up to limit events from start on and sets next.
func (s *Server) readPage(ctx context.Context, page *eventPage, start uint64, filter string, limit int) error {
	rd, err := s.cfg.Log.OpenReader(ctx, start, filter)
	if err != nil {
		return Errorf(CodeUnavailable, "event log unavailable: %v", err)
	}
	defer func() {
		if err := rd.Close(); err != nil {
			s.log.Warn("reader consumer not deleted; the server removes it after its inactivity threshold", "err", err)
		}
	}()
	if rd.Pending() == 0 {
		// Nothing matches up to the stream's end (at least st.LastSeq):
		// the next page starts there, so a filtered poll moves on.
		page.Next = page.LastSeq
		return nil
	}
	ds, err := rd.Fetch(ctx, int(min(uint64(limit), rd.Pending())))
	if err != nil {
		return Errorf(CodeUnavailable, "event log unavailable: %v", err)
	}
	for _, d := range ds {
		page.Events = append(page.Events, eventItem{Seq: d.Seq, Subject: d.Subject, Event: appendEventValue(nil, d.Payload)})
	}
	if len(ds) > 0 {
		last := ds[len(ds)-1]
		page.Next = last.Seq
		page.LastSeq = max(page.LastSeq, last.Seq)
		if last.Pending == 0 {
			// Nothing further matches up to the end of the stream.
			page.Next = page.LastSeq
		}
	}
	return nil
}
