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

	"cellos-allinone/api"
	"cellos-allinone/eventlog"
)

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

// eventFrameHead starts every event frame; what follows it, after a '{',
// is the frame's item: {"seq":…,"subject":…,"event":…}.
const eventFrameHead = `{"type":"event",`

// appendEventFrame appends {"type":"event","seq":…,"subject":…,"event":…}:
// built by hand because it is written once per event and socket.
func appendEventFrame(dst []byte, d eventlog.Delivery) []byte {
	dst = append(dst, eventFrameHead+`"seq":`...)
	dst = strconv.AppendUint(dst, d.Seq, 10)
	dst = append(dst, `,"subject":`...)
	dst = appendJSONString(dst, d.Subject)
	dst = append(dst, `,"event":`...)
	dst = appendEventValue(dst, d.Payload)
	return append(dst, '}')
}

// A batch frame (docs/websocket.md) is batchHead, the items of its events
// separated by commas, and batchTail:
// {"type":"events","events":[{"seq":…,"subject":…,"event":…},…]}.
const (
	batchHead = `{"type":"events","events":[`
	batchTail = `]}`
)

// itemLen is the length of the item of an event frame made by
// appendEventFrame.
func itemLen(frame []byte) int { return len(frame) - len(eventFrameHead) + 1 }

// appendItem appends the item of an event frame made by appendEventFrame:
// the same bytes without the frame's type, so that an event encoded once
// serves as a single frame and inside any batch frame.
func appendItem(dst, frame []byte) []byte {
	dst = append(dst, '{')
	return append(dst, frame[len(eventFrameHead):]...)
}

func appendJSONString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return append(dst, b...)
}

// cursorError turns a *eventlog.CursorError into cursor_expired (410 /
// 4410) carrying what the client resumes with: the stream's state when
// the cursor was refused.
func cursorError(err error) error {
	var ce *eventlog.CursorError
	if !errors.As(err, &ce) {
		return err
	}
	st := ce.State
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

// listEvents is GET /v1/events: the stored events after since (or from a
// time on), in sequence order, one page at a time. It never waits for new
// events. A page never jumps: it holds exactly the retained events
// matching its filter from since+1 on; when they cannot be read (the floor
// passed since+1 before or while the page was read, or epoch is not the
// stream's), the answer is 410 cursor_expired.
func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) error {
	q, err := parseQuery(r.URL, "since", "from", "limit", "subject", "epoch")
	if err != nil {
		return err
	}
	pq, err := parsePageQuery(q)
	if err != nil {
		return err
	}
	filter, err := parseFilter(q)
	if err != nil {
		return err
	}
	if t := callerOf(r).tenant(); t != "" {
		// A tenant reads its sub-tree, whatever it asks for; a filter
		// outside it matches nothing.
		var ok bool
		if filter, ok = eventlog.ScopeFilter(filter, t); !ok {
			return s.servePage(w, r, pq)
		}
	}
	pq.filters = []string{filter}
	return s.servePage(w, r, pq)
}

// pageQuery is what one page of events asks for: where it starts (a
// cursor, or a time), how many events, which subjects.
type pageQuery struct {
	c       eventlog.Cursor // Since with HasSince when since was given; Epoch
	from    time.Time
	hasFrom bool
	limit   int
	// filters: the page holds the events matching any of them; none
	// matches nothing (a tenant asking outside its sub-tree): the page is
	// empty and its next is the stream's end.
	filters []string
}

// FromFormat names the format of from= in errors and docs.
const FromFormat = "RFC 3339 (2026-11-26T10:00:00Z, or with an offset or fractional seconds)"

// parsePageQuery reads since, from, epoch and limit: the parameters every
// page of events (the log, a timeline) takes.
func parsePageQuery(q query) (pageQuery, error) {
	var (
		pq  pageQuery
		err error
	)
	if q.has("since") && q.has("from") {
		return pq, Errorf(CodeBadParameter, "since and from exclude each other: since resumes after a sequence, from starts at a time")
	}
	if q.has("since") {
		if pq.c.Since, err = ParseSeq("since", q.str("since")); err != nil {
			return pq, err
		}
		pq.c.HasSince = true
	}
	if q.has("from") {
		if pq.from, err = ParseFrom(q.str("from")); err != nil {
			return pq, err
		}
		pq.hasFrom = true
	}
	if q.has("epoch") {
		if pq.c.Epoch = q.str("epoch"); pq.c.Epoch == "" {
			return pq, Errorf(CodeBadParameter, "epoch must not be empty (omit it to skip the check)")
		}
	}
	if pq.limit, err = ParseLimit(q.str("limit"), q.has("limit"), defaultLimit); err != nil {
		return pq, err
	}
	return pq, nil
}

// ParseFrom parses from=: an RFC 3339 time.
func ParseFrom(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, Errorf(CodeBadParameter, "from must be a time in %s, got %q", FromFormat, s)
	}
	return t, nil
}

