package web

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"cellos-allinone/auth"
	"cellos-allinone/eventlog"
	"cellos-allinone/projector"
)

// Projector is what the API reads: the projection and its status.
type Projector interface {
	Ready() bool
	// CommitFailing is the commit that keeps failing, nil while commits
	// succeed: /readyz answers 503 meanwhile, reads are served.
	CommitFailing() *projector.CommitFailure
	// Read gives one consistent view: a state with its epoch; a damaged
	// state is the error.
	Read(func(projector.View)) error
	// ReadFrom is Read from a state whose cursor is seq or later, waiting
	// for one until ctx ends (then a *projector.NotCaughtUpError).
	ReadFrom(ctx context.Context, seq uint64, fn func(projector.View)) error
	Status(ctx context.Context, version string) (projector.Status, error)
	// HashState computes the state hash of the served state (one at a
	// time; the last one while it still holds or within its cooldown);
	// Status shows the last one.
	HashState(ctx context.Context) (projector.StateHash, error)
}

// Config configures the HTTP server.
type Config struct {
	Addr string // host:port; port 0 picks a free port
	// Listener, when set, is used instead of binding Addr: the process
	// binds its ports before anything with side effects.
	Listener net.Listener
	Version  string
	Logger   *slog.Logger
	// Gatherer serves /metrics; nil serves the default registry.
	Gatherer prometheus.Gatherer
	// Registerer receives the server's own metrics; nil registers none.
	Registerer prometheus.Registerer
	// Events is the event stream behind /v1/events and /ws/events;
	// without it they answer 503.
	Events *eventlog.Stream
	// WS tunes the WebSocket bridge (ws.go).
	WS WSConfig

	// Auth is the set of principals of the auth file; nil serves everyone
	// as an untenanted admin (a loopback server without an auth file).
	// SetAuth replaces it on reload; a server started without one stays
	// open.
	Auth *auth.Set
	// BoundAddr is the listen address as configured (host:port; the host
	// may be a name), for the Host check; "" takes the listener's.
	BoundAddr string
	// AllowedHosts are more names and addresses the server answers to
	// (--allowed-hosts), any port; "*.example.com" allows sub-domains.
	AllowedHosts []string
	// TLS, when set, serves HTTPS only (its certificate may change: the
	// config's GetCertificate is asked per handshake).
	TLS *tls.Config
}

// Server is the HTTP server of one process.
type Server struct {
	cfg  Config
	log  *slog.Logger
	proj Projector
	mux  *http.ServeMux
	ws   *sockets
	hub  *hub // nil without Events

	metrics *metrics

	dups    dupCounts         // duplicates answered by POST /v1/events, per tenant
	access  map[string]access // route pattern → what it asks of its caller (auth.go)
	authSet atomic.Pointer[auth.Set]
	hosts   *hostList // the names and addresses the server answers to

	// closing ends with Close: reads waiting for min_seq stop waiting.
	closing context.Context
	close   context.CancelFunc

	ln      net.Listener
	srv     *http.Server
	serveWG sync.WaitGroup
}

// New builds the server and its routes; Open binds it.
func New(cfg Config, proj Projector) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.WS.fill()
	s := &Server{cfg: cfg, log: cfg.Logger, proj: proj, mux: http.NewServeMux(), metrics: newMetrics(cfg.Registerer), access: map[string]access{}}
	s.closing, s.close = context.WithCancel(context.Background())
	s.authSet.Store(cfg.Auth)
	s.hosts = newHostList(boundAddr(cfg), cfg.AllowedHosts)
	s.ws = newSockets(cfg.WS.MaxSockets, cfg.WS.MaxSocketsPerPrincipal, cfg.Registerer)
	if cfg.Events != nil {
		s.hub = newHub(cfg.Events, cfg.Logger, cfg.WS.QueueBytes, cfg.WS.HubIdleAfter)
	}
	s.routes()
	return s
}

// boundAddr is the address the Host list starts from: as configured, else
// the listener's, else loopback (a server that is never opened, in tests).
func boundAddr(cfg Config) string {
	switch {
	case cfg.BoundAddr != "":
		return cfg.BoundAddr
	case cfg.Listener != nil:
		return cfg.Listener.Addr().String()
	case cfg.Addr != "":
		return cfg.Addr
	}
	return "127.0.0.1:0"
}

