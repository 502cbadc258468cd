package projector

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"cellos-allinone/eventlog"
	"cellos-allinone/projection"
	"cellos-allinone/store"
)

// Config tunes the projector; zero values mean the documented defaults.
type Config struct {
	// CheckpointInterval: a checkpoint is written this often when something
	// changed (default 5 s; at most 10 s is allowed).
	CheckpointInterval time.Duration
	// CheckpointEvents: a checkpoint is also written after this many
	// applied events (default 10,000).
	CheckpointEvents int
	// ProgressInterval: during replay a progress line is logged this often
	// (default 2 s).
	ProgressInterval time.Duration
	// LagWarnAfter: a warning is logged when the oldest event not yet
	// applied has waited this long (default 5 s).
	LagWarnAfter time.Duration
	// StoreAside names a checkpoint file store.Open had to move aside.
	StoreAside string
	Logger     *slog.Logger
	// Registerer receives the projector's metrics; nil registers nothing.
	Registerer prometheus.Registerer

	// beforeApply, when set (by tests), runs before each event is applied:
	// a way to make the projector slow without holding its locks.
	beforeApply func()
}

// Defaults and bounds of Config.
const (
	DefaultCheckpointInterval = 5 * time.Second
	MaxCheckpointInterval     = 10 * time.Second
	DefaultCheckpointEvents   = 10_000
	DefaultProgressInterval   = 2 * time.Second
	DefaultLagWarnAfter       = 5 * time.Second
)

func (c *Config) fill() {
	if c.CheckpointInterval <= 0 {
		c.CheckpointInterval = DefaultCheckpointInterval
	}
	c.CheckpointInterval = min(c.CheckpointInterval, MaxCheckpointInterval)
	if c.CheckpointEvents <= 0 {
		c.CheckpointEvents = DefaultCheckpointEvents
	}
	if c.ProgressInterval <= 0 {
		c.ProgressInterval = DefaultProgressInterval
	}
	if c.LagWarnAfter <= 0 {
		c.LagWarnAfter = DefaultLagWarnAfter
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// View is what one answer reads: the projection and the epoch of the
// stream incarnation it is a fold of, taken together.
type View struct {
	*projection.Projection
	Epoch string
}

// rebuild is a projection of a new stream incarnation being built while
// the old one is still served.
type rebuild struct {
	View
	Reason  string
	Started time.Time
}

// Projector owns the projection of one event log.
type Projector struct {
	cfg    Config
	events *eventlog.Stream
	store  *store.Store
	log    *slog.Logger
	m      *metrics

	mu         sync.RWMutex // guards served, building and lastRebuild
	served     View
	building   *rebuild    // nil unless a new incarnation is being rebuilt
	rebuilding atomic.Bool // building != nil, readable without mu
	// lastRebuild describes the latest rebuild while running.
	lastRebuild *RebuildStatus

	ready     chan struct{}
	readyOnce sync.Once
	bootMu    sync.Mutex
	boot      Boot
	replayed  atomic.Uint64
	bootStart time.Time

	cpMu     sync.Mutex // one checkpoint at a time
	cpCursor atomic.Uint64
	cpAt     atomic.Pointer[time.Time]
	cpErr    atomic.Pointer[string] // last failure, nil after a success
	cpFails  atomic.Uint64
	sinceCP  atomic.Int64  // events since the last checkpoint
	lastSeen atomic.Uint64 // last sequence applied to the projection being followed
	lag      lagState
}

// New returns a projector over an opened log and checkpoint store. Run
// boots it.
func New(events *eventlog.Stream, st *store.Store, cfg Config) *Projector {
	cfg.fill()
	p := &Projector{
		cfg:    cfg,
		events: events,
		store:  st,
		log:    cfg.Logger,
		served: View{Projection: projection.New(), Epoch: events.Epoch()},
		ready:  make(chan struct{}),
	}
	p.m = newMetrics(p, cfg.Registerer)
	return p
}

// Ready reports whether the boot replay is done.
func (p *Projector) Ready() bool {
	select {
	case <-p.ready:
		return true
	default:
		return false
	}
}

// WaitReady blocks until the boot replay is done or ctx ends.
func (p *Projector) WaitReady(ctx context.Context) error {
	select {
	case <-p.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Epoch is the identity of the stream incarnation the served projection
// is a fold of. Take it from the View inside Read when it must match a
// cursor.
func (p *Projector) Epoch() string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.served.Epoch
}

// Read calls fn with the served view under the read lock: the projection
// and its epoch belong together. fn must not keep references into it
// after returning.
func (p *Projector) Read(fn func(View)) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	fn(p.served)
}

// Run boots the projection and keeps it live until ctx ends; then it writes
// a final checkpoint. It returns nil after a clean stop.
func (p *Projector) Run(ctx context.Context) error {
	if err := p.start(ctx); err != nil {
		return err
	}
	var wg sync.WaitGroup
	wg.Go(func() { p.checkpointLoop(ctx) })
	wg.Go(func() { p.progressLoop(ctx) })
	wg.Go(func() { p.monitor(ctx) })
	p.follow(ctx)
	wg.Wait()
	return p.Checkpoint()
}

func (p *Projector) markReady() {
	p.readyOnce.Do(func() {
		d := time.Since(p.bootStart)
		p.bootMu.Lock()
		p.boot.Replayed = p.replayed.Load()
		p.boot.DurationMs = d.Milliseconds()
		b := p.boot
		p.bootMu.Unlock()
		p.m.replayDuration.Set(d.Seconds())
		p.log.Info("replay complete; serving", "replayed", b.Replayed, "cursor", p.lastSeen.Load(),
			"duration", d.Round(time.Millisecond), "rebuild", b.Rebuild)
		close(p.ready)
	})
}

// BootInfo returns how the projector booted.
func (p *Projector) BootInfo() Boot {
	p.bootMu.Lock()
	defer p.bootMu.Unlock()
	b := p.boot
	if !p.Ready() {
		b.Replayed = p.replayed.Load()
	}
	return b
}

// ErrNotReady is returned by reads before the boot replay is done.
var ErrNotReady = errors.New("projection not ready: boot replay in progress")
