package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// ingestResult is figure 4 and 5 for one binary: a publish of the data set
// into a new data dir with the projector running, and what it left.
type ingestResult struct {
	Events      int     `json:"events"`
	Rate        float64 `json:"rate"`        // acknowledged events/s, first publish to last ack
	Seconds     float64 `json:"seconds"`     // first publish to last ack
	LagSeconds  float64 `json:"lagSeconds"`  // last ack to /v1/status lag 0 (cursor at the last ack)
	Formations  int     `json:"formations"`  // registry, from /v1/status
	Cells       int     `json:"cells"`       //
	StreamBytes uint64  `json:"streamBytes"` // the stream's bytes (JetStream's accounting)
	// checkpoint.db after the clean stop that followed, in bytes.
	CheckpointBytes int64 `json:"checkpointBytes"`
	// cellos_checkpoint_duration_seconds over the ingest (before the stop).
	CheckpointP99   float64 `json:"checkpointP99"` // seconds
	CheckpointAbove bool    `json:"checkpointAbove"`
	Checkpoints     float64 `json:"checkpoints"`
	RSSMiB          float64 `json:"rssMiB"` // VmHWM of the server at the end of the ingest

	lastPublish time.Time
	dup         time.Duration
	streamCfg   jetstream.StreamConfig
}

// entities is formations + cells of the registry.
func (r ingestResult) entities() int { return r.Formations + r.Cells }

// bytesPerEntity is the checkpoint's size per registry entity.
func (r ingestResult) bytesPerEntity() float64 {
	if r.entities() == 0 {
		return 0
	}
	return float64(r.CheckpointBytes) / float64(r.entities())
}

// ingest starts bin on the empty dir, publishes the first n events of ds
// as fast as acks allow (at most cfg.inflight unacknowledged), waits until
// the projection has applied the last one, reads the figures and stops the
// server cleanly, so that dir holds the stream and a checkpoint.
func ingest(ctx context.Context, cfg *config, bin binary, ds *dataset, n int, dir string) (ingestResult, error) {
	r := ingestResult{Events: n}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return r, err
	}
	s, _, err := start(ctx, bin.Path, dir, cfg.logPath(bin, "ingest"), cfg.bootTimeout, cfg.serveArgs()...)
	if err != nil {
		return r, err
	}
	defer s.kill()
	nc, js, err := connect(s.NATS, cfg.inflight)
	if err != nil {
		return r, err
	}
	defer nc.Close()
	pctx, cancel := context.WithTimeout(ctx, cfg.loadTimeout)
	defer cancel()
	ps, err := publish(pctx, js, n, 0, func(i int) (message, error) { return ds.at(i), nil }, nil)
	if err != nil {
		return r, fmt.Errorf("publish into %s: %w", bin.Label, err)
	}
	if ps.duplicates > 0 {
		return r, fmt.Errorf("publish into %s: %d acks were duplicates: the data dir was not empty", bin.Label, ps.duplicates)
	}
	r.Rate, r.Seconds, r.lastPublish = ps.rate, ps.elapsed.Seconds(), ps.lastAck
	st, caught, err := s.waitCaughtUp(ctx, ps.lastSeq, cfg.loadTimeout)
	if err != nil {
		return r, err
	}
	r.LagSeconds = caught.Sub(ps.lastAck).Seconds()
	r.Formations, r.Cells = st.Registry.Formations, st.Registry.Cells
	r.RSSMiB, _ = procMem(s.pid())
	if text, err := s.metrics(); err == nil {
		if h, ok := parseHistogram(text, "cellos_checkpoint_duration_seconds"); ok {
			r.CheckpointP99, r.CheckpointAbove = h.quantile(0.99)
			r.Checkpoints = h.count()
		}
	}
	stream, err := js.Stream(ctx, streamName)
	if err != nil {
		return r, err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return r, err
	}
	r.StreamBytes, r.dup, r.streamCfg = info.State.Bytes, info.Config.Duplicates, info.Config
	nc.Close()
	if err := s.stop(cfg.stopTimeout); err != nil {
		return r, err
	}
	if fi, err := os.Stat(filepath.Join(dir, "checkpoint.db")); err == nil {
		r.CheckpointBytes = fi.Size()
	}
	return r, nil
}

// ceilingResult is the no-projector publish ceiling: the same publisher
// and events into a bare nats-server with the same JetStream settings.
type ceilingResult struct {
	Events int     `json:"events"`
	Rate   float64 `json:"rate"`
}

// ceiling runs a bare nats-server in this process (file store in dir,
// the binary's fsync settings), creates the stream with the configuration
// the binary gave its own, and publishes the first n events of ds to it
// over loopback TCP as ingest does.
func ceiling(ctx context.Context, cfg *config, streamCfg jetstream.StreamConfig, ds *dataset, n int, dir string) (ceilingResult, error) {
	r := ceilingResult{Events: n}
	ns, err := natsserver.NewServer(&natsserver.Options{
		ServerName: "cellos-bench-ceiling", Host: "127.0.0.1", Port: natsserver.RANDOM_PORT,
		JetStream: true, StoreDir: dir, SyncInterval: cfg.syncInterval, NoSigs: true, NoLog: true,
	})
	if err != nil {
		return r, err
	}
	ns.Start()
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	if !ns.ReadyForConnections(30 * time.Second) {
		return r, fmt.Errorf("bare nats-server in %s did not start", dir)
	}
	nc, js, err := connect(ns.ClientURL(), cfg.inflight)
	if err != nil {
		return r, err
	}
	defer nc.Close()
	// Fields the server sets itself are not the client's to give.
	streamCfg.Metadata = maps.Clone(streamCfg.Metadata)
	for k := range streamCfg.Metadata {
		if strings.HasPrefix(k, "_nats.") {
			delete(streamCfg.Metadata, k)
		}
	}
	if _, err := js.CreateStream(ctx, streamCfg); err != nil {
		return r, fmt.Errorf("create the stream on the bare server: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, cfg.loadTimeout)
	defer cancel()
	ps, err := publish(pctx, js, n, 0, func(i int) (message, error) { return ds.at(i), nil }, nil)
	if err != nil {
		return r, fmt.Errorf("publish to the bare server: %w", err)
	}
	r.Rate = ps.rate
	return r, nil
}