// servePage answers one page of pq: the stream's state, where the page
// starts, and the events from there.
func (s *Server) servePage(w http.ResponseWriter, r *http.Request, pq pageQuery) error {
	ctx, cancel := context.WithTimeout(r.Context(), eventsTimeout)
	defer cancel()
	// The page's state and the incarnation it reads must be the same
	// one: a recreation between the two reads is looked at again.
	var (
		inc *eventlog.Incarnation
		st  eventlog.State
		err error
	)
	for attempt := 1; ; attempt++ {
		inc = s.cfg.Events.Current()
		if st, err = s.cfg.Events.State(ctx); err != nil {
			return Errorf(CodeUnavailable, "event log unavailable: %v", err)
		}
		if st.Epoch == inc.Epoch {
			break
		}
		if attempt == 3 {
			return Errorf(CodeUnavailable, "the event stream keeps changing; retry")
		}
	}
	c := pq.c
	switch {
	case pq.hasFrom:
		if c.Since, err = s.sinceOfTime(ctx, pq.from, pq.filters, st); err != nil {
			return err
		}
	case !c.HasSince && st.FirstSeq > 1:
		// No cursor: the client claims nothing, so the page starts at the
		// oldest retained event instead of reporting a gap.
		c.Since = st.FirstSeq - 1
	}
	c.HasSince = true
	start, err := eventlog.Resume(c, st)
	if err != nil {
		return cursorError(err)
	}
	page := api.EventPage{FirstSeq: st.FirstSeq, LastSeq: st.LastSeq, Epoch: st.Epoch, Events: []api.Event{}, Next: c.Since}
	switch {
	case len(pq.filters) == 0:
		page.Next = st.LastSeq
	case start <= st.LastSeq:
		if err := s.readPage(ctx, inc, &page, start, pq.filters, pq.limit); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

// sinceOfTime is the since of a page that starts at the first retained
// event stored at or after t that matches filter, on a stream in state st:
// the stream's last sequence when there is none (the page is empty and its
// next is where new events will come). An event stored after st was read
// belongs to a later page, so the answer never passes st.LastSeq.
func (s *Server) sinceOfTime(ctx context.Context, t time.Time, filters []string, st eventlog.State) (uint64, error) {
	if len(filters) == 0 {
		return st.LastSeq, nil
	}
	seq, found, err := s.cfg.Events.SeqAtTime(ctx, t, filters...)
	if err != nil {
		return 0, Errorf(CodeUnavailable, "event log unavailable: %v", err)
	}
	if !found || seq > st.LastSeq {
		return st.LastSeq, nil
	}
	// "The first retained event at or after t" is never below the floor,
	// even if the floor moved since st was read (the read then says 410).
	return max(seq, st.FirstSeq) - 1, nil
}

// readPage fills page with up to limit events from start on and sets next.
// Events read before a loss are still a valid page (their next page gets
// the 410); a loss before the first event is the 410 now.
func (s *Server) readPage(ctx context.Context, inc *eventlog.Incarnation, page *api.EventPage, start uint64, filters []string, limit int) error {
	rd, err := s.cfg.Events.OpenReader(ctx, inc, start, filters...)
	if err != nil {
		return s.pageError(err)
	}
	defer func() {
		if err := rd.Close(); err != nil {
			s.log.Warn("reader consumer not deleted; the server removes it after its inactivity threshold", "err", err)
		}
	}()
	var last *eventlog.Delivery
	for len(page.Events) < limit {
		ds, err := rd.Batch(ctx, limit-len(page.Events))
		for i, d := range ds {
			page.Events = append(page.Events, api.Event{Seq: d.Seq, Subject: d.Subject, Event: appendEventValue(nil, d.Payload)})
			last = &ds[i]
		}
		if err != nil {
			if len(page.Events) == 0 {
				return s.pageError(err)
			}
			break
		}
		if len(ds) == 0 || ds[len(ds)-1].Pending == 0 {
			break
		}
	}
	switch {
	case last == nil:
		// Nothing matches up to the stream's end (at least its last
		// sequence): the next page starts there, so a filtered poll moves
		// on.
		page.Next = page.LastSeq
	case last.Pending == 0:
		// Nothing further matches up to the end of the stream.
		page.LastSeq = max(page.LastSeq, last.Seq)
		page.Next = page.LastSeq
	default:
		page.LastSeq = max(page.LastSeq, last.Seq)
		page.Next = last.Seq
	}
	return nil
}

// pageError maps a failed read of a page: 410 for a cursor that cannot be
// resumed, 503 otherwise.
func (*Server) pageError(err error) error {
	var ce *eventlog.CursorError
	if errors.As(err, &ce) {
		return cursorError(err)
	}
	return Errorf(CodeUnavailable, "event log unavailable: %v", err)
}
