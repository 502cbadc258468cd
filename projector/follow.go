package projector

import (
	"context"
	"fmt"
	"math"
	"time"

	"cellos-allinone/eventlog"
	"cellos-allinone/projection"

	"cellos-allinone/internal/sleep"
)

// follow runs the single ordered consumer from cursor+1 until ctx ends,
// bound to the stream's current incarnation. When the incarnation ends
// (eventlog decides that, in one place), it starts over from the new one:
// before the boot replay is done it simply replays the new one; once
// serving, it rebuilds beside the served view, which stays (stale) until
// the new one has caught up. A consumer that fails otherwise is restarted
// from the current position after a pause.
func (p *Projector) follow(ctx context.Context) {
	for ctx.Err() == nil {
		inc := p.events.Current()
		if inc.Epoch != p.followedEpoch() {
			p.beginRebuild(ctx, inc)
		}
		fctx, stop := inc.Bind(ctx)
		err := p.events.Follow(fctx, inc, p.lastSeen.Load()+1, p.handle)
		stop()
		switch {
		case ctx.Err() != nil:
			return
		case inc.Ended():
			continue
		}
		p.log.Warn("event consumer stopped; restarting", "err", err, "from", p.lastSeen.Load()+1)
		p.events.Check()
		_ = sleep.For(ctx, time.Second)
	}
}

// followedEpoch is the incarnation the consumer feeds: the one being
// rebuilt, else the served one.
func (p *Projector) followedEpoch() string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.building != nil {
		return p.building.Epoch
	}
	return p.served.Epoch
}

// beginRebuild starts a fresh projection of incarnation inc.
func (p *Projector) beginRebuild(ctx context.Context, inc *eventlog.Incarnation) {
	old := p.followedEpoch()
	reason := fmt.Sprintf("%s: the stream was deleted and created again while running (epoch %s, now %s)", RebuildEpoch, old, inc.Epoch)
	next := View{Projection: fresh(), Epoch: inc.Epoch}
	p.lastSeen.Store(0)
	if !p.Ready() {
		// Nothing is served yet: replay the new incarnation instead.
		var target uint64 = math.MaxUint64
		if st, err := p.events.State(ctx); err == nil {
			target = st.LastSeq
		}
		// Under cpMu, like promote: a checkpoint in flight must not hand
		// the old incarnation's entities back to the new projection.
		p.cpMu.Lock()
		p.mu.Lock()
		p.served = next
		p.mu.Unlock()
		p.cpMu.Unlock()
		p.bootMu.Lock()
		p.boot.Rebuild, p.boot.CheckpointCursor, p.boot.ReplayFrom, p.boot.ReplayTo = reason, 0, 1, target
		p.bootMu.Unlock()
		p.log.Warn("stream incarnation changed during the boot replay; replaying the new one", "reason", reason)
		return
	}
	now := time.Now()
	p.mu.Lock()
	p.building = &rebuild{View: next, Reason: reason, Started: now}
	p.rebuilding.Store(true)
	p.lastRebuild = &RebuildStatus{Reason: reason, Epoch: inc.Epoch, StartedAt: now}
	p.mu.Unlock()
	p.log.Warn("stream incarnation changed; rebuilding from it while the old view stays served (stale)", "reason", reason)
}

// promote makes the rebuilt projection b the served one, in one step:
// from then on answers carry the new epoch with the new cursor.
func (p *Projector) promote(b *rebuild) {
	p.cpMu.Lock()
	defer p.cpMu.Unlock()
	p.mu.Lock()
	if p.building != b {
		p.mu.Unlock()
		return
	}
	p.served, p.building = b.View, nil
	p.rebuilding.Store(false)
	now := time.Now()
	p.lastRebuild.FinishedAt = &now
	cursor := b.Cursor()
	p.mu.Unlock()
	p.log.Info("rebuild complete; serving the new incarnation", "epoch", b.Epoch, "cursor", cursor,
		"duration", now.Sub(b.Started).Round(time.Millisecond))
}

func (p *Projector) handle(d eventlog.Delivery) error {
	if p.cfg.beforeApply != nil {
		p.cfg.beforeApply()
	}
	msg := projection.Message{Seq: d.Seq, Time: d.Time, Payload: d.Payload}
	p.mu.Lock()
	b := p.building
	target := p.served.Projection
	if b != nil {
		target = b.Projection
	}
	out := target.Apply(msg)
	p.mu.Unlock()
	if out == projection.Stale {
		return nil
	}
	p.lastSeen.Store(d.Seq)
	if out == projection.Malformed {
		p.log.Warn("malformed event skipped", "seq", d.Seq, "subject", d.Subject)
	}
	if b != nil {
		// Pending is counted when the message was delivered, which can be
		// long before it is applied: ask the stream before swapping.
		if d.Pending == 0 && !p.leftToRead(context.Background()) {
			p.promote(b)
		}
		return nil
	}
	if !p.Ready() {
		p.replayed.Add(1)
		if d.Seq >= p.bootTarget() || d.Pending == 0 {
			p.markReady()
		}
	}
	if p.sinceCP.Add(1) >= int64(p.cfg.CheckpointEvents) {
		if err := p.Checkpoint(); err != nil {
			p.log.Error("checkpoint failed; keeping the previous one", "err", err)
		}
	}
	return nil
}

func (p *Projector) bootTarget() uint64 {
	p.bootMu.Lock()
	defer p.bootMu.Unlock()
	return p.boot.ReplayTo
}
