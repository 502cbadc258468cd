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
// under the served lock, as every read does; a compaction's swap or a
// rebuild's promotion waits for it, and new reads wait for those — at
// most one hash's time (docs/benchmarks.md has it at 1 M events).

// StateHash is a state hash of the served state: projection.StateHash
// (version, cursor, value, what it hashed) with the epoch it belongs to,
// when the state was read and how long it took; the wire shape is the
// API's.
type StateHash = api.StateHash

// hashing runs one state hash at a time and keeps the last.
type hashing struct {
	mu      sync.Mutex
	running *hashRun
	last    *StateHash
	runs    uint64 // computations started
}

// hashRun is one computation; res and err are set before done closes.
type hashRun struct {
	done   chan struct{}
	res    StateHash
	err    error
	joined int // requests that came while it ran, and wait for it
}

// HashState computes the state hash of the served state, or waits for
// the one under way and returns its result. A damaged record met on the
// way is ErrStateDamaged (and a repair starts), as for any read.
func (p *Projector) HashState(ctx context.Context) (StateHash, error) {
	h := &p.hashing
	h.mu.Lock()
	run := h.running
	if run == nil {
		run = &hashRun{done: make(chan struct{})}
		h.running = run
		h.runs++
		// Not bound to ctx: those who wait for it may ask longer than
		// the one who started it.
		go p.hash(run)
	} else {
		run.joined++
	}
	h.mu.Unlock()
	select {
	case <-run.done:
		return run.res, run.err
	case <-ctx.Done():
		return StateHash{}, ctx.Err()
	}
}

func (p *Projector) hash(run *hashRun) {
	if p.cfg.beforeHash != nil {
		p.cfg.beforeHash()
	}
	start := time.Now()
	var herr error
	err := p.Read(func(v View) {
		w, ok := v.Reader.(projection.Walker)
		if !ok {
			herr = errors.New("the served state cannot be walked")
			return
		}
		run.res.StateHash, herr = projection.Hash(w)
		run.res.Epoch = v.Epoch
	})
	run.err = firstError(err, herr)
	run.res.At = start.UTC()
	run.res.DurationMs = time.Since(start).Milliseconds()
	h := &p.hashing
	h.mu.Lock()
	h.running = nil
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
