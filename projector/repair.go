package projector

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"cellos-allinone/store"
)

// A record of the state file that cannot be read (a damaged disk, a file
// edited by hand) is found where it is used — boot does not read every
// record, or it would not be flat. Where it is found decides nothing: the
// state is rebuilt from the stream beside the served one, the way a new
// stream incarnation is, and the damaged file is kept aside when the
// rebuilt one takes its place. Meanwhile the served state is stale and
// the reads that meet the damage answer ErrStateDamaged.

// ErrStateDamaged is what Read returns when the served state has a
// record it cannot read; a rebuild from the stream is then under way.
var ErrStateDamaged = errors.New("the state file has a damaged record; it is being rebuilt from the stream")

// repairSignal carries a request for a rebuild from the stream, from
// where damage was met (a read, the apply goroutine) to the follow
// goroutine, which restarts from the first sequence for it. One repair
// runs at a time: requests while one is pending or running are dropped.
type repairSignal struct {
	mu      sync.Mutex
	state   int // repairIdle, repairRequested or repairRunning
	reason  string
	cancels map[*int]context.CancelFunc // follows to interrupt
}

const (
	repairIdle = iota
	repairRequested
	repairRunning
)

// request asks for a repair; force restarts one that is running (the
// rebuild's own file is damaged).
func (r *repairSignal) request(reason string, force bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state == repairRequested || r.state == repairRunning && !force {
		return
	}
	r.state, r.reason = repairRequested, reason
	for _, cancel := range r.cancels {
		cancel()
	}
}

// take returns the reason of a requested repair and marks it running.
func (r *repairSignal) take() (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state != repairRequested {
		return "", false
	}
	r.state = repairRunning
	return r.reason, true
}

// pending reports a requested repair not yet taken.
func (r *repairSignal) pending() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state == repairRequested
}

// again puts a running repair that could not start back to requested, to
// be taken again.
func (r *repairSignal) again() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state == repairRunning {
		r.state = repairRequested
	}
}

// active reports a repair asked for or under way.
func (r *repairSignal) active() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state != repairIdle
}

// done ends the running repair: the state was replaced.
func (r *repairSignal) done() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state == repairRunning {
		r.state = repairIdle
	}
}

// bind returns a context that ends when a repair is requested (at once
// if one already is).
func (r *repairSignal) bind(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	key := new(int)
	r.mu.Lock()
	if r.cancels == nil {
		r.cancels = map[*int]context.CancelFunc{}
	}
	r.cancels[key] = cancel
	if r.state == repairRequested {
		cancel()
	}
	r.mu.Unlock()
	return ctx, func() {
		r.mu.Lock()
		delete(r.cancels, key)
		r.mu.Unlock()
		cancel()
	}
}

// readDamaged turns a damaged read into ErrStateDamaged and asks for the
// repair.
func (p *Projector) readDamaged(err error) error {
	p.log.Error("damaged record in the served state; rebuilding it from the stream", "err", err)
	p.repair.request(fmt.Sprintf("%s: a damaged record was read: %v", RebuildUnreadable, err), false)
	return fmt.Errorf("%w (%v)", ErrStateDamaged, err)
}

// applyDamaged runs on the apply goroutine when the fold met a record it
// cannot read: the batch cannot go on, so events are dropped until the
// rebuild replaces it.
func (p *Projector) applyDamaged(err error) {
	if p.broken.Load() {
		return
	}
	p.broken.Store(true)
	p.log.Error("damaged record met by the fold; rebuilding the state from the stream", "err", err)
	p.repair.request(fmt.Sprintf("%s: the fold met a damaged record: %v", RebuildUnreadable, err), p.building != nil)
}

// applyGuarded applies one work item; a damaged record met on the way is
// handed to applyDamaged, any other panic goes on.
func (p *Projector) applyGuarded(ctx context.Context, w work) {
	defer func() {
		if r := recover(); r != nil {
			if err, ok := r.(error); ok && errors.Is(err, store.ErrDamaged) {
				p.applyDamaged(err)
				return
			}
			panic(r)
		}
	}()
	p.applyEvents(ctx, w)
}
