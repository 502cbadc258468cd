package main

import (
	"syscall"
	"testing"
	"time"
)

// The first SIGTERM cancels the context (graceful shutdown); a second one
// exits at once with code 1.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	exited := make(chan int, 1)
	orig := exitNow
	exitNow = func(code int) { exited <- code }
	defer func() { exitNow = orig }()
	ctx, stop := signalContext()
	defer stop()
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("first SIGTERM did not cancel the context within 5s")
	}
	select {
	case code := <-exited:
		t.Fatalf("first signal exited with %d, want a graceful shutdown", code)
	default:
	}
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-exited:
		if code != 1 {
			t.Fatalf("second signal: exit code %d, want 1", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("second SIGTERM did not exit within 5s")
	}
}
