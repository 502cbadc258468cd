package app_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"cellos-allinone/app"
	"cellos-allinone/apptest"
	"cellos-allinone/testutil"
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
	a, err := app.Start(context.Background(), app.Config{DataDir: dir, HTTPAddr: l.Addr().String(), NATSAddr: "127.0.0.1:0"})
	if err == nil {
		a.Close(testutil.Ctx(t, 20*time.Second))
		t.Fatalf("Start on the busy HTTP port %s = nil error, want one", l.Addr())
	}
	if !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("Start on a busy port: error %q, want it to say the address is in use", err)
	}
	apptest.Start(t, app.Config{DataDir: dir})
}
