package web

import (
	"context"
	"maps"
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
)

// sockets counts and tracks the open WebSockets so that their number is
// bounded and Close can end them with 1001: http.Server.Shutdown does not
// see hijacked connections (golang/go#17721).
type sockets struct {
	limit int // sockets open at once
	// ctx is cancelled when the server shuts down.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	open    int
	closing bool
	conns   map[*websocket.Conn]struct{}
	ended   map[string]uint64
	wg      sync.WaitGroup

	openGauge prometheus.Gauge
	endedVec  *prometheus.CounterVec
	// framesSent counts every text frame written (the hello too);
	// eventsSent the events they carried, several in a batch frame.
	framesSent prometheus.Counter
	eventsSent prometheus.Counter
}

// SocketStats is a snapshot of the WebSocket bridge.
type SocketStats struct {
	Open int
	// Closed counts ended sockets by why they ended (EndClient, …).
	Closed map[string]uint64
}

func newSockets(limit int, reg prometheus.Registerer) *sockets {
	ctx, cancel := context.WithCancel(context.Background())
	s := &sockets{
		limit: limit, ctx: ctx, cancel: cancel,
		conns: map[*websocket.Conn]struct{}{},
		ended: map[string]uint64{},
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

// acquire takes a socket slot; release gives it back.
func (s *sockets) acquire() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return Errorf(CodeShuttingDown, "the server is shutting down")
	}
	if s.open >= s.limit {
		return Errorf(CodeUnavailable, "too many WebSockets open (%d, the maximum; see --ws-max-sockets); retry later", s.limit)
	}
	s.open++
	s.wg.Add(1)
	s.openGauge.Inc()
	return nil
}

func (s *sockets) release() {
	s.mu.Lock()
	s.open--
	s.mu.Unlock()
	s.openGauge.Dec()
	s.wg.Done()
}

func (s *sockets) track(c *websocket.Conn) {
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
}

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
