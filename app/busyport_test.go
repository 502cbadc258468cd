package app

import (
	"context"
	"net"
	"strings"
	"testing"
)

// A busy port is an error at start, not a panic, and what was opened
// before it is released: the same data dir starts right after.
func TestStartOnBusyPortFailsCleanly(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dir := t.TempDir()
	a, err := Start(context.Background(), Config{DataDir: dir, HTTPAddr: l.Addr().String(), NATSAddr: "127.0.0.1:0"})
	if err == nil {
		a.closeForTest(t)
		t.Fatalf("Start on the busy HTTP port %s = nil error, want one", l.Addr())
	}
	if !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("Start on a busy port: error %q, want it to say the address is in use", err)
	}
	mustStart(t, dir, Config{})
}
