package embed

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"cellos-allinone/auth"
)

// DefaultAddr is where external producers reach the embedded server.
const DefaultAddr = "127.0.0.1:4222"

// Limits of the client port when Options leave them zero.
const (
	// DefaultMaxPayload is the largest message a client may publish:
	// nats-server's own default, said out loud.
	DefaultMaxPayload = 1 << 20
	// DefaultMaxConns bounds the client connections (producers, readers,
	// CLIs; this process's own count too): far above what one box
	// serves, far below what exhausts its file descriptors.
	DefaultMaxConns = 4096
)

// Options configure the embedded server. Zero values mean the documented
// defaults.
type Options struct {
	// DataDir holds the JetStream file store, under DataDir/jetstream.
	DataDir string
	// Addr is host:port of the client listener; "" means DefaultAddr.
	// Port 0 picks a free port (tests).
	Addr string
	// SyncInterval is how often JetStream fsyncs its files; 0 keeps
	// nats-server's default (2 minutes). SyncAlways fsyncs every write.
	SyncInterval time.Duration
	SyncAlways   bool
	// MonitorAddr is host:port of nats-server's own monitoring endpoints
	// (/varz, /jsz, /healthz, …); "" serves none. Port 0 picks a free port.
	MonitorAddr string
	// Logger receives the server's log lines; nil discards them.
	Logger *slog.Logger

	// Auth, when set, admits only its principals (and this process's
	// own connections, Connect) and puts them in accounts by tenant and
	// role (accounts.go); SetAuth replaces it. nil: no authentication,
	// every client in the stream's account, as without an auth file.
	Auth *auth.Set
	// Certificate, when set, makes the client port TLS-only (TLS 1.2 at
	// least) with this certificate; SetCertificate replaces it. Connect
	// stays in-process without TLS.
	Certificate *tls.Certificate
	// MaxPayload is the largest message a client may publish; 0 means
	// DefaultMaxPayload.
	MaxPayload int32
	// MaxConns bounds the client connections; 0 means DefaultMaxConns.
	MaxConns int
}

// Server is a running embedded nats-server.
type Server struct {
	ns  *server.Server
	log *slog.Logger

	watchMu  sync.Mutex
	watchers map[string]*blockWatcher // by stream name

	login     *login        // nil without Options.Auth
	cert      *certificate  // nil without Options.Certificate
	gate      *nats.Conn    // the JetStream gate's connection; nil without Options.Auth
	gateSlots chan struct{} // one per request the gate is passing on

	accountsMu sync.Mutex                 // serialises SetAuth
	accounts   map[string]*server.Account // the scopes' accounts, by name
}

