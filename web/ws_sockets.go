package web

import (
	"context"
	"maps"
	"slices"
	"sync"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
)

// Why a socket ended: the label of cellos_ws_closed_total and the keys of
// SocketStats.Closed.
const (
	EndClient        = "client"         // the client closed or went away
	EndShutdown      = "shutdown"       // 1001
	EndSlow          = "slow"           // 4408
	EndCursorExpired = "cursor_expired" // 4410
	EndPingTimeout   = "ping_timeout"   // dropped, no close frame
	EndError         = "error"          // 1011
	EndUnauthorized  = "unauthorized"   // 4401
)

// sockets counts and tracks the open WebSockets so that their number is
// bounded and Close can end them with 1001: http.Server.Shutdown does not
// see hijacked connections (golang/go#17721).
type sockets struct {
	limit     int // sockets open at once
	perCaller int // sockets open at once for one principal
	// ctx is cancelled when the server shuts down.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	open    int
	closing bool
	conns   map[*websocket.Conn]tracked
	byName  map[string]int // open sockets per principal name
	ended   map[string]uint64
	wg      sync.WaitGroup

	openGauge prometheus.Gauge
	endedVec  *prometheus.CounterVec
	// framesSent counts every text frame written (the hello too);
	// eventsSent the events they carried, several in a batch frame.
	framesSent prometheus.Counter
	eventsSent prometheus.Counter
}

// tracked is what the bridge knows of one open socket.
type tracked struct {
	principal string                  // "" without an auth file
	drop      context.CancelCauseFunc // ends the socket with its cause's close code
}

// SocketStats is a snapshot of the WebSocket bridge.
type SocketStats struct {
	Open int
	// Closed counts ended sockets by why they ended (EndClient, …).
	Closed map[string]uint64
}

func newSockets(limit, perCaller int, reg prometheus.Registerer) *sockets {
	ctx, cancel := context.WithCancel(context.Background())
	s := &sockets{
		limit: limit, perCaller: perCaller, ctx: ctx, cancel: cancel,
		conns:  map[*websocket.Conn]tracked{},
		byName: map[string]int{},
		ended:  map[string]uint64{},
		openGauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cellos_ws_sockets", Help: "WebSockets open on /ws/events.",
		}),
		endedVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cellos_ws_closed_total", Help: "WebSockets of /ws/events that ended, by why.",
		}, []string{"reason"}),
		framesSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cellos_ws_frames_sent_total", Help: "Text frames written to WebSockets of /ws/events (hello, event and batch frames).",
		}),
		eventsSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cellos_ws_events_sent_total", Help: "Events written to WebSockets of /ws/events, counted once per socket (a batch frame carries several).",
		}),
	}
	if reg != nil {
		reg.MustRegister(s.openGauge, s.endedVec, s.framesSent, s.eventsSent)
	}
	return s
}

// acquire takes a socket slot for the principal called name ("" without
// an auth file, which only the total bounds); release gives it back.
func (s *sockets) acquire(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return Errorf(CodeShuttingDown, "the server is shutting down")
	}
	if s.open >= s.limit {
		return Errorf(CodeUnavailable, "too many WebSockets open (%d, the maximum; see --ws-max-sockets); retry later", s.limit)
	}
	if name != "" && s.byName[name] >= s.perCaller {
		return Errorf(CodeUnavailable, "too many WebSockets open for principal %q (%d, the maximum per principal; see --ws-max-sockets-per-principal); retry later", name, s.perCaller)
	}
	if name != "" {
		s.byName[name]++
	}
	s.open++
	s.wg.Add(1)
	s.openGauge.Inc()
	return nil
}

func (s *sockets) release(name string) {
	s.mu.Lock()
	s.open--
	if name != "" {
		if s.byName[name]--; s.byName[name] == 0 {
			delete(s.byName, name)
		}
	}
	s.mu.Unlock()
	s.openGauge.Dec()
	s.wg.Done()
}

func (s *sockets) track(c *websocket.Conn, t tracked) {
	s.mu.Lock()
	s.conns[c] = t
	s.mu.Unlock()
}

// revoke ends the sockets of the named principals with 4401: their
// credentials were removed or changed by a reload of the auth file.
func (s *sockets) revoke(names []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.conns {
		if t.principal != "" && slices.Contains(names, t.principal) {
			t.drop(errRevoked)
		}
	}
}

// errRevoked ends a socket whose principal a reload removed or changed.
var errRevoked = Errorf(CodeUnauthorized, "the credentials of this socket were withdrawn (the auth file was reloaded); sign in again")

func (s *sockets) untrack(c *websocket.Conn, reason string) {
	s.mu.Lock()
	delete(s.conns, c)
	s.ended[reason]++
	s.mu.Unlock()
	s.endedVec.WithLabelValues(reason).Inc()
}

func (s *sockets) stats() SocketStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return SocketStats{Open: s.open, Closed: maps.Clone(s.ended)}
}

// shutdown refuses new sockets and asks every open one to close with 1001.
func (s *sockets) shutdown() {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.cancel()
}

// wait waits until every socket has ended. When ctx ends first, the
// sockets still open (peers that do not answer the close handshake) are
// dropped, and wait returns ctx's error once their handlers have returned.
func (s *sockets) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for c := range s.conns {
		c.CloseNow()
	}
	s.mu.Unlock()
	<-done
	return ctx.Err()
}
