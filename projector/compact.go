package projector

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"cellos-allinone/store"
)

// Compaction gives the file system back the pages bbolt keeps free (an
// entity deleted, pages copied on write): it is wanted when the free pages
// take more than CompactMinFree bytes and more than CompactFreeRatio of the
// file's pages. It is tried at boot, before the replay (the boot waits for
// it; nothing is served yet), and while running on the apply goroutine
// right after a commit, with nothing pending, at most once every
// compactSpacing.
//
// The copy (store.Compact) reads the served file, which is not written
// meanwhile: the fold pauses — the stream keeps what comes, the consumer
// reads nothing more — while reads go on from the served file. The copy
// then takes the served file's place (store.SwapIn) by a rename under the
// served lock: readers wait for the reads in flight and that rename only,
// and since the copy holds the very commit the old file held, every answer
// is of one commit, before the swap as after it. A crash before the rename
// is durable leaves the served file as it was (the copy is removed at the
// next boot); after it, the copy is the state file.

// Defaults of Config's compaction thresholds.
const (
	DefaultCompactFreeRatio = 0.5
	DefaultCompactMinFree   = 64 << 20
	// compactSpacing: a compaction while running (done or not) is
	// followed by none for this long.
	defaultCompactSpacing = 10 * time.Minute
)

// Compaction triggers (CompactionStatus.Trigger).
const (
	CompactAtBoot = "boot"
	CompactOnline = "online"
)

// StateFileStatus is the state file in /v1/status: its size, what of it
// is live and free, and its compactions by this process.
type StateFileStatus struct {
	store.FileStats
	// Compactions counts the compactions swapped in since start.
	Compactions uint64 `json:"compactions"`
	// CompactingSince is when the compaction under way began (the fold
	// is paused until it ends); null when none is.
	CompactingSince *time.Time `json:"compactingSince"`
	// LastCompaction is the latest compaction tried; null when none was.
	LastCompaction *CompactionStatus `json:"lastCompaction"`
}

// CompactionStatus is one compaction.
type CompactionStatus struct {
	// Trigger is CompactAtBoot or CompactOnline.
	Trigger string    `json:"trigger"`
	At      time.Time `json:"at"`
	// DurationMs is how long it took, copy and swap: the fold paused
	// that long (at boot, the replay waited); reads went on.
	DurationMs int64 `json:"durationMs"`
	// SwapMs is how long new reads could wait for the swap: the reads in
	// flight finishing, then the rename.
	SwapMs      float64 `json:"swapMs"`
	BytesBefore int64   `json:"bytesBefore"`
	BytesAfter  int64   `json:"bytesAfter"`
	// FreeBytesBefore is what the free pages took before it.
	FreeBytesBefore int64 `json:"freeBytesBefore"`
	// Error is why the compaction was given up ("" when it was swapped
	// in); the served file is then as it was.
	Error string `json:"error"`

	swapHeld time.Duration // of SwapMs, the rename: the lock held
}

// compaction is what the projector knows of its compactions.
type compaction struct {
	since     atomic.Pointer[time.Time] // the one under way
	mu        sync.Mutex
	done      uint64
	last      *CompactionStatus
	notBefore time.Time // the next online one; apply goroutine only
}

func (c *compaction) status() StateFileStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := StateFileStatus{Compactions: c.done, CompactingSince: c.since.Load()}
	if c.last != nil {
		l := *c.last
		s.LastCompaction = &l
	}
	return s
}

// fileStats reads how the served file's pages are used.
func (p *Projector) fileStats() (store.FileStats, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.served.FileStats()
}

// compactWanted reports whether the served file's free pages exceed the
// thresholds. It runs on the apply goroutine (or before it starts), which
// alone replaces the served file.
func (p *Projector) compactWanted() (store.FileStats, bool) {
	if p.cfg.CompactMinFree < 0 {
		return store.FileStats{}, false
	}
	fs, err := p.served.FileStats()
	if err != nil {
		return fs, false
	}
	pages := fs.LiveBytes + fs.FreeBytes
	return fs, fs.FreeBytes > p.cfg.CompactMinFree && float64(fs.FreeBytes) > p.cfg.CompactFreeRatio*float64(pages)
}

