package testutil

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// Buffer collects output written from other goroutines or a child
// process's pipes, and lets a test wait on what was written. Its zero
// value is ready to use.
type Buffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed by the next write, made by WaitFor
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.changed != nil {
		close(b.changed)
		b.changed = nil
	}
	return b.buf.Write(p)
}

// String is what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// WaitFor blocks until cond holds for what was written, and fails the test
// with the output so far when it still does not after d.
func (b *Buffer) WaitFor(tb testing.TB, d time.Duration, what string, cond func(string) bool) {
	tb.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		b.mu.Lock()
		s := b.buf.String()
		if b.changed == nil {
			b.changed = make(chan struct{})
		}
		changed := b.changed
		b.mu.Unlock()
		if cond(s) {
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			tb.Fatalf("waited %v for %s; output so far:\n%s", d, what, s)
		}
	}
}

// CheckContains reports, without ending the test, each of want that got
// (what names it) lacks and each of not that it has.
func CheckContains(tb testing.TB, what, got string, want, not []string) {
	tb.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			tb.Errorf("%s lacks %q:\n%s", what, w, got)
		}
	}
	for _, w := range not {
		if strings.Contains(got, w) {
			tb.Errorf("%s has %q:\n%s", what, w, got)
		}
	}
}
