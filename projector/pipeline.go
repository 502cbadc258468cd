package projector

import (
	"context"
	"errors"
	"fmt"
	"time"

	"cellos-allinone/eventlog"
	"cellos-allinone/internal/sleep"
	"cellos-allinone/projection"
)

// The fold runs as a pipeline on two goroutines: the follow goroutine
// reads the stream and decodes each message (the costly part), the apply
// goroutine folds the decoded events into the batch and commits. A queue
// keeps them in stream order; control steps that must happen between two
// events (start a rebuild, swap it in, commit on request) travel through
// the same queue.

// decodeBatch and decodeBytes bound a batch of decoded events: it goes
// once it holds decodeBatch events or decodeBytes of payload (an event
// larger than that goes alone), or as soon as the stream has nothing more
// stored. With the queue's 64 batches, what waits between the two
// goroutines is bounded: 16 MiB of ordinary events, 64 of the largest.
const (
	decodeBatch = 256
	decodeBytes = 256 << 10
)

// commitBytes: a commit is also due once this much payload was applied
// since the last one — the changes it made are held in memory until then,
// and an event may be up to a MiB.
const commitBytes = 16 << 20

// work is one item of the apply queue.
type work struct {
	events      []projection.Decoded
	lastPending uint64    // messages stored after the batch's last one when it was read
	lastStored  time.Time // when JetStream stored the batch's last message
	bytes       int       // payload bytes of its events
	do          func()    // a control step, run on the apply goroutine
	done        chan struct{}
	stop        bool
}

// follow reads the stream until ctx ends, bound to its current
// incarnation. When the incarnation ends (eventlog decides that, in one
// place), the state starts over from the new one: before the boot replay
// is done it replays the new one in place; once serving it rebuilds
// beside the served state, which stays (stale) until the new one has
// caught up. A read that fails otherwise restarts after a pause from the
// last event queued.
func (p *Projector) follow(ctx context.Context) {
	var queued uint64 // the last sequence handed to the apply goroutine
	first := true
	for ctx.Err() == nil {
		inc := p.events.Current()
		var begin func() error // the state starts over from inc's start
		if inc.Epoch != p.followedEpoch() {
			begin = func() error { return p.beginRebuild(ctx, inc) }
		} else if reason, ok := p.repair.take(); ok {
			begin = func() error { return p.beginRepair(ctx, inc, reason) }
		}
		if begin != nil {
			var err error
			if !p.runOnApply(func() { err = begin() }) {
				return
			}
			if err != nil {
				// Nothing of inc is folded into the state it would
				// replace: try again after a pause.
				_ = sleep.For(ctx, time.Second)
				continue
			}
			queued = 0
		} else if first {
			queued = p.lastSeen.Load()
		}
		first = false
		fctx, stopInc := inc.Bind(ctx)
		fctx, stopRepair := p.repair.bind(fctx)
		stop := func() { stopRepair(); stopInc() }
		var dec projection.Decoder
		var buf []projection.Decoded
		var stored time.Time // of the last message read
		var bytes int        // payload in buf
		err := p.events.Follow(fctx, inc, queued+1, func(d eventlog.Delivery) error {
			if buf == nil {
				// Sized by what is waiting: live, one event at a time
				// must not cost a whole batch.
				buf = make([]projection.Decoded, 0, min(decodeBatch, d.Pending+1))
			}
			buf = append(buf, dec.Decode(projection.Message{Seq: d.Seq, Subject: d.Subject, Time: d.Time, Payload: d.Payload}))
			queued, stored = d.Seq, d.Time
			bytes += len(d.Payload)
			p.ahead.read(d.Pending)
			if len(buf) == cap(buf) || d.Pending == 0 || bytes >= decodeBytes {
				if !p.enqueue(work{events: buf, lastPending: d.Pending, lastStored: d.Time, bytes: bytes}) {
					return errApplyStopped
				}
				buf, bytes = nil, 0
			}
			return nil
		})
		stop()
		if len(buf) > 0 && !p.enqueue(work{events: buf, lastPending: 1, lastStored: stored, bytes: bytes}) {
			return
		}
		switch {
		case ctx.Err() != nil, errors.Is(err, errApplyStopped):
			return
		case inc.Ended(), p.repair.pending():
			continue
		}
		p.log.Warn("event consumer stopped; restarting", "err", err, "from", queued+1)
		p.events.Check()
		_ = sleep.For(ctx, time.Second)
	}
}

var errApplyStopped = errors.New("the apply goroutine stopped")

// followedEpoch is the incarnation being folded: the rebuild's while one
// runs, else the served state's.
func (p *Projector) followedEpoch() string {
	if e := p.followed.Load(); e != nil {
		return *e
	}
	return ""
}

// enqueue hands w to the apply goroutine; false once it has stopped.
func (p *Projector) enqueue(w work) bool {
	select {
	case p.work <- w:
		return true
	case <-p.applyDone:
		return false
	}
}

