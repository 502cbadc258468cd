package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"cellos-allinone/app"
	natsembed "cellos-allinone/embed"
	"cellos-allinone/eventlog"
	"cellos-allinone/projector"
	"cellos-allinone/web"
)

// serveFlags binds the flags of the server to cfg.
func serveFlags(cfg *app.Config, logLevel, logFormat *string) *flag.FlagSet {
	fs := newFlagSet("serve",
		"Runs everything in one process: an embedded nats-server with JetStream (or --nats-url),\n"+
			"the projection with its bbolt checkpoint, the HTTP API, WebSocket stream and web view.",
		"cellos-allinone serve --data-dir /var/lib/cellos --http-addr 127.0.0.1:8080")
	fs.StringVar(&cfg.DataDir, "data-dir", app.DefaultDataDir, "directory for the JetStream store and the checkpoint")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", app.DefaultHTTPAddr, "HTTP listen address (loopback only without --auth-file)")
	fs.StringVar(&cfg.NATSAddr, "nats-addr", app.DefaultNATSAddr, "embedded NATS client listen address (loopback only without --auth-file)")
	fs.StringVar(&cfg.AuthFile, "auth-file", "", "the principals HTTP and NATS accept, one a line: <name> <secret> <role>[,<role>…] [<tenant>] (docs/security.md); reloaded on SIGHUP")
	fs.Func("allowed-hosts", "comma-separated further host names (*.example.com for sub-domains) or addresses the HTTP server answers to, any port; others get 421", func(v string) error {
		cfg.AllowedHosts = splitList(v)
		return web.CheckAllowedHosts(cfg.AllowedHosts)
	})
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate (chain) for HTTPS and TLS on the NATS client port; reloaded on SIGHUP")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.IntVar(&cfg.NATSMaxConns, "nats-max-conns", natsembed.DefaultMaxConns, "most client connections the embedded NATS server takes at once")
	fs.StringVar(&cfg.NATSURL, "nats-url", "", "use this existing NATS server/cluster instead of the embedded one")
	fs.StringVar(&cfg.NATSMonitorAddr, "nats-monitor-addr", "", "serve the embedded nats-server's monitoring endpoints (/varz, /jsz, …) here (loopback only; off when empty; not with --nats-url)")
	fs.StringVar(&cfg.Sync, "sync", app.SyncPolicyAlways, "JetStream fsync policy of the embedded server: always (every write is on disk before it is acknowledged) or interval")
	fs.DurationVar(&cfg.SyncInterval, "sync-interval", app.DefaultSyncInterval, "with --sync interval: fsync this often (a power cut can lose up to this much acknowledged data)")
	fs.DurationVar(&cfg.CheckpointInterval, "checkpoint-interval", projector.DefaultCheckpointInterval, "commit what was applied to the state file this often (at most 10s); answers trail the stream by about this much")
	fs.IntVar(&cfg.CheckpointEvents, "checkpoint-events", projector.DefaultCheckpointEvents, "also commit after this many events during a replay or a rebuild; live, after at most 2,000")
	fs.Int64Var(&cfg.CompactMinFree, "compact-min-free", projector.DefaultCompactMinFree, "compact the state file (at start, and while serving between two commits) when its free pages take more than this many bytes and more than half its pages; -1: never")
	fs.DurationVar(&cfg.ScrubInterval, "scrub-interval", projector.DefaultScrubInterval, "check the whole state file (records, indexes, counts, bbolt's pages) this often at 5% of a core, and once after an unclean stop; damage found rebuilds it from the stream; -1s: never, 0: the default")
	fs.DurationVar(&cfg.MaxAge, "retention", eventlog.DefaultMaxAge, "max age of events in a newly created stream")
	fs.Int64Var(&cfg.MaxBytes, "max-bytes", 0, "byte cap of a newly created stream (0 = none)")
	fs.DurationVar(&cfg.Duplicates, "dup-window", eventlog.DefaultDuplicates, "duplicate-detection window of a newly created stream")
	fs.IntVar(&cfg.WS.MaxSockets, "ws-max-sockets", web.DefaultWSMaxSockets, "most WebSockets open at once; more get HTTP 503")
	fs.IntVar(&cfg.WS.MaxSocketsPerPrincipal, "ws-max-sockets-per-principal", web.DefaultWSMaxSocketsPerPrincipal, "most WebSockets one principal of the auth file has open at once; more get HTTP 503")
	fs.Func("ws-origins", "comma-separated extra Origin patterns allowed to use the API from a browser (host[:port] or scheme://host[:port], path.Match wildcards); the server's own names are always allowed", func(v string) error {
		cfg.WS.Origins = splitList(v)
		return web.CheckOriginPatterns(cfg.WS.Origins)
	})
	fs.StringVar(logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(logFormat, "log-format", "text", "text or json")
	return fs
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for o := range strings.SplitSeq(v, ",") {
		if o = strings.TrimSpace(o); o != "" {
			out = append(out, o)
		}
	}
	return out
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg app.Config
	var logLevel, logFormat string
	fs := serveFlags(&cfg, &logLevel, &logFormat)
	fs.SetOutput(stderr)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected arguments: %v", fs.Args())}
	}
	a, log, err := startApp(ctx, cfg, logLevel, logFormat, stderr)
	if err != nil {
		return err
	}
	waitServing(ctx, a, log)
	closeCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := a.Close(closeCtx); err != nil {
		return err
	}
	log.Info("stopped cleanly")
	return nil
}

// waitServing serves until ctx ends (SIGINT, SIGTERM) or the projector
// stops on its own; a SIGHUP meanwhile reloads the auth file and the TLS
// certificate and never ends the process.
func waitServing(ctx context.Context, a *app.App, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			log.Info("shutting down")
			return
		case <-a.Stopped():
			log.Error("projector stopped", "err", a.Err())
			return
		case <-reloadRequests(ctx):
			log.Info("SIGHUP: reloading the auth file and the TLS certificate")
			if err := a.Reload(); err != nil {
				log.Error("reload incomplete", "err", err)
			}
		}
	}
}

// startApp sets up logging, checks cfg (a bad one is a usage error) and
// starts the process; serve and demo share it.
func startApp(ctx context.Context, cfg app.Config, logLevel, logFormat string, stderr io.Writer) (*app.App, *slog.Logger, error) {
	log, err := newLogger(stderr, logLevel, logFormat)
	if err != nil {
		return nil, nil, err
	}
	cfg.Logger, cfg.Version = log, versionString()
	if err := cfg.Validate(); err != nil {
		return nil, nil, usageError{err.Error()}
	}
	a, err := app.Start(ctx, cfg)
	return a, log, err
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Sprintf("--log-level %q: want debug, info, warn or error", level)}
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageError{fmt.Sprintf("--log-format %q: want text or json", format)}
}
