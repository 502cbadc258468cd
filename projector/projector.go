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
	// CheckpointInterval: what was applied is committed to the state file
	// this often (default 200 ms; at most 10 s). Answers are read from the
	// last commit, so this is also how far they may trail the applied
	// events.
	CheckpointInterval time.Duration
	// CheckpointEvents: a commit is also made once this many events were
	// applied since the last one (default 10,000): a bound on the
	// uncommitted changes held in memory during a replay or a rebuild.
	// While serving live a commit holds at most 2,000 events (or this,
	// if smaller): see liveCommitEvents.
	CheckpointEvents int
	// ProgressInterval: during replay a progress line is logged this often
	// (default 2 s).
	ProgressInterval time.Duration
	// LagWarnAfter: a warning is logged when the oldest event not yet
	// applied has waited this long (default 5 s).
	LagWarnAfter time.Duration
	// CompactFreeRatio and CompactMinFree: the state file is compacted
	// (compact.go) when its free pages are more than this fraction of its
	// pages (default 0.5) and more than this many bytes (default 64 MiB);
	// a negative CompactMinFree never compacts.
	CompactFreeRatio float64
	CompactMinFree   int64
	// ScrubInterval: the served state is scrubbed (scrub.go) this often
	// (default 24 h), and once served after an unclean start; negative:
	// never. ScrubBudget is the share of one core a pass uses (default
	// 0.05).
	ScrubInterval time.Duration
	ScrubBudget   float64
	// StoreAside names a checkpoint file store.Open had to move aside.
	StoreAside string
	Logger     *slog.Logger
	// Registerer receives the projector's metrics; nil registers nothing.
	Registerer prometheus.Registerer

	// beforeApply, when set (by tests), runs before each event is applied:
	// a way to make the projector slow without holding its locks.
	beforeApply func()
	// beforeSwap, when set (by tests), runs between a compaction's copy
	// and its swap.
	beforeSwap func()
	// beforeHash, when set (by tests), runs as a state hash starts,
	// before it reads the state, with the hash's context.
	beforeHash func(context.Context)
	// hashClock, when set (by tests), is the clock of the state hash's
	// cooldown (hash.go).
	hashClock func() time.Time
	// compactSpacing: at most one compaction while running per (default
	// 10 minutes; tests shorten it).
	compactSpacing time.Duration
	// scrubStepKeys bounds a scrub step (store.DefaultScrubStepKeys;
	// tests make steps of a few keys).
	scrubStepKeys int
	// scrubSkipCheck makes every pass report bbolt's check as not ended
	// (store.ScrubOptions.SkipCheck): a finding every state repeats.
	scrubSkipCheck bool
}

