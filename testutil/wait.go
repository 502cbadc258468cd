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
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