// handlerFunc is a handler that returns its error for central rendering.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (s *Server) routes() {
	gatherer := s.cfg.Gatherer
	if gatherer == nil {
		gatherer = prometheus.DefaultGatherer
	}
	// Every route says what it asks of its caller (auth.go); a pattern
	// without an entry asks for an admin.
	// Read API: served only once the boot replay is done.
	s.handle("GET /v1/formations", accessReader, s.whenReady(s.listFormations))
	s.handle("GET /v1/formations/{id}", accessReader, s.whenReady(s.getFormation))
	s.handle("GET /v1/cells", accessReader, s.whenReady(s.listCells))
	s.handle("GET /v1/cells/{id}", accessReader, s.whenReady(s.getCell))
	s.handle("GET /v1/summary", accessReader, s.whenReady(s.getSummary))
	// The event log: read and written directly, ready or not.
	s.handle("GET /v1/events", accessReader, s.needEvents(s.listEvents))
	s.handle("POST /v1/events", accessPublisher, s.countRefused(s.needEvents(s.postEvent)))
	// Timelines: an entity's events, from the log (timeline.go).
	s.handle("GET /v1/cells/{id}/events", accessReader, s.needEvents(s.cellEvents))
	s.handle("GET /v1/formations/{id}/events", accessReader, s.needEvents(s.formationEvents))
	s.handle("GET /ws/events", accessReader, s.needEvents(s.serveEvents))
	s.handle("GET /v1/whoami", accessSignedIn, s.whoami)
	// Operations: always served.
	s.handle("GET /v1/status", accessAdmin, s.status)
	s.handle("GET /healthz", accessOpen, s.healthz)
	s.handle("GET /readyz", accessOpen, s.readyz)
	s.access["GET /metrics"] = accessAdmin
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	// The web view: / and its versioned assets (ui.go).
	s.uiRoutes()
}

func (s *Server) handle(pattern string, a access, h handlerFunc) {
	s.access[pattern] = a
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

func (s *Server) whenReady(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if !s.proj.Ready() {
			w.Header().Set("Retry-After", "1")
			return Errorf(CodeNotReady, "the projection is replaying the event log; retry shortly (see /v1/status)")
		}
		return h(w, r)
	}
}

// readTimeout bounds reading one request, body included.
const readTimeout = time.Minute

// eventsTimeout bounds a request's reads and writes of the event log.
const eventsTimeout = 10 * time.Second

// needEvents answers 503 when the server has no event log.
func (s *Server) needEvents(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if s.cfg.Events == nil {
			return Errorf(CodeUnavailable, "the event log is not available")
		}
		return h(w, r)
	}
}

// ServeHTTP authorises the request, then routes it; every answer is
// counted under its route pattern.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// mux.Handler only looks the route up; ServeHTTP also sets the path
	// values handlers read.
	h, pattern := s.mux.Handler(r)
	rec := s.metrics.observe(w, pattern)
	defer rec.done()
	r, err := s.authorize(r, pattern)
	if err != nil {
		s.writeError(rec, r, err)
		return
	}
	if pattern == "" {
		s.noRoute(rec, r, h)
		return
	}
	s.mux.ServeHTTP(rec, r)
}

// Open binds the listener, so that a busy port is an error at start, and
// serves in the background.
func (s *Server) Open() error {
	ln := s.cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", s.cfg.Addr); err != nil {
			return fmt.Errorf("listen on %s: %w", s.cfg.Addr, err)
		}
	}
	if s.cfg.TLS != nil {
		ln = tls.NewListener(ln, s.cfg.TLS)
	}
	s.ln = ln
	if s.hub != nil {
		s.hub.start()
	}
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		// A whole request, body included (an ingest batch is at most 4
		// MiB); a WebSocket clears it once upgraded (ws.go).
		ReadTimeout: readTimeout,
		// A kept-alive connection with no request is closed after this.
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 16 << 10,
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.serveWG.Go(func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server stopped", "err", err)
		}
	})
	return nil
}

// Addr is the bound address (after Open).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops accepting, closes every WebSocket with 1001 (Shutdown does
// not track hijacked connections), lets requests in flight finish until
// ctx ends, then closes what is left.
func (s *Server) Close(ctx context.Context) error {
	s.close()
	if s.srv == nil {
		return nil
	}
	s.ws.shutdown()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
	}
	if werr := s.ws.wait(ctx); err == nil {
		err = werr
	}
	if s.hub != nil {
		s.hub.stop()
	}
	s.serveWG.Wait()
	return err
}

// SocketStats reports the open WebSockets and why closed ones ended.
func (s *Server) SocketStats() SocketStats { return s.ws.stats() }
