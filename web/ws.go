package web

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"cellos-allinone/api"
	"cellos-allinone/eventlog"
)

// WSConfig tunes the WebSocket bridge /ws/events. Zero values mean the
// documented defaults.
type WSConfig struct {
	// MaxSockets bounds the sockets open at once; more get HTTP 503.
	MaxSockets int
	// MaxSocketsPerPrincipal bounds the sockets one principal of the auth
	// file has open at once; more get HTTP 503. Without an auth file only
	// MaxSockets applies.
	MaxSocketsPerPrincipal int
	// Origins are extra Origin patterns allowed to open a socket (see
	// CheckOriginPatterns). Same-origin requests, and requests without an
	// Origin header (not from a browser), are always allowed.
	Origins []string
	// PingInterval: the server pings every socket this often; a peer whose
	// pong does not come within WriteTimeout is dropped.
	PingInterval time.Duration
	// WriteTimeout bounds every frame write and every ping: a client that
	// does not take a frame within it is cut off as slow (4408).
	WriteTimeout time.Duration
	// MaxLag: a live event that reaches the socket later than this after
	// it was stored closes it as slow (4408).
	MaxLag time.Duration
	// QueueBytes bounds the live events waiting for one socket; a socket
	// whose queue would grow past it is closed as slow (4408).
	QueueBytes int
	// BatchBytes and BatchEvents bound one batch frame of a socket opened
	// with batch=1: at most this many bytes and events. An event too large
	// to share a frame within BatchBytes goes alone, as an event frame.
	BatchBytes  int
	BatchEvents int
	// BatchWait: a live socket with batch=1 starts a round of frames at
	// most once per BatchWait, so that a busy stream leaves in fewer and
	// larger frames; the events arriving meanwhile wait at most that long.
	// A socket that was quiet longer sends at once.
	BatchWait time.Duration
	// HubIdleAfter: the hub stops reading the live stream once no socket
	// has been subscribed for this long while events kept coming, and
	// starts again at the stream's end for the next socket (docs/websocket.md).
	HubIdleAfter time.Duration
}

// Defaults of WSConfig.
const (
	DefaultWSMaxSockets = 256
	// DefaultWSMaxSocketsPerPrincipal leaves room for a few browsers with
	// a few tabs each, and for tail.
	DefaultWSMaxSocketsPerPrincipal = 32
	DefaultWSPingInterval           = 15 * time.Second
	DefaultWSWriteTimeout           = 10 * time.Second
	DefaultWSMaxLag                 = 30 * time.Second
	DefaultWSQueueBytes             = 4 << 20
	DefaultWSBatchBytes             = 1 << 20
	DefaultWSBatchEvents            = 1000
	DefaultWSBatchWait              = 50 * time.Millisecond
	DefaultWSHubIdleAfter           = 30 * time.Second
)

func (c *WSConfig) fill() {
	if c.MaxSockets <= 0 {
		c.MaxSockets = DefaultWSMaxSockets
	}
	if c.MaxSocketsPerPrincipal <= 0 {
		c.MaxSocketsPerPrincipal = DefaultWSMaxSocketsPerPrincipal
	}
	if c.PingInterval <= 0 {
		c.PingInterval = DefaultWSPingInterval
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWSWriteTimeout
	}
	if c.MaxLag <= 0 {
		c.MaxLag = DefaultWSMaxLag
	}
	if c.QueueBytes <= 0 {
		c.QueueBytes = DefaultWSQueueBytes
	}
	if c.BatchBytes <= 0 {
		c.BatchBytes = DefaultWSBatchBytes
	}
	if c.BatchEvents <= 0 {
		c.BatchEvents = DefaultWSBatchEvents
	}
	if c.BatchWait <= 0 {
		c.BatchWait = DefaultWSBatchWait
	}
	if c.HubIdleAfter <= 0 {
		c.HubIdleAfter = DefaultWSHubIdleAfter
	}
}

// CheckOriginPatterns checks extra Origin patterns: each is matched with
// path.Match, case-insensitively, against the Origin's host[:port], or
// against scheme://host[:port] when the pattern contains "://" (the rules
// of coder/websocket's OriginPatterns, which Accept applies as well).
func CheckOriginPatterns(patterns []string) error {
	for _, p := range patterns {
		if p == "" {
			return errors.New("empty WebSocket origin pattern")
		}
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("WebSocket origin pattern %q: %w", p, err)
		}
	}
	return nil
}

