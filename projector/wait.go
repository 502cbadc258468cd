package projector

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Read-your-writes (docs/design.md §5, min_seq): a reader that needs a
// state holding sequence N waits for the commit that holds it, without
// polling. Every commit of the served state wakes the waiting readers (a
// channel closed and replaced under a lock), and a reader that wants a
// sequence already applied but not yet committed asks the apply goroutine
// to commit now instead of at the next checkpoint interval. Those early
// commits are at most one per earlyCommitGap, however many readers ask.

// earlyCommitGap is the least time between the end of a commit made for
// waiting readers and the start of the next one.
const earlyCommitGap = 5 * time.Millisecond

// committed is the cursor of the last commit of the served state; storing
// a cursor wakes the readers waiting for a commit.
type committed struct {
	cursor atomic.Uint64
	mu     sync.Mutex
	next   chan struct{} // closed by the next Store; nil while nobody waits
}

func (c *committed) Load() uint64 { return c.cursor.Load() }

// Store records a commit at cursor and wakes the waiting readers.
func (c *committed) Store(cursor uint64) {
	c.cursor.Store(cursor)
	c.mu.Lock()
	if c.next != nil {
		close(c.next)
		c.next = nil
	}
	c.mu.Unlock()
}

// changed is closed by the next Store. Take it before reading the cursor,
// so that a commit in between is not missed.
func (c *committed) changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.next == nil {
		c.next = make(chan struct{})
	}
	return c.next
}

// readerWaits is what the waiting readers ask of the apply goroutine.
type readerWaits struct {
	// wanted is the least sequence a waiting reader asked for (0: none);
	// a value at or below the committed cursor is spent.
	wanted atomic.Uint64
	asked  chan struct{} // a reader asked (capacity 1: asks coalesce)

	// The apply goroutine's own: the timer of a commit put off by the
	// gap, whether it is armed, and when the last early commit ended.
	timer   *time.Timer
	armed   bool
	lastEnd time.Time
}

func newReaderWaits() readerWaits {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return readerWaits{asked: make(chan struct{}, 1), timer: t}
}

// NotCaughtUpError is ReadFrom's error when its context ended before the
// served state held the sequence asked for.
type NotCaughtUpError struct {
	Seq    uint64 // the sequence asked for
	Cursor uint64 // the cursor of the served state when the wait ended
	Err    error  // the context's error
}

func (e *NotCaughtUpError) Error() string {
	return fmt.Sprintf("the state holds events up to %d, not yet %d: %v", e.Cursor, e.Seq, e.Err)
}

func (e *NotCaughtUpError) Unwrap() error { return e.Err }

// ReadFrom is Read from a state that holds seq: fn is called once, with a
// committed state whose cursor is seq or later, of the stream's current
// incarnation (a stale state, served while a new incarnation is rebuilt
// beside it, does not count: seq is of the new one — from the moment the
// event log has noticed the new one, which JetStream's advisories make a
// matter of milliseconds). Until the projector
// commits such a state ReadFrom waits, asking for the commit early once
// seq is applied; when ctx ends first the error is a *NotCaughtUpError. A
// seq beyond the stream's last sequence waits like any other: it may still
// be published. seq 0 asks nothing: it is Read.
func (p *Projector) ReadFrom(ctx context.Context, seq uint64, fn func(View)) error {
	if seq == 0 {
		return p.Read(fn)
	}
	for {
		changed := p.cpCursor.changed()
		if p.cpCursor.Load() >= seq {
			done := false
			err := p.Read(func(v View) {
				if v.Cursor() >= seq && v.Epoch == p.events.Epoch() {
					fn(v)
					done = true
				}
			})
			if err != nil || done {
				return err
			}
		}
		p.wantCommit(seq)
		select {
		case <-changed:
		case <-ctx.Done():
			return &NotCaughtUpError{Seq: seq, Cursor: p.cpCursor.Load(), Err: ctx.Err()}
		}
	}
}

// wantCommit records that a reader waits for a commit holding seq and
// tells the apply goroutine.
func (p *Projector) wantCommit(seq uint64) {
	w := &p.waits.wanted
	for {
		cur := w.Load()
		if cur != 0 && cur <= seq && cur > p.cpCursor.Load() {
			break // a lower sequence is asked for: its commit comes first
		}
		if w.CompareAndSwap(cur, seq) {
			break
		}
	}
	select {
	case p.waits.asked <- struct{}{}:
	default:
	}
}

// commitForReaders runs on the apply goroutine after each item of work,
// when a reader asks, and when a commit put off by the gap is due: it
// commits now when a reader waits for a sequence that is applied but not
// committed. It leaves a rebuild (readers wait for its swap), a damaged
// state and a disk whose last commit failed (retried on the interval) to
// the usual schedule.
func (p *Projector) commitForReaders() {
	rw := &p.waits
	w := rw.wanted.Load()
	switch {
	case w == 0, p.building != nil:
		// During a rebuild the committed cursor is the served state's,
		// of the old incarnation: it says nothing of what is wanted.
		return
	case w <= p.cpCursor.Load():
		rw.wanted.CompareAndSwap(w, 0)
		return
	case p.lastSeen.Load() < w, p.broken.Load(), p.cpErr.Load() != nil:
		return
	}
	if d := earlyCommitGap - time.Since(rw.lastEnd); d > 0 {
		if !rw.armed {
			rw.timer.Reset(d)
			rw.armed = true
		}
		return
	}
	p.commitLogged()
	rw.lastEnd = time.Now()
	if w <= p.cpCursor.Load() {
		rw.wanted.CompareAndSwap(w, 0)
	}
}

// earlyCommitDue runs on the apply goroutine when the put-off commit's
// timer fires.
func (p *Projector) earlyCommitDue() {
	p.waits.armed = false
	p.commitForReaders()
}
