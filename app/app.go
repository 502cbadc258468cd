package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"cellos-allinone/auth"
	natsembed "cellos-allinone/embed"
	"cellos-allinone/eventlog"
	"cellos-allinone/projector"
	"cellos-allinone/store"
	"cellos-allinone/tlscert"
	"cellos-allinone/web"
)

// CheckpointFile is the checkpoint's file name inside the data dir.
const CheckpointFile = "checkpoint.db"

// App is one running process.
type App struct {
	cfg   Config
	store *store.Store
	be    *backend
	// Events is the event log: the CELLOS_EVENTS stream.
	Events *eventlog.Stream
	Proj   *projector.Projector
	HTTP   *web.Server

	httpLn    net.Listener // bound first, handed to HTTP
	log       *slog.Logger
	reloadMu  sync.Mutex
	authSet   *auth.Set     // the principals in force; nil without an auth file
	cert      *tlscert.Pair // nil without TLS
	cancel    context.CancelFunc
	watching  chan struct{} // closed when the log's watcher returned
	stopped   chan struct{} // closed when the projector's Run returned
	runErr    error
	closed    chan struct{} // closed when Close has finished
	closeOnce sync.Once
	closeErr  error
}

// Start brings the process up. It returns once the HTTP listener is bound;
// the projector replays in the background (see Proj.WaitReady). The
// listeners are bound before anything with a side effect: a busy port
// stops it before a data dir, a stream or a checkpoint file is created.
func Start(ctx context.Context, cfg Config) (a *App, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	a = &App{cfg: cfg, log: log, watching: make(chan struct{}), stopped: make(chan struct{}), closed: make(chan struct{})}
	// Credentials first: a bad auth file or certificate is an error
	// before anything is bound or created.
	if cfg.AuthFile != "" {
		if a.authSet, err = auth.ParseFile(cfg.AuthFile); err != nil {
			return nil, err
		}
		if fi, err := os.Stat(cfg.AuthFile); err == nil && fi.Mode().Perm()&0o077 != 0 && a.authSet.HoldsSecrets() {
			log.Warn("the auth file holds tokens and other users of this machine can read it: chmod 600 it, or keep only sha256: digests in it",
				"path", cfg.AuthFile, "mode", fi.Mode().Perm().String())
		}
	}
	if cfg.TLSCert != "" {
		if a.cert, err = tlscert.Load(cfg.TLSCert, cfg.TLSKey); err != nil {
			return nil, err
		}
	}
	// The App is passed in: by the time this runs, "return nil, err" has
	// set the result a to nil.
	defer func(a *App) {
		if err != nil {
			_ = a.release() // the start's own error is the one to report
		}
	}(a)
	if a.httpLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return nil, fmt.Errorf("listen on %s (--http-addr): %w", cfg.HTTPAddr, err)
	}
	if cfg.NATSURL == "" {
		if err := natsembed.CheckAddr(cfg.NATSAddr); err != nil {
			return nil, err
		}
		if err := natsembed.CheckMonitorAddr(cfg.NATSMonitorAddr); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", cfg.DataDir, err)
	}
	st, aside, err := store.Open(filepath.Join(cfg.DataDir, CheckpointFile))
	if err != nil {
		return nil, err
	}
	a.store = st
	if aside != "" {
		log.Warn("checkpoint file unreadable; moved aside", "path", aside)
	}
	var cert *tls.Certificate
	if a.cert != nil {
		cert = a.cert.Certificate()
	}
	if a.be, err = openBackend(&cfg, a.authSet, cert, log); err != nil {
		return nil, err
	}
	ctxOpen, cancelOpen := context.WithTimeout(ctx, 30*time.Second)
	defer cancelOpen()
	evCfg := eventlog.Config{
		MaxAge: cfg.MaxAge, MaxBytes: cfg.MaxBytes, Duplicates: cfg.Duplicates,
		Logger: log.With("system", "eventlog"),
	}
	if a.be.srv != nil {
		// The embedded server owns the store directory: a new stream is
		// made durable at once, whatever --sync says, and its new message
		// blocks are watched (docs/durability.md, "Power cuts").
		evCfg.AfterCreate = a.be.srv.SyncStream
	}
	a.Events, err = eventlog.Open(ctxOpen, a.be.nc, evCfg)
	if err != nil {
		return nil, err
	}
	if a.Events.Created {
		log.Info("created stream", "stream", eventlog.StreamName, "epoch", a.Events.Epoch())
	} else if a.be.srv != nil {
		// A stream created by an earlier start, perhaps by a version that
		// did not sync it; and its new blocks need the watch either way.
		if err := a.be.srv.SyncStream(eventlog.StreamName); err != nil {
			return nil, err
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.Proj = projector.New(a.Events, st, projector.Config{
		CheckpointInterval: cfg.CheckpointInterval,
		CheckpointEvents:   cfg.CheckpointEvents,
		CompactMinFree:     cfg.CompactMinFree,
		ScrubInterval:      cfg.ScrubInterval,
		StoreAside:         aside,
		Logger:             log.With("system", "projector"),
		Registerer:         reg,
	})
	webCfg := web.Config{
		Listener: a.httpLn, Version: cfg.Version, Logger: log.With("system", "http"), Gatherer: reg,
		Registerer: reg, Events: a.Events, WS: cfg.WS,
		Auth: a.authSet, BoundAddr: cfg.HTTPAddr, AllowedHosts: cfg.AllowedHosts,
	}
	if a.cert != nil {
		webCfg.TLS = a.cert.Config()
	}
	a.HTTP = web.New(webCfg, a.Proj)
	if err := a.HTTP.Open(); err != nil {
		return nil, err
	}
	a.httpLn = nil // the server owns it now
	if u := a.NATSMonitorURL(); u != "" {
		log.Info("serving nats-server monitoring", "url", u)
	}
	log.Info("listening", "http", a.HTTPURL(), "nats", a.be.URL(), "data_dir", cfg.DataDir,
		"auth", a.authSummary(), "tls", a.cert != nil)
	if a.authSet != nil && a.cert == nil && !isLoopback(cfg.HTTPAddr) {
		log.Warn("serving beyond loopback without TLS: bearer tokens cross the network in clear text; give --tls-cert and --tls-key")
	}
	runCtx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	go func() {
		defer close(a.watching)
		a.Events.Watch(runCtx)
	}()
	go func() {
		a.runErr = a.Proj.Run(runCtx)
		close(a.stopped)
	}()
	return a, nil
}

// HTTPURL is the base URL of the HTTP API (https:// with TLS).
func (a *App) HTTPURL() string {
	if a.cert != nil {
		return "https://" + a.HTTP.Addr()
	}
	return "http://" + a.HTTP.Addr()
}

// Reload re-reads the auth file and the TLS certificate (SIGHUP). Each
// that does not load is kept as it was, and the error says why; what did
// load takes effect for new requests, connections and handshakes, and the
// open connections of principals that were removed or changed are closed.
func (a *App) Reload() error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	var errs []error
	if a.cfg.AuthFile != "" {
		set, err := auth.ParseFile(a.cfg.AuthFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("auth file not reloaded, the previous principals stay in force: %w", err))
		} else {
			closed := a.HTTP.SetAuth(set)
			if a.be.srv != nil {
				// The same set for NATS: the withdrawn principals' NATS
				// connections are closed too.
				if err := a.be.srv.SetAuth(set); err != nil {
					errs = append(errs, fmt.Errorf("NATS principals not reloaded: %w", err))
				}
			}
			a.authSet = set
			a.log.Info("auth file reloaded", "principals", len(set.Principals()), "withdrawn", closed)
		}
	}
	if a.cert != nil {
		if err := a.cert.Reload(); err != nil {
			errs = append(errs, fmt.Errorf("TLS certificate not reloaded, the previous one stays in use: %w", err))
		} else {
			if a.be.srv != nil {
				if err := a.be.srv.SetCertificate(a.cert.Certificate()); err != nil {
					errs = append(errs, fmt.Errorf("NATS certificate not reloaded: %w", err))
				}
			}
			a.log.Info("TLS certificate reloaded", "not_after", a.cert.Certificate().Leaf.NotAfter)
		}
	}
	return errors.Join(errs...)
}

