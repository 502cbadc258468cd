package eventlog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Incarnation is one life of the stream, from its creation to its
// deletion: sequences and cursors mean something only inside one. It is
// named by its epoch (the stream's creation time).
//
// The Stream is the one place that decides the stream changed: every stream
// info it reads (State, Ensure, the watcher) is compared with the current
// incarnation, and a different creation time ends it. Readers bind their
// work to the incarnation they started in and stop when it ends.
type Incarnation struct {
	Epoch string
	gen   uint64
	ctx   context.Context // cancelled with ErrIncarnationEnded when it ends
	end   context.CancelCauseFunc
	next  *Incarnation // set before ctx is cancelled
}

// ErrIncarnationEnded is the cause of an incarnation's context: the stream
// was deleted (and created again) after it.
var ErrIncarnationEnded = errors.New("the stream was deleted and created again")

func newIncarnation(epoch string, gen uint64) *Incarnation {
	ctx, end := context.WithCancelCause(context.Background())
	return &Incarnation{Epoch: epoch, gen: gen, ctx: ctx, end: end}
}

// Done is closed when the incarnation has ended.
func (i *Incarnation) Done() <-chan struct{} { return i.ctx.Done() }

// Ended reports whether the incarnation has ended.
func (i *Incarnation) Ended() bool { return i.ctx.Err() != nil }

// Next is the incarnation that followed this one; nil while it has not
// ended.
func (i *Incarnation) Next() *Incarnation {
	if !i.Ended() {
		return nil
	}
	return i.next
}

// Bind returns a context that ends with ctx or, with the cause
// ErrIncarnationEnded, when the incarnation ends. Call stop to release it.
func (i *Incarnation) Bind(ctx context.Context) (bound context.Context, stop func()) {
	bound, cancel := context.WithCancelCause(ctx)
	unhook := context.AfterFunc(i.ctx, func() { cancel(ErrIncarnationEnded) })
	return bound, func() {
		unhook()
		cancel(context.Canceled)
	}
}

// Current is the incarnation of the stream as last seen.
func (l *Stream) Current() *Incarnation {
	l.incMu.Lock()
	defer l.incMu.Unlock()
	return l.inc
}

// Epoch identifies the current incarnation.
func (l *Stream) Epoch() string { return l.Current().Epoch }

// observe records that a stream info requested while gen was current
// showed epoch. A different epoch ends the current incarnation, unless a
// newer observation already moved on (then this answer is the stale one).
func (l *Stream) observe(gen uint64, epoch string) {
	l.incMu.Lock()
	defer l.incMu.Unlock()
	cur := l.inc
	switch {
	case cur == nil:
		l.inc = newIncarnation(epoch, 1)
		return
	case cur.gen != gen, cur.Epoch == epoch:
		return
	}
	next := newIncarnation(epoch, cur.gen+1)
	cur.next = next
	l.inc = next
	cur.end(ErrIncarnationEnded)
	l.log.Warn("the stream was deleted and created again: every reader of the old incarnation stops",
		"stream", StreamName, "old_epoch", cur.Epoch, "epoch", epoch)
}

// generation is the current incarnation's number, read before a stream
// info request so that observe can tell a stale answer.
func (l *Stream) generation() uint64 {
	if inc := l.Current(); inc != nil {
		return inc.gen
	}
	return 0
}

// WatchInterval is how often Watch asks for the stream's info when no
// advisory says anything changed.
const WatchInterval = time.Second

// RecreateDelay is how long the stream must have been missing before Watch
// creates it again. nats-server announces a deletion before it has removed
// the stream's files, and a stream created in that instant adopts the
// files being removed: it reports the old sequences and never acknowledges
// a publish. The delay also lets an operator's own `nats stream add`
// after an `rm` win.
const RecreateDelay = time.Second

// Watch keeps the current incarnation up to date until ctx ends: on every
// JetStream advisory about the stream (created, deleted, updated) at once,
// otherwise every WatchInterval, it gets the stream and compares its
// epoch. A stream missing for RecreateDelay is created again with the
// configuration given to Open. Readers that fail on a missing stream or
// consumer call Check to make it look at once.
func (l *Stream) Watch(ctx context.Context) {
	sub, err := l.js.Conn().Subscribe("$JS.EVENT.ADVISORY.STREAM.*."+StreamName, func(*nats.Msg) { l.Check() })
	if err != nil {
		// Polling alone still notices, within WatchInterval.
		l.log.Debug("no JetStream advisories; polling the stream", "err", err)
	} else {
		defer sub.Unsubscribe()
	}
	t := time.NewTicker(WatchInterval)
	defer t.Stop()
	var missingSince time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-l.kick:
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		gen := l.generation()
		s, err := l.js.Stream(cctx, StreamName)
		switch {
		case err == nil:
			missingSince = time.Time{}
			l.observe(gen, epochOf(s.CachedInfo()))
		case errors.Is(err, jetstream.ErrStreamNotFound):
			if missingSince.IsZero() {
				missingSince = time.Now()
				time.AfterFunc(RecreateDelay, l.Check)
			} else if time.Since(missingSince) >= RecreateDelay {
				if err := l.Ensure(cctx); err != nil {
					l.log.Warn("the event stream is gone and could not be created again", "err", err)
				} else {
					missingSince = time.Time{}
					l.log.Warn("the event stream was deleted; created it again", "stream", StreamName, "epoch", l.Epoch())
				}
			}
		case ctx.Err() == nil:
			l.log.Warn("the event stream is unavailable", "err", err)
		}
		cancel()
	}
}

// Check asks Watch to look at the stream now. It never blocks.
func (l *Stream) Check() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// SettleTimeout bounds Settle: longer than RecreateDelay plus a watch.
const SettleTimeout = RecreateDelay + 4*time.Second

// Settle is for a reader whose read of incarnation inc failed: the stream
// may have been deleted, and only the watcher decides that. It asks the
// watcher to look and waits, at most SettleTimeout, for inc to end; it
// reports whether it ended (the reader then ends with the new epoch, not
// with a plain failure).
func (l *Stream) Settle(ctx context.Context, inc *Incarnation) bool {
	if inc.Ended() {
		return true
	}
	l.Check()
	t := time.NewTimer(SettleTimeout)
	defer t.Stop()
	select {
	case <-inc.Done():
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// EndedError is the *CursorError of a reader whose incarnation inc ended:
// it carries the stream's state now, so the reader's client can resume in
// the new incarnation (firstSeq and epoch of the 4410 / 410).
func (l *Stream) EndedError(ctx context.Context, inc *Incarnation) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	st, err := l.State(ctx)
	if err != nil {
		st = State{}
		if next := inc.Next(); next != nil {
			st.Epoch = next.Epoch
		}
	}
	return &CursorError{
		State:  st,
		Reason: fmt.Sprintf("the stream was deleted and created again: epoch %q ended, the stream's epoch is now %q", inc.Epoch, st.Epoch),
	}
}
