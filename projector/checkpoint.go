package projector

import (
	"context"
	"errors"
	"fmt"
	"time"

	"cellos-allinone/store"
)

// commit writes what the batch changed, with its position, in one
// transaction: a checkpoint. The commits of a rebuild write its own file
// and leave the served checkpoint's figures alone.
func (p *Projector) commit() error {
	if p.broken.Load() {
		return errors.New("the state has a damaged record; no commit until it is rebuilt")
	}
	p.tellFloor()
	start := time.Now()
	err := p.batch.Commit(start)
	p.m.checkpointSeconds.Observe(time.Since(start).Seconds())
	p.uncommitted, p.uncommittedBytes = 0, 0
	if err != nil {
		p.m.checkpointFailures.Inc()
		p.cpFails.Add(1)
		msg := err.Error()
		p.cpErr.Store(&msg)
		err = fmt.Errorf("write checkpoint at cursor %d: %w", p.batch.Meta().Cursor, err)
		if errors.Is(err, store.ErrDamaged) {
			p.failing.Store(nil)
			p.applyDamaged(err)
		} else {
			// Retried, before anything else, by the apply goroutine
			// (stall.go).
			p.commitFailed(err)
		}
		return err
	}
	p.cpErr.Store(nil)
	p.commitSucceeded()
	if p.building != nil {
		p.building.committed = p.batch.Meta().Cursor
	} else {
		p.cpCursor.Store(p.batch.Meta().Cursor)
		p.cpAt.Store(&start)
		if p.readyPending {
			// The first answer holds what the replay applied.
			p.readyPending = false
			p.markReady()
		}
	}
	return nil
}

// commitLogged commits. A failure is logged by commitFailed and retried,
// before anything else, by the apply goroutine (stall.go); the changes
// stay pending and the file keeps its last commit.
func (p *Projector) commitLogged() {
	_ = p.commit()
}

// commitIfDue commits on the interval when anything changed, the cursor
// moved, or the floor moved past what the retention rule removes.
func (p *Projector) commitIfDue() {
	if p.broken.Load() || p.batch.Pending() == 0 && p.batch.Meta().Cursor == p.committedCursor() && !p.readyPending && !p.pruneDue() {
		return
	}
	p.commitLogged()
}

// committedCursor is the cursor the batch's file holds.
func (p *Projector) committedCursor() uint64 {
	if p.building != nil {
		return p.building.committed
	}
	return p.cpCursor.Load()
}

// Checkpoint commits what was applied now (on the apply goroutine while
// the projector runs). Nothing to write is not an error. While a commit
// keeps failing it returns at once with that failure.
func (p *Projector) Checkpoint() error {
	if f := p.failing.Load(); f != nil {
		return f.err()
	}
	var err error
	if !p.runOnApply(func() { err = p.commit() }) {
		return errors.New("the projector is not running")
	}
	return err
}

// damaged handles the apply goroutine's end on a state file found damaged
// where it could not be repaired online (repair.go): the file is moved
// aside, so that the next start rebuilds it instead of failing on it
// again.
func (p *Projector) damaged(err error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	aside, qerr := p.served.Quarantine()
	if qerr != nil {
		return fmt.Errorf("%w; moving it aside failed: %v", err, qerr)
	}
	p.log.Error("state file damaged; moved aside, the next start rebuilds it", "err", err, "aside", aside)
	return fmt.Errorf("%w (moved aside to %s)", err, aside)
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
			p.log.Info("replaying", "done", done, "total", total, "rate_per_s", int(rate), "eta", eta)
		}
	}
}