// runOnApply runs fn on the apply goroutine, between two events, and
// waits for it; false when the apply goroutine has stopped.
func (p *Projector) runOnApply(fn func()) bool {
	done := make(chan struct{})
	if !p.enqueue(work{do: fn, done: done}) {
		return false
	}
	select {
	case <-done:
		return true
	case <-p.applyDone:
		return false
	}
}

// applyLoop folds what the queue brings and commits on schedule until it
// gets the stop item. A commit that fails is retried before anything else
// is taken from the queue (stall.go) until stopping is closed; from then
// on the queue is drained to the stop item with single attempts. A state
// it cannot write or read ends it with the error in applyErr.
func (p *Projector) applyLoop(ctx context.Context, stopping <-chan struct{}) {
	defer close(p.applyDone)
	defer func() {
		if r := recover(); r != nil {
			err, ok := r.(error)
			if !ok {
				err = fmt.Errorf("%v", r)
			}
			p.applyErr <- fmt.Errorf("the state file cannot be used: %w", err)
		}
	}()
	t := time.NewTicker(p.cfg.CheckpointInterval)
	defer t.Stop()
	draining := false // stopping: no more retries, the queue is drained
	for {
		if !draining && p.failing.Load() != nil && !p.retryCommit(stopping) {
			draining = true
		}
		select {
		case w := <-p.work:
			switch {
			case w.stop:
				return
			case w.do != nil:
				w.do()
				close(w.done)
			default:
				p.applyGuarded(ctx, w)
				p.commitForReaders()
			}
		case <-t.C:
			p.commitIfDue()
			p.compactIfDue()
		case <-p.waits.asked: // a reader waits for a commit (wait.go)
			p.commitForReaders()
		case <-p.waits.timer.C:
			p.earlyCommitDue()
		}
	}
}

func (p *Projector) applyEvents(ctx context.Context, w work) {
	if p.broken.Load() {
		return // a damaged state: dropped until the repair replaces it
	}
	booting := !p.Ready() && p.building == nil
	var target uint64
	if booting {
		target = p.bootTarget()
	}
	for _, d := range w.events {
		if p.cfg.beforeApply != nil {
			p.cfg.beforeApply()
		}
		out, why := projection.Apply(p.batch, d)
		if out == projection.Stale {
			continue
		}
		p.lastSeen.Store(d.Seq)
		p.uncommitted++
		switch out {
		case projection.Malformed:
			p.log.Warn("malformed event skipped", "seq", d.Seq, "id", d.ID)
		case projection.Rejected:
			p.log.Warn("event rejected: its tenant claim breaks a rule of fold v3 (docs/design.md §3)",
				"seq", d.Seq, "id", d.ID, "rule", string(why), "entity", d.Kind.String()+" "+d.EntityID, "tenant", d.TenantID)
		}
		if booting && d.Seq <= target {
			p.replayed.Add(1)
		}
	}
	p.ahead.applied(w.lastStored)
	p.uncommittedBytes += w.bytes
	switch {
	case p.building != nil:
		// Pending is counted when the message was read, which can be long
		// before it is applied: ask the stream before swapping.
		if w.lastPending == 0 && !p.leftToRead(ctx) {
			p.promote()
		}
	case booting:
		if p.lastSeen.Load() >= target || w.lastPending == 0 {
			p.readyNow()
		}
	}
	if p.uncommitted >= p.commitEvery(booting) || p.uncommittedBytes >= commitBytes {
		p.commitLogged()
	}
}

// liveCommitEvents caps the events of one commit while serving live: a
// commit stalls the fold for its duration, so a smaller one bounds the
// pause (measured at 1 M events: the p99 of a commit during full-speed
// ingest fell from 90 to 58 ms at 3,000 events); a replay or a rebuild
// keeps CheckpointEvents, where fewer, larger commits fold faster.
const liveCommitEvents = 2_000

// commitEvery is how many applied events make a commit due.
func (p *Projector) commitEvery(booting bool) int {
	if booting || p.building != nil {
		return p.cfg.CheckpointEvents
	}
	return min(p.cfg.CheckpointEvents, liveCommitEvents)
}

// caughtUp runs on the apply goroutine when the monitor saw nothing left
// to read: the boot replay is done, or the rebuild has caught up.
func (p *Projector) caughtUp(ctx context.Context) {
	if p.leftToRead(ctx) {
		return
	}
	switch {
	case p.building != nil:
		p.promote()
	case !p.Ready():
		p.readyNow()
	}
}

// readyNow commits what the replay applied, so that the first answer holds
// it; the commit marks the projector ready (commit), this one or, if it
// fails, the next that succeeds.
func (p *Projector) readyNow() {
	p.readyPending = true
	p.commitLogged()
}

func (p *Projector) bootTarget() uint64 {
	p.bootMu.Lock()
	defer p.bootMu.Unlock()
	return p.boot.ReplayTo
}

func (p *Projector) closeBatch() {
	if p.batch != nil {
		p.batch.Close()
	}
	if p.building != nil {
		p.building.store.Close()
		p.building = nil
	}
}
