package embed_test

import (
	"errors"
	"testing"

	"github.com/nats-io/nats.go"

	natsembed "cellos-allinone/embed"
)

// The client port's limits: 1 MiB messages unless told otherwise, and a
// bounded number of connections (the process's own count).
func TestLimits(t *testing.T) {
	srv, _ := startAuthNATS(t, natsembed.Options{})
	c, err := dial(t, srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	if got := c.MaxPayload(); got != 1<<20 {
		t.Errorf("default max payload %d, want 1 MiB", got)
	}

	// One connection is the test's internal one: two more fit.
	srv, _ = startAuthNATS(t, natsembed.Options{MaxPayload: 4096, MaxConns: 3})
	c, err = dial(t, srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	if got := c.MaxPayload(); got != 4096 {
		t.Errorf("max payload %d, want 4096", got)
	}
	if err := c.Publish("cellos.events.cell.c-1.started", make([]byte, 4097)); !errors.Is(err, nats.ErrMaxPayload) {
		t.Errorf("publishing 4097 bytes: %v, want %v", err, nats.ErrMaxPayload)
	}
	if _, err := dial(t, srv.ClientURL()); err != nil {
		t.Fatalf("the third connection: %v", err)
	}
	// The server says "maximum connections exceeded" and closes; the
	// client may only see the closed socket.
	if _, err := dial(t, srv.ClientURL()); err == nil {
		t.Error("a fourth connection got in")
	}
}
