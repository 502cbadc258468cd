package projector

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// monitorInterval is how often the monitor asks whether anything is left
// to read; lag is measured every lagInterval.
const (
	monitorInterval = 250 * time.Millisecond
	lagInterval     = time.Second
	// caughtUpAge: once the oldest event not yet applied is younger than
	// this (or none is left), a projector that was behind has caught up.
	caughtUpAge = time.Second
)

// lagState is the latest lag measurement.
type lagState struct {
	mu         sync.Mutex
	events     uint64
	seconds    float64
	streamLast uint64
	// The stream's size and byte cap (0: none) at the last measurement.
	streamBytes, streamMaxBytes uint64
	warned                      bool
}

func (l *lagState) get() (events uint64, seconds float64, streamLast uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.events, l.seconds, l.streamLast
}

func (l *lagState) size() (bytes, maxBytes uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.streamBytes, l.streamMaxBytes
}

// monitor watches what the consumer cannot tell: that nothing is left to
// read (the end of the boot replay when the events after the checkpoint
// were deleted, the end of a rebuild), and how far behind the projector
// is. Readiness comes from "nothing left to read", never from comparing
// the cursor with a last sequence that deleted messages keep above it.
func (p *Projector) monitor(ctx context.Context) {
	t := time.NewTicker(monitorInterval)
	defer t.Stop()
	var sinceLag time.Duration
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.promoteOrReadyIfDone(ctx)
		if sinceLag += monitorInterval; sinceLag >= lagInterval {
			sinceLag = 0
			p.measureLag(ctx)
		}
	}
}

// promoteOrReadyIfDone asks the apply goroutine to mark the boot replay
// done, or to swap a rebuilt state in, when the stream holds nothing after
// what was applied (one request at a time).
func (p *Projector) promoteOrReadyIfDone(ctx context.Context) {
	if !p.rebuilding.Load() && p.Ready() {
		return
	}
	if p.leftToRead(ctx) || !p.caughtUpQueued.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer p.caughtUpQueued.Store(false)
		p.runOnApply(func() { p.caughtUp(ctx) })
	}()
}

// readAhead is what the follow side last saw, so that the monitor and
// /v1/status need not ask JetStream while the consumer plainly has more
// to read: a message get at the cursor loads (and caches for seconds) a
// whole message block the consumer passed long ago — measured at 1 M
// events, such gets held 128 MB of blocks during a rebuild.
type readAhead struct {
	pending atomic.Uint64 // messages stored after the last one read, as JetStream said
	readAt  atomic.Int64  // when it was read, unix nanoseconds
	// appliedStored is when JetStream stored the last message applied
	// (unix nanoseconds): the age of the oldest one not yet applied is at
	// most its age.
	appliedStored atomic.Int64
}

func (r *readAhead) read(pending uint64) {
	r.pending.Store(pending)
	r.readAt.Store(time.Now().UnixNano())
}

func (r *readAhead) applied(stored time.Time) {
	if !stored.IsZero() {
		r.appliedStored.Store(stored.UnixNano())
	}
}

// far reports whether the consumer, a moment ago, was told that more
// messages are stored after what it read: then something is left to read,
// without asking. (A message deleted meanwhile ends it being told so; a
// second later the monitor asks again.)
func (r *readAhead) far() bool {
	return r.pending.Load() > 0 && time.Since(time.Unix(0, r.readAt.Load())) < time.Second
}

// oldestUnapplied reports whether the stream holds a message after cursor,
// and how long ago the first of them was stored. While the consumer reads
// far ahead (a replay, a rebuild, a burst) it answers without a message
// get: yes, with the age of the last applied message (an upper bound).
func (p *Projector) oldestUnapplied(ctx context.Context, cursor uint64) (age time.Duration, found bool) {
	if p.ahead.far() {
		if ns := p.ahead.appliedStored.Load(); ns != 0 {
			age = time.Since(time.Unix(0, ns))
		}
		return max(0, age), true
	}
	msg, found, err := p.events.NextAfter(ctx, cursor)
	if err != nil || !found {
		return 0, false
	}
	return max(0, time.Since(msg.Time)), true
}

// leftToRead reports whether the incarnation being followed holds a
// message after the last one applied. It answers for that incarnation
// only: when the stream was recreated meanwhile (the state read before
// the look shows another epoch, or the incarnation ended by the time the
// answer came) it says yes, and so does any error — nothing is decided on
// another stream's answer or a failure.
func (p *Projector) leftToRead(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	epoch := p.followedEpoch()
	inc := p.events.Current()
	if inc.Epoch != epoch {
		return true
	}
	if p.ahead.far() {
		return true
	}
	st, err := p.events.State(ctx)
	if err != nil || st.Epoch != epoch {
		return true
	}
	_, found, err := p.events.NextAfter(ctx, p.lastSeen.Load())
	return found || err != nil || inc.Ended()
}

// measureLag updates the lag figures and logs when the projector falls
// behind (the oldest unapplied event has waited LagWarnAfter) and when it
// has caught up again.
func (p *Projector) measureLag(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := p.events.State(ctx)
	if err != nil {
		return
	}
	p.noteFloor(st)
	cursor := p.lastSeen.Load()
	var events uint64
	var age time.Duration
	if st.LastSeq > cursor && st.Epoch == p.followedEpoch() {
		// Sequences deleted one by one are not waiting to be applied:
		// nothing stored after the cursor is no lag.
		if a, found := p.oldestUnapplied(ctx, cursor); found {
			events, age = st.LastSeq-cursor, a
		}
	}
	p.lag.mu.Lock()
	p.lag.events, p.lag.seconds, p.lag.streamLast = events, age.Seconds(), st.LastSeq
	p.lag.streamBytes, p.lag.streamMaxBytes = st.Bytes, st.MaxBytes
	warned := p.lag.warned
	serving := p.Ready() && !p.rebuilding.Load()
	switch {
	case !warned && serving && age >= p.cfg.LagWarnAfter:
		p.lag.warned = true
		p.log.Warn("projector falling behind the stream", "lag", events, "lag_seconds", age.Round(time.Millisecond).Seconds(),
			"cursor", cursor, "stream_last_seq", st.LastSeq)
	case warned && age < caughtUpAge:
		p.lag.warned = false
		p.log.Info("projector caught up with the stream", "lag", events, "cursor", cursor, "stream_last_seq", st.LastSeq)
	}
	p.lag.mu.Unlock()
}
