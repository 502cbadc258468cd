package projector

import (
	"errors"
	"fmt"
	"time"
)

// A commit that fails for any reason but damage (a full disk, an I/O
// error) is a crash of the write side, survived in place: the commit
// rolled back whole, so the file still holds the previous one, which
// reads go on serving with its cursor. The apply goroutine then takes
// nothing more from its queue — the follow goroutine blocks behind it and
// the stream keeps what is not read yet, so nothing is lost — and retries
// the same commit, everything applied since the last one included, after
// retryFirst, doubling up to retryMax. Until one succeeds the projector is
// not ready to take writes (CommitFailing, /readyz 503 commit_failing);
// when one does, the fold takes up its queue where it stopped: nothing is
// applied twice, nothing skipped. The boot replay, the live tail and a
// rebuild beside the served state (whose commits go to its own file) stop
// and resume alike. A damaged record is not such a failure: it goes the
// repair's way (repair.go).

// Retry delays of a failing commit.
const (
	retryFirst = 100 * time.Millisecond
	retryMax   = 30 * time.Second
)

// CommitFailure is a commit that keeps failing: the fold has stopped
// until it succeeds (CheckpointStatus.Failing, /readyz).
type CommitFailure struct {
	// Since is when the first attempt failed.
	Since time.Time `json:"since"`
	// Attempts counts the failed attempts, the first included.
	Attempts uint64 `json:"attempts"`
	// Error is the latest attempt's.
	Error string `json:"error"`
	// Cursor is what the failing commit would write; the served state
	// stays at the last commit (checkpoint.cursor).
	Cursor uint64 `json:"cursor"`
	// NextAttemptAt is when it is tried again.
	NextAttemptAt time.Time `json:"nextAttemptAt"`
}

// CommitFailing returns the commit that keeps failing, nil while commits
// succeed. Reads are served meanwhile, from the last commit.
func (p *Projector) CommitFailing() *CommitFailure {
	if f := p.failing.Load(); f != nil {
		c := *f
		return &c
	}
	return nil
}

// retryDelay is the wait after the n-th failed attempt.
func retryDelay(n uint64) time.Duration {
	d := retryFirst
	for i := uint64(1); i < n && d < retryMax; i++ {
		d *= 2
	}
	return min(d, retryMax)
}

// commitFailed records a failed commit of the batch (not damage): the
// apply goroutine retries it before it takes anything else (retryCommit).
func (p *Projector) commitFailed(err error) {
	now := time.Now()
	f := CommitFailure{Since: now, Attempts: 1, Error: err.Error(), Cursor: p.batch.Meta().Cursor}
	prev := p.failing.Load()
	if prev != nil {
		f.Since, f.Attempts = prev.Since, prev.Attempts+1
	}
	delay := retryDelay(f.Attempts)
	f.NextAttemptAt = now.Add(delay)
	p.failing.Store(&f)
	if prev == nil {
		p.log.Error("commit failed: the fold stops until a commit succeeds; reads serve the last commit",
			"err", err, "committed_cursor", p.committedCursor(), "retry_in", delay)
		return
	}
	p.log.Error("commit failed again", "err", err, "attempts", f.Attempts,
		"since", f.Since.Format(time.RFC3339), "retry_in", delay)
}

// commitSucceeded ends a failure, if there was one.
func (p *Projector) commitSucceeded() {
	if f := p.failing.Swap(nil); f != nil {
		p.log.Info("commit succeeded again; the fold resumes", "failed_attempts", f.Attempts,
			"stopped_for", time.Since(f.Since).Round(time.Millisecond), "cursor", p.batch.Meta().Cursor)
	}
}

// retryCommit runs on the apply goroutine while a commit is failing: it
// retries it on schedule until one succeeds (true) or stop is closed
// (false). Nothing else runs on the apply goroutine meanwhile.
func (p *Projector) retryCommit(stop <-chan struct{}) bool {
	for {
		f := p.failing.Load()
		if f == nil {
			return true
		}
		if p.broken.Load() {
			// Damage met: the repair takes it from here.
			p.failing.Store(nil)
			return true
		}
		t := time.NewTimer(time.Until(f.NextAttemptAt))
		select {
		case <-stop:
			t.Stop()
			return false
		case <-t.C:
		}
		_ = p.commit() // records the outcome
	}
}

// errCommitFailing is Checkpoint's answer while a commit keeps failing.
var errCommitFailing = errors.New("commits are failing")

func (f *CommitFailure) err() error {
	return fmt.Errorf("%w since %s (%d attempts): %s", errCommitFailing, f.Since.Format(time.RFC3339), f.Attempts, f.Error)
}
