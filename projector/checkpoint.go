package projector

import (
	"context"
	"fmt"
	"time"
)

// Checkpoint writes what changed in the served projection since the last
// checkpoint, with the cursor and epoch it belongs to, in one transaction.
// Nothing to write is not an error.
func (p *Projector) Checkpoint() error {
	p.cpMu.Lock()
	defer p.cpMu.Unlock()
	p.mu.Lock()
	ch := p.served.TakeChanges()
	epoch := p.served.Epoch
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
		p.served.Requeue(ch)
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
				p.log.Error("checkpoint failed; keeping the previous one", "err", err)
			}
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
			p.log.Info("replaying", "done", done, "total", total, "rate_per_s", int(rate), "eta", eta)
		}
	}
}
