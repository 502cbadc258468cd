package projector

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"time"

	"cellos-allinone/eventlog"
	"cellos-allinone/store"
)

// rebuild is the state of a new stream incarnation being folded into a
// file of its own while the old state is still served.
type rebuild struct {
	store     *store.Store
	epoch     string
	reason    string
	started   time.Time
	committed uint64    // the cursor its file holds
	keepAside bool      // keep the replaced file (a repair of a damaged one)
	notBefore time.Time // the next swap attempt after a failed one
}

// rebuildSuffix names the file a rebuild writes beside the served one.
const rebuildSuffix = ".rebuild"

// beginRebuild starts a fresh state of incarnation inc; it runs on the
// apply goroutine. On an error nothing of inc may be folded: the caller
// tries again later.
func (p *Projector) beginRebuild(ctx context.Context, inc *eventlog.Incarnation) error {
	old := p.followedEpoch()
	reason := fmt.Sprintf("%s: the stream was deleted and created again while running (epoch %s, now %s)", RebuildEpoch, old, inc.Epoch)
	// A repair under way still replaces a damaged file: keep it aside.
	keepAside := p.building != nil && p.building.keepAside
	if err := p.startOver(ctx, inc, reason, keepAside); err != nil {
		p.log.Error("cannot start the state of the new incarnation over; trying again", "err", err)
		return err
	}
	epoch := inc.Epoch
	p.followed.Store(&epoch)
	p.lastSeen.Store(0)
	return nil
}

// beginRepair starts the state of incarnation inc over because the served
// one (or a rebuild's) met a damaged record (repair.go); it runs on the
// apply goroutine. On an error the repair stays asked for.
func (p *Projector) beginRepair(ctx context.Context, inc *eventlog.Incarnation, reason string) error {
	if err := p.startOver(ctx, inc, reason, true); err != nil {
		p.log.Error("cannot start the repair of the state; trying again", "err", err)
		p.repair.again()
		return err
	}
	epoch := inc.Epoch
	p.followed.Store(&epoch)
	p.lastSeen.Store(0)
	return nil
}

// startOver replaces the batch by an empty state of inc. keepAside keeps
// the file it replaces (damaged) beside it as .bad-<time>.
func (p *Projector) startOver(ctx context.Context, inc *eventlog.Incarnation, reason string, keepAside bool) error {
	if !p.Ready() {
		// Nothing is served yet: replay the new incarnation in place.
		var target uint64 = math.MaxUint64
		if st, err := p.events.State(ctx); err == nil {
			target = st.LastSeq
		}
		p.batch.Close()
		p.mu.Lock()
		err := p.served.Renew(inc.Epoch, keepAside)
		p.mu.Unlock()
		if err != nil {
			return err
		}
		if p.batch, err = p.served.Batch(); err != nil {
			return err
		}
		p.broken.Store(false)
		p.readyPending = false
		p.repair.done()
		p.replayed.Store(0)
		p.bootMu.Lock()
		p.boot.Rebuild, p.boot.CheckpointCursor, p.boot.ReplayFrom, p.boot.ReplayTo = reason, 0, 1, target
		p.bootMu.Unlock()
		p.log.Warn("state started over during the boot replay; replaying the stream from its start", "reason", reason)
		return nil
	}
	// Serving: what was applied is committed (unless the batch is the
	// damaged one), then the stream is folded into a file beside the
	// served one.
	if p.building != nil {
		// A rebuild of an incarnation that ended in turn (or whose own
		// file met damage): drop it and go back to the served state, so
		// that a failure below leaves what is served and followed as one.
		if err := p.abandonRebuild(); err != nil {
			return err
		}
	} else if !p.broken.Load() {
		// What was applied of the old incarnation is committed first; a
		// failure is retried before anything else (stall.go), and the
		// follow goroutine asks for the rebuild again.
		if err := p.commit(); err != nil {
			return err
		}
	}
	path := p.served.Path() + rebuildSuffix
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	st, _, err := store.Open(path)
	if err != nil {
		return err
	}
	if err := st.Reset(inc.Epoch); err != nil {
		st.Close()
		return err
	}
	b, err := st.Batch()
	if err != nil {
		st.Close()
		return err
	}
	p.batch.Close()
	p.batch = b
	p.broken.Store(false)
	now := time.Now()
	p.building = &rebuild{store: st, epoch: inc.Epoch, reason: reason, started: now, keepAside: keepAside}
	p.rebuilding.Store(true)
	p.rebuildMu.Lock()
	p.lastRebuild = &RebuildStatus{Reason: reason, Epoch: inc.Epoch, StartedAt: now}
	p.rebuildMu.Unlock()
	p.log.Warn("rebuilding the state from the stream while the old one stays served (stale)", "reason", reason)
	return nil
}

// abandonRebuild closes and removes the rebuild under way and folds the
// served state's incarnation again.
func (p *Projector) abandonRebuild() error {
	b := p.building
	p.batch.Close()
	b.store.Close()
	p.building = nil
	p.rebuilding.Store(false)
	_ = os.Remove(b.store.Path())
	batch, err := p.served.Batch()
	if err != nil {
		// No batch to fold into: events are dropped until a rebuild
		// starts (broken), as for damage.
		p.broken.Store(true)
		return err
	}
	p.batch = batch
	// The served state of a repair is the damaged one: it stays broken
	// until the repair's next start replaces it.
	p.broken.Store(b.keepAside)
	epoch := batch.Epoch()
	p.followed.Store(&epoch)
	p.lastSeen.Store(batch.Meta().Cursor)
	return nil
}

// promote makes the rebuilt state the served one, in one step: from then
// on answers carry the new epoch with the new cursor. It runs on the apply
// goroutine.
func (p *Projector) promote() {
	b := p.building
	if time.Now().Before(b.notBefore) {
		return
	}
	if err := p.commit(); err != nil {
		p.log.Error("cannot commit the rebuilt state; it stays beside the served one", "err", err)
		return
	}
	p.batch.Close()
	p.mu.Lock()
	aside, err := store.Replace(p.served, b.store, b.keepAside)
	now := time.Now()
	if err == nil {
		// With the swap, under the lock: no answer of the new state
		// says stale.
		p.rebuilding.Store(false)
		p.repair.done()
		p.rebuildMu.Lock()
		p.lastRebuild.FinishedAt = &now
		p.rebuildMu.Unlock()
	}
	p.mu.Unlock()
	if errors.Is(err, store.ErrNotReplaced) {
		// The served state is as it was and the rebuilt one is open
		// again: serve the old one (stale) and try the swap again when
		// the rebuild is next caught up.
		p.log.Error("cannot swap the rebuilt state in; trying again", "err", err)
		b.notBefore = time.Now().Add(time.Second)
		if p.batch, err = b.store.Batch(); err != nil {
			panic(fmt.Errorf("reopen the rebuilt state: %w", err))
		}
		return
	}
	if err != nil {
		// The served file is gone or unusable: nothing more can be
		// served from it.
		panic(fmt.Errorf("swap the rebuilt state in: %w", err))
	}
	if p.batch, err = p.served.Batch(); err != nil {
		panic(fmt.Errorf("reopen the state: %w", err))
	}
	p.building = nil
	if aside != "" {
		p.log.Warn("the damaged state file is kept aside", "path", aside)
	}
	cursor := p.batch.Meta().Cursor
	p.cpCursor.Store(cursor)
	p.cpAt.Store(&now)
	p.log.Info("rebuild complete; serving the rebuilt state", "epoch", b.epoch, "cursor", cursor,
		"duration", now.Sub(b.started).Round(time.Millisecond))
}
