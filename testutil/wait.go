package testutil

import (
	"testing"
	"time"
)

// WaitFor polls cond every 10 ms until it holds and fails the test when it
// still does not after d. It is for conditions that have no event to wait
// on (a value another goroutine moves, a server-side state); what can be
// awaited through a channel or a blocking read should be.
func WaitFor(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	if !Poll(d, 10*time.Millisecond, cond) {
		tb.Fatalf("%s: not within %v", what, d)
	}
}

// Poll calls cond every interval until it holds or d has passed, and
// reports whether it held. It is WaitFor for the callers that report a
// timeout themselves (with what they saw last), that do not count it as a
// failure, or that must poll at another pace.
func Poll(d, every time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(every)
	}
	return true
}