// wsParams are the checked query parameters of /ws/events.
type wsParams struct {
	cursor eventlog.Cursor
	filter string
	// matches is false when no event can match filter for the caller (a
	// tenant asking for another sub-tree): the socket gets its hello and
	// no event.
	matches bool
	batch   bool // batch=1: several events per frame
}

func parseWSParams(u *url.URL) (wsParams, error) {
	q, err := parseQuery(u, "since", "subject", "epoch", "batch")
	if err != nil {
		return wsParams{}, err
	}
	p := wsParams{matches: true}
	switch b := q.str("batch"); {
	case !q.has("batch"), b == "0":
	case b == "1":
		p.batch = true
	default:
		return wsParams{}, Errorf(CodeBadParameter, "batch must be 1 (several events per frame) or 0, got %q", b)
	}
	if q.has("since") {
		if p.cursor.Since, err = ParseSeq("since", q.str("since")); err != nil {
			return wsParams{}, err
		}
		p.cursor.HasSince = true
	}
	if q.has("epoch") {
		if p.cursor.Epoch = q.str("epoch"); p.cursor.Epoch == "" {
			return wsParams{}, Errorf(CodeBadParameter, "epoch must not be empty (omit it to skip the check)")
		}
	}
	if p.filter, err = parseFilter(q); err != nil {
		return wsParams{}, err
	}
	return p, nil
}

// parseFilter is the subject parameter: a filter inside cellos.events.>,
// all events when absent.
func parseFilter(q query) (string, error) {
	if !q.has("subject") {
		return eventlog.SubjectAll, nil
	}
	s := q.str("subject")
	if err := eventlog.CheckFilter(s); err != nil {
		return "", Errorf(CodeBadParameter, "subject: %v", err)
	}
	return s, nil
}

// checkHandshake refuses the handshakes websocket.Accept would refuse
// with a plain-text answer (the same checks, statuses and headers), so
// that the client gets the JSON error body with its code instead.
func checkHandshake(w http.ResponseWriter, r *http.Request) error {
	if !r.ProtoAtLeast(1, 1) {
		return Errorf(CodeUpgradeRequired, "a WebSocket handshake needs HTTP/1.1 or later, got %s", r.Proto)
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		return Errorf(CodeMethodNotAllowed, "a WebSocket handshake is a GET, got %s", r.Method)
	}
	if v := r.Header.Get("Sec-WebSocket-Version"); v != "13" {
		w.Header().Set("Sec-WebSocket-Version", "13")
		return Errorf(CodeBadHandshake, "Sec-WebSocket-Version %q: only 13 is supported", v)
	}
	keys := r.Header.Values("Sec-WebSocket-Key")
	if len(keys) != 1 {
		return Errorf(CodeBadHandshake, "Sec-WebSocket-Key: want one, got %d", len(keys))
	}
	if k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(keys[0])); err != nil || len(k) != 16 {
		return Errorf(CodeBadHandshake, "Sec-WebSocket-Key %q: not 16 bytes in base64", keys[0])
	}
	return nil
}

// serveEvents is GET /ws/events. Everything that can be refused with an
// HTTP status is checked before the upgrade.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) error {
	p, err := parseWSParams(r.URL)
	if err != nil {
		return err
	}
	if !headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", "websocket") {
		w.Header().Set("Upgrade", "websocket")
		return Errorf(CodeUpgradeRequired, "/ws/events is a WebSocket endpoint; for HTTP paging use GET /v1/events")
	}
	if err := checkHandshake(w, r); err != nil {
		return err
	}
	who := callerOf(r)
	if t := who.tenant(); t != "" {
		// A tenant reads its sub-tree, whatever it asks for.
		p.filter, p.matches = eventlog.ScopeFilter(p.filter, t)
	}
	if err := s.ws.acquire(who.name()); err != nil {
		w.Header().Set("Retry-After", "5")
		return err
	}
	defer s.ws.release(who.name())
	hr := &hijackRecorder{ResponseWriter: w}
	c, err := websocket.Accept(hr, r, &websocket.AcceptOptions{
		// The bearer subprotocol is never echoed: the server speaks
		// cellos.v1 when it is offered (and none when it is not).
		Subprotocols: []string{wsProtocol},
		// authorize checked Origin against the Host list and --ws-origins.
		InsecureSkipVerify: true,
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		// Accept has answered the request itself.
		s.log.Debug("websocket handshake failed", "err", err)
		return nil
	}
	// The server's ReadTimeout left a deadline on the connection; a
	// socket lives on (pings find dead peers).
	if hr.conn != nil {
		_ = hr.conn.SetDeadline(time.Time{})
	}
	sk := &socket{
		srv: s, c: c, p: p, cfg: s.cfg.WS, cork: newCorker(hr.conn), who: who,

		log: s.log.With("remote", r.RemoteAddr, "since", r.URL.Query().Get("since"), "subject", p.filter, "principal", who.name()),
	}
	s.ws.untrack(c, sk.serve())
	return nil
}

