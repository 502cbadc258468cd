package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	natsembed "cellos-allinone/embed"
	"cellos-allinone/eventlog"
	"cellos-allinone/projector"
	"cellos-allinone/store"
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
	a = &App{cfg: cfg, watching: make(chan struct{}), stopped: make(chan struct{}), closed: make(chan struct{})}
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
	if a.be, err = openBackend(&cfg, log); err != nil {
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
		StoreAside:         aside,
		Logger:             log.With("system", "projector"),
		Registerer:         reg,
	})
	a.HTTP = web.New(web.Config{
		Listener: a.httpLn, Version: cfg.Version, Logger: log.With("system", "http"), Gatherer: reg,
		Registerer: reg, Events: a.Events, WS: cfg.WS,
	}, a.Proj)
	if err := a.HTTP.Open(); err != nil {
		return nil, err
	}
	a.httpLn = nil // the server owns it now
	if u := a.NATSMonitorURL(); u != "" {
		log.Info("serving nats-server monitoring", "url", u)
	}
	log.Info("listening", "http", "http://"+a.HTTP.Addr(), "nats", a.be.URL(), "data_dir", cfg.DataDir)
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
