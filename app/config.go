package app

import (
	"fmt"
	"log/slog"
	"net"
	"time"

	"cellos-allinone/web"
)

// Config of one process. Zero values mean the documented defaults.
type Config struct {
	DataDir  string // default ./cellos-data
	HTTPAddr string // default 127.0.0.1:8080
	NATSAddr string // embedded server's client listener, default 127.0.0.1:4222
	// NATSURL connects to an existing NATS server or cluster instead of
	// starting the embedded one.
	NATSURL string
	// NATSMonitorAddr serves the embedded server's monitoring endpoints
	// (/varz, /jsz, …) there; "" (the default) serves none.
	NATSMonitorAddr string

	// Sync is the JetStream fsync policy of the embedded server:
	// SyncPolicyAlways (the default) fsyncs every write before it is
	// acknowledged; SyncPolicyInterval fsyncs every SyncInterval.
	Sync         string
	SyncInterval time.Duration

	CheckpointInterval time.Duration
	CheckpointEvents   int
	// CompactMinFree: the state file is compacted when its free pages
	// take more than this many bytes and more than half its pages (0:
	// projector.DefaultCompactMinFree; negative: never).
	CompactMinFree int64
	// ScrubInterval: the state is scrubbed this often, and once after an
	// unclean start (0: projector.DefaultScrubInterval; negative: never).
	ScrubInterval time.Duration

	// Stream settings used only when the stream is created.
	MaxAge     time.Duration
	MaxBytes   int64
	Duplicates time.Duration

	// WS tunes the WebSocket bridge /ws/events (web.WSConfig defaults).
	WS web.WSConfig

	// AuthFile is the auth file (docs/security.md): its principals are the
	// only ones HTTP and the embedded NATS accept. "" keeps the server
	// open to every local caller, which is allowed on loopback only.
	AuthFile string
	// AllowedHosts are further names and addresses the HTTP server
	// answers to (the Host and Origin checks).
	AllowedHosts []string
	// TLSCert and TLSKey serve HTTPS and TLS on the NATS client port.
	TLSCert, TLSKey string
	// NATSMaxConns bounds the embedded server's client connections (0:
	// embed.DefaultMaxConns).
	NATSMaxConns int

	Version string
	Logger  *slog.Logger
}

// needAuthFile says why a listener beyond loopback is refused.
const needAuthFile = "listening beyond this machine requires credentials: give --auth-file (docs/security.md)"

// Sync policies of the embedded JetStream (see docs/durability.md).
const (
	SyncPolicyAlways   = "always"
	SyncPolicyInterval = "interval"
)

// Defaults of Config.
const (
	DefaultSyncInterval = time.Second
	DefaultDataDir      = "./cellos-data"
	DefaultHTTPAddr     = "127.0.0.1:8080"
	DefaultNATSAddr     = "127.0.0.1:4222"
)

func (c *Config) fill() {
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = DefaultHTTPAddr
	}
	if c.NATSAddr == "" {
		c.NATSAddr = DefaultNATSAddr
	}
	if c.Sync == "" {
		c.Sync = SyncPolicyAlways
	}
	if c.SyncInterval == 0 {
		c.SyncInterval = DefaultSyncInterval
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate checks the configuration before anything starts.
func (c *Config) Validate() error {
	c.fill()
	if c.AuthFile == "" {
		// Without credentials only this machine may connect.
		if err := requireLoopback("--http-addr", c.HTTPAddr, needAuthFile); err != nil {
			return err
		}
		if c.NATSURL == "" {
			if err := requireLoopback("--nats-addr", c.NATSAddr, needAuthFile); err != nil {
				return err
			}
		}
	} else if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		return fmt.Errorf("--http-addr %q: %v (want host:port, for example 0.0.0.0:8080)", c.HTTPAddr, err)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return fmt.Errorf("--tls-cert and --tls-key go together: give both or neither")
	}
	if err := web.CheckAllowedHosts(c.AllowedHosts); err != nil {
		return fmt.Errorf("--allowed-hosts: %w", err)
	}
	if c.NATSMonitorAddr != "" {
		// Its endpoints have no authentication: this machine only, even
		// with an auth file.
		if c.NATSURL != "" {
			// The URL is not repeated: it may hold credentials.
			return fmt.Errorf("--nats-monitor-addr serves the embedded nats-server's monitoring; with --nats-url there is none: read the external server's own monitoring port")
		}
		if err := requireLoopback("--nats-monitor-addr", c.NATSMonitorAddr, "nats-server's monitoring endpoints have no authentication, so they stay on this machine (read them through an SSH tunnel)"); err != nil {
			return err
		}
	}
	if err := web.CheckOriginPatterns(c.WS.Origins); err != nil {
		return fmt.Errorf("--ws-origins: %w", err)
	}
	if c.WS.MaxSockets < 0 {
		return fmt.Errorf("--ws-max-sockets must not be negative")
	}
	if c.Sync != SyncPolicyAlways && c.Sync != SyncPolicyInterval {
		return fmt.Errorf("--sync %q: want %s or %s", c.Sync, SyncPolicyAlways, SyncPolicyInterval)
	}
	if c.SyncInterval < 0 {
		return fmt.Errorf("--sync-interval must be positive")
	}
	if c.NATSMaxConns < 0 {
		return fmt.Errorf("--nats-max-conns must not be negative")
	}
	if c.CheckpointInterval < 0 || c.CheckpointEvents < 0 || c.MaxAge < 0 || c.MaxBytes < 0 || c.Duplicates < 0 {
		return fmt.Errorf("checkpoint and retention settings must not be negative")
	}
	return nil
}

// requireLoopback refuses listeners beyond this machine: binding elsewhere
// needs credentials, an auth file (docs/security.md).
func requireLoopback(flag, addr, why string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s %q: %v (want host:port, for example 127.0.0.1:8080)", flag, addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%s %q is not a loopback address: %s", flag, addr, why)
}