// Start starts the server and waits until it accepts connections.
func Start(o Options) (*Server, error) {
	if o.DataDir == "" {
		return nil, errors.New("embed: DataDir is required")
	}
	addr := o.Addr
	if addr == "" {
		addr = DefaultAddr
	}
	host, port, err := splitAddr(addr)
	if err != nil {
		return nil, fmt.Errorf("embed: bad NATS address %q: %w", addr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	var monHost string
	var monPort int
	if o.MonitorAddr != "" {
		if monHost, monPort, err = splitAddr(o.MonitorAddr); err != nil {
			return nil, fmt.Errorf("embed: bad monitoring address %q: %w", o.MonitorAddr, err)
		}
		if monPort == 0 {
			monPort = server.RANDOM_PORT // 0 would mean no monitoring at all
		}
	}
	if o.MaxPayload < 0 || o.MaxConns < 0 {
		return nil, errors.New("embed: MaxPayload and MaxConns cannot be negative")
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{log: log, watchers: map[string]*blockWatcher{}, accounts: map[string]*server.Account{},
		gateSlots: make(chan struct{}, gateInFlight)}
	opts := &server.Options{
		ServerName:   "cellos-allinone",
		Host:         host,
		Port:         port,
		JetStream:    true,
		StoreDir:     o.DataDir, // nats-server adds the "jetstream" directory itself
		SyncInterval: o.SyncInterval,
		SyncAlways:   o.SyncAlways,
		NoSigs:       true,
		HTTPHost:     monHost,
		HTTPPort:     monPort,
		MaxPayload:   cmp.Or(o.MaxPayload, DefaultMaxPayload),
		MaxConn:      cmp.Or(o.MaxConns, DefaultMaxConns),
	}
	if o.Certificate != nil {
		s.cert = &certificate{}
		if err := s.SetCertificate(o.Certificate); err != nil {
			return nil, err
		}
		opts.TLSConfig = s.cert.config()
	}
	if o.Auth != nil {
		// No principal can log in until Start has made the accounts
		// (after JetStream, which must find $G alone to keep it as the
		// stream's account): Check refuses who has no grant.
		if s.login, err = newLogin(s, o.Auth, nil); err != nil {
			return nil, fmt.Errorf("embed: internal credentials: %w", err)
		}
		opts.CustomClientAuthentication = s.login
		// A nonce in every INFO, for the NKey principals' signatures.
		opts.AlwaysEnableNonce = true
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embed: configure nats-server: %w", err)
	}
	s.ns = ns
	if o.Logger != nil {
		la := &logAdapter{l: o.Logger}
		if s.login != nil {
			la.known = s.login.known
		}
		ns.SetLoggerV2(la, false, false, false)
	}
	// Start returns once JetStream has restored its streams (after a crash
	// that is a scan of the whole store) and the listener is up, or has
	// failed and logged why.
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("embed: nats-server on %s did not start (a port in use, or JetStream store unreadable: see the log)", addr)
	}
	if s.login != nil {
		if err := s.startAuth(o.Auth); err != nil {
			s.Shutdown()
			return nil, err
		}
	}
	return s, nil
}

// startAuth makes the accounts of the first auth set and the gate.
func (s *Server) startAuth(set *auth.Set) error {
	s.accountsMu.Lock()
	defer s.accountsMu.Unlock()
	grants, err := s.ensureAccounts(set)
	if err != nil {
		return err
	}
	s.login.swap(set, grants)
	return s.startGate()
}

// CheckAddr binds the client address host:port for a moment to find a busy
// port before anything is created on disk. nats-server binds it again in
// Start (it takes no listener); what takes the port in between still makes
// Start fail, only later.
func CheckAddr(addr string) error {
	if addr == "" {
		addr = DefaultAddr
	}
	return checkListen(addr, "--nats-addr")
}

// CheckMonitorAddr is CheckAddr for the monitoring address; "" (none) is
// fine.
func CheckMonitorAddr(addr string) error {
	if addr == "" {
		return nil
	}
	return checkListen(addr, "--nats-monitor-addr")
}

func checkListen(addr, flag string) error {
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "0" {
		return nil // a free port is picked; Start reports a bad address
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s (%s): %w", addr, flag, err)
	}
	return ln.Close()
}

func splitAddr(addr string) (host string, port int, err error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err = strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("port %q is not a number from 0 to 65535", portStr)
	}
	return host, port, nil
}

// Connect opens an in-process client connection: no socket, no port, no
// TLS. With Options.Auth it logs in as the internal user, in the stream's
// account with every permission, with a secret made at Start that exists
// only in this process's memory and is accepted only in-process.
func (s *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	base := []nats.Option{nats.InProcessServer(s.ns), nats.Name("cellos-allinone")}
	if s.login != nil {
		base = append(base, nats.UserInfo(internalUser, s.login.secret))
	}
	return nats.Connect("", append(base, opts...)...)
}

// ClientURL is the nats:// URL external producers use.
func (s *Server) ClientURL() string { return s.ns.ClientURL() }

// MonitorURL is the http:// base URL of the monitoring endpoints; "" when
// they are not served.
func (s *Server) MonitorURL() string {
	a := s.ns.MonitorAddr()
	if a == nil {
		return ""
	}
	return "http://" + a.String()
}

// Shutdown stops the server and waits until JetStream has flushed and
// closed its files.
func (s *Server) Shutdown() {
	if s.gate != nil {
		s.gate.Close()
	}
	s.stopWatchers()
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}