// hijackRecorder remembers the connection websocket.Accept takes over.
type hijackRecorder struct {
	http.ResponseWriter
	conn net.Conn
}

func (h *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	h.conn = c
	return c, brw, err
}

func (h *hijackRecorder) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// errPeerGone: the peer stopped answering pings.
var errPeerGone = errors.New("peer stopped answering pings")

// socket is one open /ws/events connection.
type socket struct {
	srv  *Server
	c    *websocket.Conn
	cork *corker // nil: no TCP_CORK
	p    wsParams
	cfg  WSConfig
	who  caller // the principal the socket was opened for
	log  *slog.Logger
}

// serve streams events until the socket ends and closes it; it returns
// why it ended (End…).
func (sk *socket) serve() string {
	// CloseRead answers pings and the peer's close frame; its context ends
	// when the connection does. It is not tied to the shutdown signal, so
	// that shutdown can still send 1001.
	connCtx := sk.c.CloseRead(context.Background())
	ctx, cancel := context.WithCancelCause(connCtx)
	defer cancel(nil)
	sk.srv.ws.track(sk.c, tracked{principal: sk.who.name(), drop: cancel})
	if !sk.srv.stillValid(sk.who) {
		cancel(errRevoked) // a reload withdrew the principal meanwhile
	}
	stop := context.AfterFunc(sk.srv.ws.ctx, func() {
		cancel(Errorf(CodeShuttingDown, "server shutting down"))
	})
	defer stop()

	err := sk.stream(ctx, cancel)
	var e *Error
	switch {
	case errors.As(err, &e):
		ci := infoOf(e.Code)
		if ci.close == 0 {
			ci = codes[CodeInternal] // a code no socket is meant to end with
		}
		if ci.warn {
			sk.log.Warn("closing WebSocket", "code", int(ci.close), "reason", e.Message)
		} else {
			sk.log.Debug("closing WebSocket", "code", int(ci.close), "reason", e.Message)
		}
		sk.c.Close(ci.close, closeReason(e))
		return ci.end
	case errors.Is(err, errPeerGone):
		sk.log.Info("dropping WebSocket: no pong", "timeout", sk.cfg.WriteTimeout)
		sk.c.CloseNow()
		return EndPingTimeout
	default:
		sk.c.CloseNow()
		return EndClient
	}
}

// closeReason is the close frame's reason: for 4410 the JSON the client
// resumes with, otherwise the message cut to what a close frame holds.
func closeReason(e *Error) string {
	if e.Code == CodeCursorExpired {
		b, _ := json.Marshal(struct {
			FirstSeq any `json:"firstSeq"`
			Epoch    any `json:"epoch"`
		}{e.Extra["firstSeq"], e.Extra["epoch"]})
		return string(b)
	}
	const most = 123 // RFC 6455: 125 bytes minus the status code
	if len(e.Message) > most {
		return e.Message[:most]
	}
	return e.Message
}

// stream sends hello and then every event from the cursor on. It returns
// the reason to close with: an *Error, errPeerGone, or any other error
// when the peer went away.
//
// Everything a socket sends belongs to one incarnation of the stream:
// the one current when it opened. When that incarnation ends (the stream
// was deleted and created again), the socket ends with 4410 naming the
// new epoch, whatever phase it is in.
//
// History comes from the stream through a Reader (its own ephemeral
// consumer, deleted as soon as it is not needed), the live tail from the
// hub. The hand-over is exact: history is read up to the last sequence
// seen in the stream state (S0), then the socket subscribes to the hub at
// its position P; if P > S0 the events in (S0, P] are read as history
// too, and hub frames up to max(S0, P) are skipped. Without since the
// socket subscribes first and S0 >= P, so it needs no history at all.
func (sk *socket) stream(ctx context.Context, drop context.CancelCauseFunc) error {
	// An incarnation that ends between the first look and the state read
	// (the stream recreated in that instant) is looked at again: nothing
	// has been sent yet.
	for attempt := 1; ; attempt++ {
		inc := sk.srv.cfg.Events.Current()
		err := sk.streamFrom(ctx, drop, inc)
		if !errors.Is(err, errBeforeHello) {
			return err
		}
		if attempt == 3 {
			// The stream keeps changing: refuse as for an ended one.
			return cursorError(sk.srv.cfg.Events.EndedError(ctx, inc))
		}
	}
}