// Defaults and bounds of Config.
const (
	DefaultCheckpointInterval = 200 * time.Millisecond
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
	if c.CompactFreeRatio <= 0 {
		c.CompactFreeRatio = DefaultCompactFreeRatio
	}
	if c.CompactMinFree == 0 {
		c.CompactMinFree = DefaultCompactMinFree
	}
	if c.ScrubInterval == 0 {
		c.ScrubInterval = DefaultScrubInterval
	}
	if c.ScrubBudget <= 0 {
		c.ScrubBudget = DefaultScrubBudget
	}
	if c.compactSpacing <= 0 {
		c.compactSpacing = defaultCompactSpacing
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// View is what one answer reads: one commit of the state, with the epoch
// of the stream incarnation it is a fold of — taken together.
type View struct {
	projection.Reader
	Epoch string
}

// Projector owns the state of one event log.
type Projector struct {
	cfg    Config
	events *eventlog.Stream
	log    *slog.Logger
	m      *metrics

	// mu guards which store is served: readers hold it for one view; a
	// rebuilt state takes the served one's place under it.
	mu     sync.RWMutex
	served *store.Store

	// The write side belongs to the apply goroutine (pipeline.go): the
	// batch being folded into (the served store's, or a rebuild's) and
	// the rebuild under way.
	batch       *store.Batch
	building    *rebuild
	rebuilding  atomic.Bool
	followed    atomic.Pointer[string] // the epoch of the batch being folded
	rebuildMu   sync.Mutex             // guards lastRebuild
	lastRebuild *RebuildStatus

	hashing hashing // the state hash (hash.go)

	work           chan work     // decoded events and control, in stream order
	applyDone      chan struct{} // closed when the apply goroutine has stopped
	applyErr       chan error    // why it stopped early
	caughtUpQueued atomic.Bool
	repair         repairSignal // a rebuild asked for by damage met (repair.go)
	broken         atomic.Bool  // the batch met damage: set and cleared on the apply goroutine
	uncommitted    int          // events applied since the last commit; apply goroutine
	// uncommittedBytes is their payload; apply goroutine.
	uncommittedBytes int
	readyPending     bool // the replay is done, ready once a commit holds it; apply goroutine

	ready     chan struct{}
	readyOnce sync.Once
	bootMu    sync.Mutex
	boot      Boot
	replayed  atomic.Uint64
	bootStart time.Time

	cpCursor committed   // the cursor of the last commit; wakes ReadFrom (wait.go)
	waits    readerWaits // what readers waiting for a commit ask (wait.go)
	cpAt     atomic.Pointer[time.Time]
	cpErr    atomic.Pointer[string] // last failure, nil after a success
	cpFails  atomic.Uint64
	failing  atomic.Pointer[CommitFailure] // a commit being retried (stall.go); written on the apply goroutine
	lastSeen atomic.Uint64                 // last sequence applied to the batch being followed
	floor    atomic.Pointer[floorMark]     // the stream's first sequence, as last read (prune.go)
	ahead    readAhead                     // what the follow side last read (monitor.go)
	lag      lagState

	compacted compaction // compact.go
	integ     integrity  // scrub.go
}

// New returns a projector over an opened log and state file. Run boots
// it.
func New(events *eventlog.Stream, st *store.Store, cfg Config) *Projector {
	cfg.fill()
	p := &Projector{
		cfg:       cfg,
		events:    events,
		log:       cfg.Logger,
		served:    st,
		ready:     make(chan struct{}),
		work:      make(chan work, 64),
		applyDone: make(chan struct{}),
		applyErr:  make(chan error, 1),
		waits:     newReaderWaits(),
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

// Epoch is the identity of the stream incarnation the served state is a
// fold of. Take it from the View inside Read when it must match a cursor.
func (p *Projector) Epoch() string {
	var e string
	_ = p.Read(func(v View) { e = v.Epoch })
	return e
}

// Read calls fn with one committed state of the served store and its
// epoch. fn must not keep the view after returning. A damaged record read
// on the way is the error.
func (p *Projector) Read(fn func(View)) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	err := p.served.View(func(v *store.View) error {
		fn(View{Reader: v, Epoch: v.Epoch()})
		return nil
	})
	if errors.Is(err, store.ErrDamaged) {
		// Asked under the lock: a repair that replaced the file meanwhile
		// would otherwise be asked for again.
		return p.readDamaged(err)
	}
	return err
}

// Run boots the state and keeps it live until ctx ends; then it commits
// what was applied. It returns nil after a clean stop.
func (p *Projector) Run(ctx context.Context) error {
	p.openRun()
	// A state hash under way stops with ctx and is waited for: the caller
	// closes the state file once Run returns.
	p.hashing.open(ctx)
	defer p.hashing.close()
	if err := p.start(ctx); err != nil {
		return err
	}
	p.markOpen()
	applyCtx, stopApply := context.WithCancel(context.Background())
	go p.applyLoop(applyCtx, ctx.Done())
	var wg sync.WaitGroup
	wg.Go(func() { p.progressLoop(ctx) })
	wg.Go(func() { p.monitor(ctx) })
	wg.Go(func() { p.scrubLoop(ctx) })
	followCtx, stopFollow := context.WithCancel(ctx)
	wg.Go(func() {
		// The apply goroutine failing (a state it cannot write or read)
		// ends the follow too.
		select {
		case <-p.applyDone:
			stopFollow()
		case <-followCtx.Done():
		}
	})
	p.follow(followCtx)
	stopFollow()
	// Everything followed is in the queue: let the apply goroutine take
	// it, then stop it and commit on this goroutine.
	p.enqueue(work{stop: true})
	<-p.applyDone
	stopApply()
	wg.Wait()
	select {
	case err := <-p.applyErr:
		p.closeBatch()
		if errors.Is(err, store.ErrDamaged) {
			return p.damaged(err)
		}
		// Not known to be damaged (closed, an I/O error): kept as it is.
		return err
	default:
	}
	var err error
	if !p.broken.Load() {
		err = p.commit()
	}
	p.closeBatch()
	if err == nil {
		p.closeRun()
	}
	return err
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
