package projector

import (
	"context"
	"errors"
	"sync"
	"time"

	"cellos-allinone/api"
	"cellos-allinone/projection"
)

// The state hash of the served state (docs/design.md §5, "The state
// hash"): computed on request (GET /v1/status?hash=1, HashState), never
// by a plain status read, since one hash reads every record. One runs at
// a time: a request while one is under way waits for it and gets its
// result. The last result is kept for /v1/status.
//
// A hash reads the served state in one read transaction (one commit)
// under the served lock, as every read does, for seconds at 1 M events
// (docs/benchmarks.md); a compaction's swap or a rebuild's promotion
// queued behind it makes every new read wait until it ends, and the long
// transaction keeps the pages freed meanwhile from being reused. So a
// request does not start one more than it must:
//   - the last result is the answer while the served state is still the
//     one it hashed (same epoch, same cursor): a short read checks;
//   - after a computation that took d, no new one starts for
//     hashCooldown×d: a request meanwhile gets the last result (of the
//     same epoch; its cursor and at say which state it hashed), so
//     hashes hold the served lock at most 1/(1+hashCooldown) of the time
//     however often they are asked for.
// A computation runs under Run's context: Run stops it (the walk looks at
// the context every few thousand entities) and waits for it before it
// returns, so the state file is never closed under a hash.

// hashCooldown: after a computation that took d, none starts for
// hashCooldown×d.
const hashCooldown = 4

// errHashStopped answers a hash asked of a projector that is not running.
var errHashStopped = errors.New("the projector is not running; no state hash")

// StateHash is a state hash of the served state: projection.StateHash
// (version, cursor, value, what it hashed) with the epoch it belongs to,
// when the state was read and how long it took; the wire shape is the
// API's.
type StateHash = api.StateHash

// hashing runs one state hash at a time and keeps the last.
type hashing struct {
	mu      sync.Mutex
	ctx     context.Context // Run's, while it runs; nil otherwise
	wg      sync.WaitGroup  // the computation under way
	running *hashRun
	last    *StateHash
	next    time.Time // no computation starts before
	runs    uint64    // computations started
}

// hashRun is one computation; res and err are set before done closes.
type hashRun struct {
	done   chan struct{}
	res    StateHash
	err    error
	joined int // requests that came while it ran, and wait for it
}

// open lets computations start, under ctx.
func (h *hashing) open(ctx context.Context) {
	h.mu.Lock()
	h.ctx = ctx
	h.mu.Unlock()
}

// close lets no more computations start and waits for the one under way,
// which ctx's end (Run's) has already asked to stop.
func (h *hashing) close() {
	h.mu.Lock()
	h.ctx = nil
	h.mu.Unlock()
	h.wg.Wait()
}

// HashState returns the state hash of the served state: the last one if
// the served state is still the one it hashed, or within the cooldown
// after it (above); else it computes one, or waits for the one under way
// and returns its result. A damaged record met on the way is
// ErrStateDamaged (and a repair starts), as for any read.
func (p *Projector) HashState(ctx context.Context) (StateHash, error) {
	// A short read: the epoch and cursor served now.
	var epoch string
	var cursor uint64
	if err := p.Read(func(v View) { epoch, cursor = v.Epoch, v.Cursor() }); err != nil {
		return StateHash{}, err
	}
	h := &p.hashing
	h.mu.Lock()
	run := h.running
	switch {
	case run != nil:
		run.joined++
	case h.last != nil && h.last.Epoch == epoch && (h.last.Cursor == cursor || p.now().Before(h.next)):
		res := *h.last
		h.mu.Unlock()
		return res, nil
	case h.ctx == nil:
		h.mu.Unlock()
		return StateHash{}, errHashStopped
	default:
		run = &hashRun{done: make(chan struct{})}
		h.running = run
		h.runs++
		// Bound to Run's context, not the request's: those who wait for
		// it may ask longer than the one who started it.
		hctx := h.ctx
		h.wg.Go(func() { p.hash(hctx, run) })
	}
	h.mu.Unlock()
	select {
	case <-run.done:
		return run.res, run.err
	case <-ctx.Done():
		return StateHash{}, ctx.Err()
	}
}

// now is the clock of the hash cooldown (a test's, when set).
func (p *Projector) now() time.Time {
	if p.cfg.hashClock != nil {
		return p.cfg.hashClock()
	}
	return time.Now()
}

func (p *Projector) hash(ctx context.Context, run *hashRun) {
	if p.cfg.beforeHash != nil {
		p.cfg.beforeHash(ctx)
	}
	start := p.now()
	var herr error
	err := p.Read(func(v View) {
		w, ok := v.Reader.(projection.Walker)
		if !ok {
			herr = errors.New("the served state cannot be walked")
			return
		}
		run.res.StateHash, herr = projection.HashContext(ctx, w)
		run.res.Epoch = v.Epoch
	})
	run.err = firstError(err, herr)
	end := p.now()
	run.res.At = start.UTC()
	run.res.DurationMs = end.Sub(start).Milliseconds()
	h := &p.hashing
	h.mu.Lock()
	h.running = nil
	h.next = end.Add(hashCooldown * end.Sub(start))
	if run.err == nil {
		res := run.res
		h.last = &res
		p.log.Info("state hash computed", "cursor", res.Cursor, "epoch", res.Epoch, "value", res.Value,
			"formations", res.Formations, "cells", res.Cells, "duration_ms", res.DurationMs)
	} else {
		p.log.Warn("state hash not computed", "err", run.err)
	}
	h.mu.Unlock()
	close(run.done)
}

// firstError is the first of errs that is not nil.
func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// lastHash is the last state hash computed, nil before the first.
func (p *Projector) lastHash() *StateHash {
	h := &p.hashing
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.last == nil {
		return nil
	}
	res := *h.last
	return &res
}