// authSummary describes the auth in force for the start's log line.
func (a *App) authSummary() string {
	if a.authSet == nil {
		return "none (loopback only)"
	}
	return fmt.Sprintf("%d principals from %s", len(a.authSet.Principals()), a.cfg.AuthFile)
}

// isLoopback reports whether host:port names this machine only.
func isLoopback(addr string) bool { return requireLoopback("", addr, "") == nil }

// NATSURL is where external producers publish.
func (a *App) NATSURL() string { return a.be.URL() }

// NATSMonitorURL is the base URL of the embedded nats-server's monitoring
// endpoints; "" when they are not served (--nats-monitor-addr unset, or
// external NATS).
func (a *App) NATSMonitorURL() string {
	if a.be.srv == nil {
		return ""
	}
	return a.be.srv.MonitorURL()
}

// Stopped is closed when the projector has stopped: after Close, or on its
// own when boot failed (then Err says why).
func (a *App) Stopped() <-chan struct{} { return a.stopped }

// Err is the projector's result once Stopped is closed.
func (a *App) Err() error { return a.runErr }

// Close shuts down in order: HTTP, projector (final checkpoint), NATS,
// bbolt. ctx bounds the wait for requests in flight. Calling it again
// returns the first result.
func (a *App) Close(ctx context.Context) error {
	a.closeOnce.Do(func() {
		var errs []error
		if err := a.HTTP.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http: %w", err))
		}
		a.cancel()
		<-a.stopped
		<-a.watching
		if err := a.runErr; err != nil {
			errs = append(errs, fmt.Errorf("projector: %w", err))
		}
		if err := a.release(); err != nil {
			errs = append(errs, err)
		}
		a.closeErr = errors.Join(errs...)
		close(a.closed)
	})
	return a.closeErr
}

// Abort stops the process as a kill would leave its data dir, for tests of
// crash recovery: it closes the checkpoint file first, so the projector's
// final checkpoint fails and nothing after the last checkpoint is written,
// then shuts down the rest as Close does and returns Close's result (an
// error, naming the failed final checkpoint). A server stops with Close.
func (a *App) Abort(ctx context.Context) error {
	a.store.Close()
	return a.Close(ctx)
}

// release frees the listener, the NATS connection and server, and the
// checkpoint file.
// The checkpoint file's close error is returned: a failed close can mean
// the final checkpoint did not reach the disk.
func (a *App) release() error {
	if a.httpLn != nil {
		a.httpLn.Close()
	}
	if a.be != nil {
		a.be.close()
	}
	if a.store != nil {
		if err := a.store.Close(); err != nil {
			return fmt.Errorf("close checkpoint %s: %w", a.store.Path(), err)
		}
	}
	return nil
}