// compactAtBoot removes what a compaction cut short left beside the state
// file and compacts it before the replay when that is wanted.
func (p *Projector) compactAtBoot() {
	if err := store.RemoveLeftovers(p.served.Path()); err != nil {
		p.log.Warn("cannot remove what a compaction left beside the state file", "err", err)
	}
	if fs, ok := p.compactWanted(); ok {
		p.compact(CompactAtBoot, fs)
	}
}

// compactIfDue compacts the served file while running when it is wanted:
// right after a commit of the served state (nothing pending), with
// nothing failing or being rebuilt. It runs on the apply goroutine.
func (p *Projector) compactIfDue() {
	if p.cfg.CompactMinFree < 0 || !p.Ready() || p.building != nil || p.broken.Load() || p.failing.Load() != nil ||
		p.repair.active() || p.readyPending || p.batch.Pending() > 0 || p.batch.Meta().Cursor != p.cpCursor.Load() ||
		time.Now().Before(p.compacted.notBefore) {
		return
	}
	if fs, ok := p.compactWanted(); ok {
		p.compacted.notBefore = time.Now().Add(p.cfg.compactSpacing)
		p.compact(CompactOnline, fs)
	}
}

// swapLock is the served lock as store.SwapIn takes it, timed: from the
// moment it is asked for (new reads wait from then on) to its release.
type swapLock struct {
	mu          *sync.RWMutex
	asked, got  time.Time
	total, held time.Duration
}

func (l *swapLock) Lock() {
	l.asked = time.Now()
	l.mu.Lock()
	l.got = time.Now()
}

func (l *swapLock) Unlock() {
	now := time.Now()
	l.total, l.held = now.Sub(l.asked), now.Sub(l.got)
	l.mu.Unlock()
}

// compact copies the served file and swaps the copy in. A failure before
// the swap leaves the served file as it was and is reported; damage met
// on the way asks for the repair.
func (p *Projector) compact(trigger string, before store.FileStats) {
	start := time.Now()
	p.compacted.since.Store(&start)
	defer p.compacted.since.Store(nil)
	rec := CompactionStatus{Trigger: trigger, At: start, BytesBefore: before.FileBytes, FreeBytesBefore: before.FreeBytes}
	p.log.Info("compacting the state file; the fold pauses, reads go on", "trigger", trigger, "file_bytes", before.FileBytes,
		"live_bytes", before.LiveBytes, "free_bytes", before.FreeBytes)
	c, err := p.served.Compact()
	if err == nil && p.cfg.beforeSwap != nil {
		p.cfg.beforeSwap()
	}
	if err == nil {
		if p.batch != nil {
			p.batch.Release() // closing the old file waits for it
		}
		lock := &swapLock{mu: &p.mu}
		err = p.served.SwapIn(c, lock)
		rec.SwapMs, rec.swapHeld = float64(lock.total.Microseconds())/1e3, lock.held
		switch {
		case errors.Is(err, store.ErrNotReplaced):
			c.Close()
			os.Remove(c.Path())
		case err != nil:
			// After the rename: the compacted file is served, and holds
			// what the old one held; only its directory's sync or the
			// old file's close failed.
			p.log.Warn("compacted state file swapped in, but", "err", err)
			err = nil
		}
	}
	rec.DurationMs = time.Since(start).Milliseconds()
	rec.BytesAfter = rec.BytesBefore
	if err == nil {
		if after, serr := p.served.FileStats(); serr == nil {
			rec.BytesAfter = after.FileBytes
		}
		p.m.compactions.WithLabelValues("done").Inc()
		p.m.compactedBytes.Add(float64(max(0, rec.BytesBefore-rec.BytesAfter)))
		p.m.compactDuration.Set(float64(rec.DurationMs) / 1e3)
		p.m.compactLast.Set(float64(start.UnixNano()) / 1e9)
		p.log.Info("state file compacted", "trigger", trigger, "bytes_before", rec.BytesBefore, "bytes_after", rec.BytesAfter,
			"duration", time.Duration(rec.DurationMs)*time.Millisecond, "swap_ms", rec.SwapMs, "rename", rec.swapHeld)
	} else {
		rec.Error = err.Error()
		p.m.compactions.WithLabelValues("failed").Inc()
		p.log.Warn("state file not compacted; it is served as it was", "trigger", trigger, "err", err)
		if errors.Is(err, store.ErrDamaged) {
			_ = p.readDamaged(err)
		}
	}
	p.compacted.mu.Lock()
	if err == nil {
		p.compacted.done++
	}
	p.compacted.last = &rec
	p.compacted.mu.Unlock()
}