// errBeforeHello: the incarnation changed before the hello frame.
var errBeforeHello = errors.New("the stream changed before the hello frame")

func (sk *socket) streamFrom(ctx context.Context, drop context.CancelCauseFunc, inc *eventlog.Incarnation) error {
	events, hub := sk.srv.cfg.Events, sk.srv.hub
	var sub *hubSub
	var pos, covered uint64 // covered: everything up to here is sent or skipped
	subscribe := func() error {
		var err error
		filter := sk.p.filter
		if !sk.p.matches {
			filter = hubNothing
		}
		if sub, pos, err = hub.subscribe(ctx, filter, inc, covered); err != nil {
			return sk.readFailed(ctx, inc, err)
		}
		return nil
	}
	defer func() {
		if sub != nil {
			hub.unsubscribe(sub)
		}
	}()
	if !sk.p.cursor.HasSince {
		if err := subscribe(); err != nil {
			return err
		}
	}
	st, err := events.State(ctx)
	if err != nil {
		return sk.readFailed(ctx, inc, err)
	}
	if st.Epoch != inc.Epoch {
		return errBeforeHello
	}
	start, err := eventlog.Resume(sk.p.cursor, st)
	if err != nil {
		return cursorError(err)
	}
	hello, _ := json.Marshal(api.Hello{Type: "hello", FirstSeq: st.FirstSeq, LastSeq: st.LastSeq, Epoch: st.Epoch})
	if err := sk.write(hello); err != nil {
		return sk.cause(ctx, err)
	}

	defer sk.startPing(ctx, drop)()

	covered = st.LastSeq
	if start <= st.LastSeq {
		if err := sk.history(ctx, inc, start, st.LastSeq); err != nil {
			return err
		}
	}
	if sub == nil {
		if err := subscribe(); err != nil {
			return err
		}
		if pos > covered {
			if err := sk.history(ctx, inc, covered+1, pos); err != nil {
				return err
			}
			covered = pos
		}
	}
	return sk.live(ctx, inc, sub, covered)
}

