package app

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"cellos-allinone/auth"
	natsembed "cellos-allinone/embed"
)

// backend is the one seam between embedded and external NATS: everything
// above it sees only a *nats.Conn.
type backend struct {
	nc  *nats.Conn
	srv *natsembed.Server // nil when external
}

// openBackend connects to NATS: the embedded server (with the auth file's
// principals and the TLS certificate, when given), or cfg.NATSURL.
func openBackend(cfg *Config, set *auth.Set, cert *tls.Certificate, log *slog.Logger) (*backend, error) {
	opts := []nats.Option{
		nats.Name("cellos-allinone"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("NATS reconnected", "url", nc.ConnectedUrlRedacted()) }),
	}
	if cfg.NATSURL != "" {
		nc, err := nats.Connect(cfg.NATSURL, opts...)
		if err != nil {
			return nil, fmt.Errorf("connect to NATS at %s: %w", cfg.NATSURL, err)
		}
		log.Info("using external NATS", "url", nc.ConnectedUrlRedacted())
		return &backend{nc: nc}, nil
	}
	srv, err := natsembed.Start(natsembed.Options{
		DataDir:      cfg.DataDir,
		Addr:         cfg.NATSAddr,
		MonitorAddr:  cfg.NATSMonitorAddr,
		SyncAlways:   cfg.Sync == SyncPolicyAlways,
		SyncInterval: cfg.SyncInterval,
		Logger:       log.With("system", "nats-server"),
		Auth:         set,
		Certificate:  cert,
		MaxConns:     cfg.NATSMaxConns,
	})
	if err != nil {
		return nil, err
	}
	nc, err := srv.Connect(opts...)
	if err != nil {
		srv.Shutdown()
		return nil, fmt.Errorf("connect in-process to embedded NATS: %w", err)
	}
	log.Info("embedded NATS ready", "url", srv.ClientURL())
	return &backend{nc: nc, srv: srv}, nil
}

// URL is where external producers publish.
func (b *backend) URL() string {
	if b.srv != nil {
		return b.srv.ClientURL()
	}
	return b.nc.ConnectedUrlRedacted()
}

func (b *backend) close() {
	b.nc.Close()
	if b.srv != nil {
		b.srv.Shutdown()
	}
}
