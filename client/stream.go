package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/coder/websocket"

	"cellos-allinone/api"
)

// Close codes of /ws/events (docs/design.md §5, docs/websocket.md).
const (
	// CloseCursorExpired: since+1 is below the stream's first sequence,
	// or the epoch asked for is not the current one.
	CloseCursorExpired websocket.StatusCode = 4410
	// CloseUnauthorized: the socket's credentials were withdrawn (the
	// server's auth file was reloaded without them).
	CloseUnauthorized websocket.StatusCode = 4401
)

// UnauthorizedError is the server's 4401 close: the token no longer
// counts. Reconnecting with it is refused; Follow gives up.
type UnauthorizedError struct{ Reason string }

func (e *UnauthorizedError) Error() string {
	return "the server withdrew this token's access (WebSocket close 4401): " + e.Reason
}

// maxFrame bounds one frame the client accepts: well above the server's
// event size limit, far below what could hurt.
const maxFrame = 16 << 20

// Keepalive of the client side: a server that vanished without a close
// frame (power cut, network gone) is noticed within pingEvery+pingTimeout.
const (
	pingEvery   = 20 * time.Second
	pingTimeout = 10 * time.Second
)

// StreamOptions are the parameters of GET /ws/events.
type StreamOptions struct {
	// Since: deliver every retained event after this sequence, then live.
	// Nil: only events published after the connection opened.
	Since *uint64
	// Subject filters by NATS subject (wildcards allowed), "" = all.
	Subject string
	// Epoch, when set, makes the server refuse with 4410 if the stream is
	// not that incarnation any more.
	Epoch string
	// Batch asks for batch=1: the server sends the events that are ready
	// at once in one frame. Next hands them out one by one all the same.
	Batch bool
}

// Hello is the first frame of a stream.
type Hello = api.Hello

// ExpiredError is the server's 4410 close: the cursor cannot be resumed.
// The client continues from FirstSeq-1 of Epoch.
type ExpiredError struct {
	FirstSeq uint64
	Epoch    string
}

func (e *ExpiredError) Error() string {
	return fmt.Sprintf("cursor cannot be resumed: stream epoch %s starts at sequence %d", e.Epoch, e.FirstSeq)
}

// HandshakeError is a refused upgrade: the server answered HTTP instead of
// switching protocols.
type HandshakeError struct {
	*APIError
}

// Stream is one open /ws/events connection.
type Stream struct {
	conn    *websocket.Conn
	Hello   Hello
	cancel  context.CancelFunc
	done    chan struct{}
	pending []Event // the rest of the last batch frame, for Next
}

// Stream opens /ws/events and reads its hello frame. ctx bounds the whole
// life of the stream; Close ends it earlier.
func (c *Client) Stream(ctx context.Context, so StreamOptions) (*Stream, error) {
	u := *c.base
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	default:
		u.Scheme = "ws"
	}
	u.Path = c.base.Path + "/ws/events"
	q := url.Values{}
	if so.Since != nil {
		q.Set("since", strconv.FormatUint(*so.Since, 10))
	}
	if so.Subject != "" {
		q.Set("subject", so.Subject)
	}
	if so.Epoch != "" {
		q.Set("epoch", so.Epoch)
	}
	if so.Batch {
		q.Set("batch", "1")
	}
	u.RawQuery = q.Encode()

	dialCtx, cancelDial := context.WithTimeout(ctx, 30*time.Second)
	defer cancelDial()
	header := http.Header{}
	c.authorize(header)
	conn, resp, err := websocket.Dial(dialCtx, u.String(), &websocket.DialOptions{HTTPClient: c.ws, HTTPHeader: header})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			var raw []byte
			if resp.Body != nil {
				raw, _ = io.ReadAll(io.LimitReader(resp.Body, 1<<16))
				resp.Body.Close()
			}
			return nil, &HandshakeError{apiError(resp.StatusCode, raw)}
		}
		var oe *net.OpError
		if errors.As(err, &oe) {
			// The socket's own error says it all; the layers above it
			// ("failed to WebSocket dial: failed to send handshake
			// request: Get …") only repeat the URL.
			err = oe
		}
		return nil, fmt.Errorf("connect to %s: %w", u.Redacted(), err)
	}
	conn.SetReadLimit(maxFrame)
	sctx, cancel := context.WithCancel(ctx)
	s := &Stream{conn: conn, cancel: cancel, done: make(chan struct{})}
	go s.keepalive(sctx)

	hctx, cancelHello := context.WithTimeout(sctx, 30*time.Second)
	defer cancelHello()
	var h struct {
		Type string `json:"type"`
		Hello
	}
	if err := s.readFrame(hctx, &h); err != nil {
		s.Close()
		return nil, err
	}
	if h.Type != "hello" {
		s.Close()
		return nil, fmt.Errorf("first frame of %s is %q, want hello", u.Redacted(), h.Type)
	}
	s.Hello = h.Hello
	return s, nil
}

// keepalive pings the server so that a dead peer breaks the pending Read.
func (s *Stream) keepalive(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(pingEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, pingTimeout)
			err := s.conn.Ping(pctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				s.conn.CloseNow()
				return
			}
		}
	}
}

// Next returns the next event, also when it came in a batch frame. A 4410
// close comes back as *ExpiredError; other closes and failures as errors
// to reconnect on.
func (s *Stream) Next(ctx context.Context) (Event, error) {
	for {
		if len(s.pending) > 0 {
			ev := s.pending[0]
			s.pending[0] = Event{}
			s.pending = s.pending[1:]
			return ev, nil
		}
		var f struct {
			Type string `json:"type"`
			Event
			Events []Event `json:"events"` // of a batch frame
		}
		if err := s.readFrame(ctx, &f); err != nil {
			return Event{}, err
		}
		switch f.Type {
		case "event":
			return f.Event, nil
		case "events":
			s.pending = f.Events
		}
		// Frame types this version does not know are skipped, so the
		// server can add some without breaking older clients.
	}
}

func (s *Stream) readFrame(ctx context.Context, out any) error {
	typ, data, err := s.conn.Read(ctx)
	if err != nil {
		return closeError(err)
	}
	if typ != websocket.MessageText {
		return fmt.Errorf("unexpected binary frame on /ws/events")
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("bad frame on /ws/events: %v", err)
	}
	return nil
}

// IsGoingAway reports whether err is the server's close on shutdown (1001).
func IsGoingAway(err error) bool {
	return websocket.CloseStatus(err) == websocket.StatusGoingAway
}

// closeError turns a 4410 close into *ExpiredError and a 4401 close into
// *UnauthorizedError.
func closeError(err error) error {
	var ce websocket.CloseError
	if errors.As(err, &ce) && ce.Code == CloseUnauthorized {
		return &UnauthorizedError{Reason: ce.Reason}
	}
	if !errors.As(err, &ce) || ce.Code != CloseCursorExpired {
		return err
	}
	var reason struct {
		FirstSeq uint64 `json:"firstSeq"`
		Epoch    string `json:"epoch"`
	}
	if jerr := json.Unmarshal([]byte(ce.Reason), &reason); jerr != nil {
		return fmt.Errorf("close 4410 with an unreadable reason %q: %v", ce.Reason, jerr)
	}
	return &ExpiredError{FirstSeq: reason.FirstSeq, Epoch: reason.Epoch}
}

// Close ends the stream with a normal closure. It is best effort: after
// the server closed or the connection broke there is nothing left to do.
func (s *Stream) Close() {
	s.cancel()
	<-s.done
	_ = s.conn.Close(websocket.StatusNormalClosure, "")
}
