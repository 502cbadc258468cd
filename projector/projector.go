package projector

import (
	"context"
	"errors"
	"fmt"
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
	// StoreAside names a checkpoint file store.Open had to move aside.
	StoreAside string
	Logger     *slog.Logger
	// Registerer receives the projector's metrics; nil registers nothing.
	Registerer prometheus.Registerer
}

// Defaults and bounds of Config.
const (
	DefaultCheckpointInterval = 5 * time.Second
	MaxCheckpointInterval     = 10 * time.Second
	DefaultCheckpointEvents   = 10_000
	DefaultProgressInterval   = 2 * time.Second
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
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Projector owns the projection of one event log.
type Projector struct {
	cfg   Config
	log   *eventlog.Log
	store *store.Store
	lg    *slog.Logger
	m     *metrics

	mu    sync.RWMutex // guards proj
	proj  *projection.Projection
	epoch atomic.Pointer[string] // changes only under mu and cpMu

	followStop atomic.Pointer[context.CancelFunc] // ends the current consumer

	ready     chan struct{}
	readyOnce sync.Once
	bootMu    sync.Mutex
	boot      Boot
	replayed  atomic.Uint64
	bootStart time.Time

	cpMu      sync.Mutex // one checkpoint at a time
	cpCursor  atomic.Uint64
	cpAt      atomic.Pointer[time.Time]
	cpErr     atomic.Pointer[string] // last failure, nil after a success
	cpFails   atomic.Uint64
	sinceCP   atomic.Int64 // events since the last checkpoint
	lastSeen  atomic.Uint64
	streamEnd atomic.Uint64 // last stream sequence known
}

// New returns a projector over an opened log and checkpoint store. Run
// boots it.
func New(log *eventlog.Log, st *store.Store, cfg Config) *Projector {
	cfg.fill()
	p := &Projector{
		cfg:   cfg,
		log:   log,
		store: st,
		lg:    cfg.Logger,
		proj:  projection.New(),
		ready: make(chan struct{}),
	}
	p.setEpoch(log.Epoch())
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

// Epoch is the identity of the stream incarnation being projected.
func (p *Projector) Epoch() string { return *p.epoch.Load() }

func (p *Projector) setEpoch(e string) { p.epoch.Store(&e) }

// Read calls fn with the projection under the read lock. fn must not keep
// references into it after returning.
func (p *Projector) Read(fn func(*projection.Projection)) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	fn(p.proj)
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
	p.follow(ctx)
	wg.Wait()
	return p.Checkpoint()
}

// start restores the checkpoint and decides the replay range.
func (p *Projector) start(ctx context.Context) error {
	p.bootStart = time.Now()
	state, err := p.log.State(ctx)
	if err != nil {
		return err
	}
	proj, reason, cpAt, err := restore(ctx, p.store, p.log, state)
	if err != nil {
		return err
	}
	if reason == "" && p.cfg.StoreAside != "" {
		reason = fmt.Sprintf("%s: bbolt could not open it (moved aside to %s)", RebuildUnreadable, p.cfg.StoreAside)
	}
	if reason != "" {
		p.lg.Warn("checkpoint discarded; rebuilding from the stream", "reason", reason)
	}
	cpCursor := proj.Cursor()
	if state.FirstSeq > cpCursor+1 && state.Messages > 0 || state.Messages == 0 && state.LastSeq > cpCursor {
		// Events after the cursor expired before we saw them.
		skipTo := state.FirstSeq - 1
		if state.Messages == 0 {
			skipTo = state.LastSeq
		}
		if cpCursor > 0 {
			p.lg.Warn("events expired before they were projected", "from", cpCursor+1, "to", skipTo)
		}
		proj.Skip(skipTo)
	}
	p.mu.Lock()
	p.proj = proj
	p.mu.Unlock()
	p.cpCursor.Store(cpCursor)
	p.cpAt.Store(cpAt)
	p.lastSeen.Store(proj.Cursor())
	p.streamEnd.Store(state.LastSeq)
	p.bootMu.Lock()
	p.boot = Boot{CheckpointCursor: cpCursor, ReplayFrom: proj.Cursor() + 1, ReplayTo: state.LastSeq, Rebuild: reason}
	p.bootMu.Unlock()
	p.lg.Info("boot", "checkpoint_cursor", cpCursor, "replay_from", proj.Cursor()+1, "replay_to", state.LastSeq,
		"epoch", p.Epoch(), "rebuild", reason)
	if proj.Cursor() >= state.LastSeq {
		p.markReady()
	}
	return nil
}

// follow runs the single ordered consumer from cursor+1 until ctx ends.
// When the consumer fails or the watchdog stops it, the stream is checked
// (and created again if it is gone) before the consumer is restarted from
// the current cursor.
func (p *Projector) follow(ctx context.Context) {
	for ctx.Err() == nil {
		fctx, stop := context.WithCancel(ctx)
		p.followStop.Store(&stop)
		err := p.log.Follow(fctx, p.lastSeen.Load()+1, p.handle)
		stop()
		if ctx.Err() != nil {
			return
		}
		if fctx.Err() == nil {
			p.lg.Warn("event consumer stopped; restarting", "err", err, "from", p.lastSeen.Load()+1)
		}
		if err := p.resync(ctx); err != nil {
			p.lg.Error("event log unavailable; retrying", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// resync makes sure the stream exists and is the incarnation being
// projected. A new incarnation (deleted and created again) makes the
// projection start over from it.
func (p *Projector) resync(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := p.log.Ensure(ctx); err != nil {
		return err
	}
	state, err := p.log.State(ctx)
	if err != nil {
		return err
	}
	old := p.Epoch()
	if state.Epoch == old {
		return nil
	}
	reason := fmt.Sprintf("%s: the stream was deleted and created again while running (epoch %s, now %s)", RebuildEpoch, old, state.Epoch)
	p.lg.Warn("stream incarnation changed; rebuilding the projection from it", "reason", reason)
	p.cpMu.Lock()
	p.mu.Lock()
	p.proj = fresh()
	p.setEpoch(state.Epoch)
	p.mu.Unlock()
	p.cpMu.Unlock()
	p.lastSeen.Store(0)
	p.streamEnd.Store(state.LastSeq)
	p.bootMu.Lock()
	p.boot.Rebuild = reason
	p.bootMu.Unlock()
	return nil
}

// watch stops the consumer when the stream is gone or is another
// incarnation: an ordered consumer can wait on a deleted stream forever.
func (p *Projector) watch(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	state, err := p.log.State(ctx)
	if err == nil && state.Epoch == p.Epoch() {
		return
	}
	if stop := p.followStop.Load(); stop != nil {
		(*stop)()
	}
}

func (p *Projector) handle(d eventlog.Delivery) error {
	p.mu.Lock()
	out := p.proj.Apply(projection.Message{Seq: d.Seq, Time: d.Time, Payload: d.Payload})
	p.mu.Unlock()
	if out == projection.Stale {
		return nil
	}
	p.lastSeen.Store(d.Seq)
	p.streamEnd.Store(max(p.streamEnd.Load(), d.Seq+d.Pending))
	if out == projection.Malformed {
		p.lg.Warn("malformed event skipped", "seq", d.Seq, "subject", d.Subject)
	}
	if !p.Ready() {
		p.replayed.Add(1)
		if d.Seq >= p.bootTarget() || d.Pending == 0 {
			p.markReady()
		}
	}
	if p.sinceCP.Add(1) >= int64(p.cfg.CheckpointEvents) {
		if err := p.Checkpoint(); err != nil {
			p.lg.Error("checkpoint failed; keeping the previous one", "err", err)
		}
	}
	return nil
}

func (p *Projector) bootTarget() uint64 {
	p.bootMu.Lock()
	defer p.bootMu.Unlock()
	return p.boot.ReplayTo
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
		p.lg.Info("replay complete; serving", "replayed", b.Replayed, "cursor", p.lastSeen.Load(),
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

// Checkpoint writes what changed since the last checkpoint, with the cursor
// it belongs to, in one transaction. Nothing to write is not an error.
func (p *Projector) Checkpoint() error {
	p.cpMu.Lock()
	defer p.cpMu.Unlock()
	p.mu.Lock()
	ch := p.proj.TakeChanges()
	epoch := p.Epoch()
	p.mu.Unlock()
	if ch.Empty() && ch.Meta.Cursor == p.cpCursor.Load() && p.cpAt.Load() != nil {
		return nil
	}
	start := time.Now()
	err := p.store.Save(epoch, ch, start)
	p.m.checkpointSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		p.m.checkpointFailures.Inc()
		p.cpFails.Add(1)
		msg := err.Error()
		p.cpErr.Store(&msg)
		// Retry after the next batch of events or tick, not on every event.
		p.sinceCP.Store(0)
		p.mu.Lock()
		p.proj.Requeue(ch)
		p.mu.Unlock()
		return fmt.Errorf("write checkpoint at cursor %d: %w", ch.Meta.Cursor, err)
	}
	p.sinceCP.Store(0)
	p.cpErr.Store(nil)
	p.cpCursor.Store(ch.Meta.Cursor)
	p.cpAt.Store(&start)
	return nil
}

func (p *Projector) checkpointLoop(ctx context.Context) {
	t := time.NewTicker(p.cfg.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := p.Checkpoint(); err != nil {
				p.lg.Error("checkpoint failed; keeping the previous one", "err", err)
			}
			p.watch(ctx)
		}
	}
}

// progressLoop logs replay progress until the replay is done.
func (p *Projector) progressLoop(ctx context.Context) {
	t := time.NewTicker(p.cfg.ProgressInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.ready:
			return
		case <-t.C:
			b := p.BootInfo()
			total := b.ReplayTo - min(b.ReplayTo, b.ReplayFrom-1)
			done := b.Replayed
			elapsed := time.Since(p.bootStart).Seconds()
			rate := float64(done) / max(elapsed, 1e-9)
			eta := "unknown"
			if rate > 0 && total >= done {
				eta = time.Duration(float64(total-done) / rate * float64(time.Second)).Round(time.Second).String()
			}
			p.lg.Info("replaying", "done", done, "total", total, "rate_per_s", int(rate), "eta", eta)
		}
	}
}

// ErrNotReady is returned by reads before the boot replay is done.
var ErrNotReady = errors.New("projection not ready: boot replay in progress")