// readFailed maps a failure to read the stream to the socket's end: 4410
// when the socket's incarnation ended (or the floor overtook it), 1011
// when the log is unavailable, the context's cause when the socket ends.
func (sk *socket) readFailed(ctx context.Context, inc *eventlog.Incarnation, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	var ce *eventlog.CursorError
	if !errors.As(err, &ce) && (errors.Is(err, errIncarnationEnded) || sk.srv.cfg.Events.Settle(ctx, inc)) {
		// The stream was deleted under the socket: a plain read failure
		// becomes the 4410 of the new epoch once the watcher confirms it.
		err = sk.srv.cfg.Events.EndedError(ctx, inc)
	}
	if errors.As(err, &ce) {
		return cursorError(err)
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	sk.log.Error("reading the event log for a WebSocket", "err", err)
	return Errorf(CodeUnavailable, "event log unavailable")
}

// history sends the stored events matching the socket's filter from
// sequence from through to, with a Reader that is deleted on return. The
// Reader checks what it reads: when the floor overtakes it, the socket
// ends with 4410 after the last event before the loss.
func (sk *socket) history(ctx context.Context, inc *eventlog.Incarnation, from, to uint64) error {
	if !sk.p.matches {
		return nil
	}
	rd, err := sk.srv.cfg.Events.OpenReader(ctx, inc, from, sk.p.filter)
	if err != nil {
		return sk.readFailed(ctx, inc, err)
	}
	defer func() {
		if err := rd.Close(); err != nil {
			sk.log.Warn("reader consumer not deleted; the server removes it after its inactivity threshold", "err", err)
		}
	}()
	if sk.p.batch {
		return sk.historyBatched(ctx, inc, rd, to)
	}
	frame := make([]byte, 0, 1024)
	for {
		ds, err := rd.Batch(ctx, eventlog.ReaderBatch)
		for _, d := range ds {
			if d.Seq > to {
				return nil // the next phase's
			}
			frame = appendEventFrame(frame[:0], d)
			if err := sk.write(frame); err != nil {
				return sk.cause(ctx, err)
			}
			sk.srv.ws.eventsSent.Inc()
			if d.Seq == to {
				return nil
			}
		}
		switch {
		case err != nil:
			return sk.readFailed(ctx, inc, err)
		case len(ds) == 0, ds[len(ds)-1].Pending == 0:
			return nil // nothing further matches up to the end of the stream
		}
	}
}

// historyBatched is history for a socket with batch=1: each batch the
// Reader returns is encoded once and sent in as few frames as the batch
// bounds allow.
func (sk *socket) historyBatched(ctx context.Context, inc *eventlog.Incarnation, rd *eventlog.Reader, to uint64) error {
	var (
		arena []byte      // the event frames of one Reader batch, back to back
		ends  []int       // where each of them ends in arena
		hf    []hubFrame  // the same frames, sliced from arena
		fs    []*hubFrame // pointing into hf
	)
	for {
		ds, err := rd.Batch(ctx, eventlog.ReaderBatch)
		arena, ends, hf, fs = arena[:0], ends[:0], hf[:0], fs[:0]
		done := false
		for _, d := range ds {
			if d.Seq > to {
				done = true // the next phase's
				break
			}
			arena = appendEventFrame(arena, d)
			ends = append(ends, len(arena))
			hf = append(hf, hubFrame{seq: d.Seq})
			if d.Seq == to {
				done = true
				break
			}
		}
		start := 0
		for i, end := range ends {
			hf[i].frame = arena[start:end:end]
			fs = append(fs, &hf[i])
			start = end
		}
		if err := sk.send(fs, false); err != nil {
			return sk.cause(ctx, err)
		}
		switch {
		case done:
			return nil
		case err != nil:
			return sk.readFailed(ctx, inc, err)
		case len(ds) == 0, ds[len(ds)-1].Pending == 0:
			return nil // nothing further matches up to the end of the stream
		}
	}
}

// live sends the hub's frames after covered until the socket ends. With
// batch=1 a round starts at most once per BatchWait.
func (sk *socket) live(ctx context.Context, inc *eventlog.Incarnation, sub *hubSub, covered uint64) error {
	var (
		batch []*hubFrame
		round time.Time   // when the last round started
		pause *time.Timer // for BatchWait
	)
	defer func() {
		if pause != nil {
			pause.Stop()
		}
	}()
	for {
		if d := sk.cfg.BatchWait - time.Since(round); sk.p.batch && d > 0 {
			if pause == nil {
				pause = time.NewTimer(d)
			} else {
				pause.Reset(d)
			}
			select {
			case <-pause.C:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
		var err error
		batch, err = sub.take(ctx, batch[:0])
		round = time.Now()
		switch {
		case errors.Is(err, errQueueFull):
			return Errorf(CodeSlowClient, "slow client: more than %d bytes of events waiting", sk.cfg.QueueBytes)
		case errors.Is(err, errHubFailed):
			return Errorf(CodeUnavailable, "event log unavailable; reconnect with your cursor")
		case err != nil:
			return sk.readFailed(ctx, inc, err)
		}
		// Drop what the hand-over covered already.
		i := 0
		for i < len(batch) && batch[i].seq <= covered {
			i++
		}
		if err := sk.send(batch[i:], true); err != nil {
			return sk.cause(ctx, err)
		}
		clear(batch) // let sent frames go
	}
}

// send writes event frames in order: one frame each, or with batch=1 as
// few batch frames as the bounds allow (a group of one stays an event
// frame). Live frames are checked for lag just before the frame that
// carries them is written. A round that takes more than one write is
// corked meanwhile: it leaves in full TCP segments.
func (sk *socket) send(fs []*hubFrame, live bool) error {
	if len(fs) == 0 {
		return nil
	}
	if sk.cork != nil && (len(fs) > 1 && !sk.p.batch || bytesAbove(fs, oneWrite)) {
		sk.cork.set(true)
		defer sk.cork.set(false)
	}
	if !sk.p.batch {
		for _, f := range fs {
			if live {
				if err := sk.checkLag(time.Now(), f); err != nil {
					return err
				}
			}
			if err := sk.write(f.frame); err != nil {
				return err
			}
			sk.srv.ws.eventsSent.Inc()
		}
		return nil
	}
	for len(fs) > 0 {
		n, size := 1, len(batchHead)+itemLen(fs[0].frame)+len(batchTail)
		for n < len(fs) && n < sk.cfg.BatchEvents {
			next := size + 1 + itemLen(fs[n].frame)
			if next > sk.cfg.BatchBytes {
				break
			}
			n, size = n+1, next
		}
		if live {
			now := time.Now()
			for _, f := range fs[:n] {
				if err := sk.checkLag(now, f); err != nil {
					return err
				}
			}
		}
		var err error
		if n == 1 {
			err = sk.write(fs[0].frame)
		} else {
			err = sk.writeBatch(fs[:n], size)
		}
		if err != nil {
			return err
		}
		sk.srv.ws.eventsSent.Add(float64(n))
		fs = fs[n:]
	}
	return nil
}

// oneWrite: coder/websocket writes a frame with a payload up to about its
// 4 KiB buffer in one write, a larger one in two.
const oneWrite = 4096 - 14

// bytesAbove reports whether the frames of fs hold more than n bytes.
func bytesAbove(fs []*hubFrame, n int) bool {
	for _, f := range fs {
		if n -= len(f.frame); n < 0 {
			return true
		}
	}
	return false
}

// checkLag ends a socket that a live event reaches more than MaxLag after
// it was stored.
func (sk *socket) checkLag(now time.Time, f *hubFrame) error {
	if lag := now.Sub(f.time); lag > sk.cfg.MaxLag {
		return Errorf(CodeSlowClient, "slow client: %s behind the live stream (max %s)", lag.Round(time.Second), sk.cfg.MaxLag)
	}
	return nil
}

// batchBufs holds the buffers batch frames are built in, shared by all
// sockets: an idle socket holds none.
var batchBufs = sync.Pool{New: func() any { return new([]byte) }}

// writeBatch writes fs as one batch frame of size bytes, made of the
// items of their shared event frames.
func (sk *socket) writeBatch(fs []*hubFrame, size int) error {
	bp := batchBufs.Get().(*[]byte)
	b := slices.Grow((*bp)[:0], size)
	b = append(b, batchHead...)
	for i, f := range fs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendItem(b, f.frame)
	}
	b = append(b, batchTail...)
	err := sk.write(b)
	// The pool keeps buffers of up to twice the default batch size; a
	// larger one (a larger configured BatchBytes, a big event) goes to the
	// GC, so that idle pooled memory stays bounded whatever the config.
	if cap(b) <= 2*DefaultWSBatchBytes {
		*bp = b[:0]
		batchBufs.Put(bp)
	}
	return err
}

// cause prefers the reason the socket's context was ended with (shutdown,
// dead peer) over err.
func (sk *socket) cause(ctx context.Context, err error) error {
	var e *Error
	if errors.As(err, &e) && e.Code == CodeSlowClient {
		// A write timeout closes the connection, which ends ctx through
		// CloseRead too: the slow verdict came first and is the reason.
		return err
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return err
}

// write sends one text frame under the write timeout. Its context is not
// the socket's: a write interrupted by a cancelled context closes the
// connection, and shutdown must still be able to send 1001 after it.
func (sk *socket) write(frame []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), sk.cfg.WriteTimeout)
	defer cancel()
	err := sk.c.Write(ctx, websocket.MessageText, frame)
	if err == nil {
		sk.srv.ws.framesSent.Inc()
	}
	if err != nil && ctx.Err() != nil {
		return Errorf(CodeSlowClient, "slow client: a frame was not taken within %s", sk.cfg.WriteTimeout)
	}
	return err
}

// startPing pings every PingInterval until the returned stop is called
// or ctx ends; a ping without a pong within WriteTimeout ends the socket
// through drop with errPeerGone. It runs on a timer, not a goroutine of
// its own: between pings an idle socket costs no goroutine for it. stop
// returns once no ping is running any more.
func (sk *socket) startPing(ctx context.Context, drop context.CancelCauseFunc) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var (
		mu      sync.Mutex // held while a ping runs
		stopped bool
		t       *time.Timer
	)
	mu.Lock()
	defer mu.Unlock()
	t = time.AfterFunc(sk.cfg.PingInterval, func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped || ctx.Err() != nil {
			return
		}
		pctx, pcancel := context.WithTimeout(ctx, sk.cfg.WriteTimeout)
		err := sk.c.Ping(pctx)
		pcancel()
		switch {
		case err == nil:
			t.Reset(sk.cfg.PingInterval)
		case ctx.Err() == nil:
			drop(errPeerGone)
		}
	})
	return func() {
		cancel() // ends a ping in flight
		mu.Lock()
		stopped = true
		t.Stop()
		mu.Unlock()
	}
}
