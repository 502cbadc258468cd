package app

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"cellos-allinone/eventlog"
	"cellos-allinone/projection"
	"cellos-allinone/projector"
	"cellos-allinone/testutil"
)

// mustStart runs the whole program in-process on free loopback ports with
// data in dir, and waits until the boot replay is done.
func mustStart(t *testing.T, dir string, cfg Config) *App {
	t.Helper()
	cfg.DataDir = dir
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = "127.0.0.1:0"
	}
	cfg.NATSAddr = "127.0.0.1:0"
	a, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { a.closeForTest(t) })
	if err := a.Proj.WaitReady(testutil.Ctx(t, 60*time.Second)); err != nil {
		t.Fatalf("not ready: %v", err)
	}
	return a
}

// closeOnce shuts down cleanly unless the test already stopped the app.
func (a *App) closeForTest(t *testing.T) {
	select {
	case <-a.closed:
		return
	default:
	}
	if err := a.Close(testutil.Ctx(t, 20*time.Second)); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// crash stops the process the way a kill would leave the checkpoint: no
// final checkpoint is written (the file is closed first, so the final
// write fails), and nothing else is flushed by us.
func (a *App) crash(t *testing.T) {
	t.Helper()
	a.store.Close()
	if err := a.Close(testutil.Ctx(t, 20*time.Second)); err == nil {
		t.Fatal("Close after closing the checkpoint file wrote a final checkpoint")
	}
}

// producer connects to the app's NATS port over TCP, like a supervisor.
func producer(t *testing.T, a *App) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(a.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func getJSON(t *testing.T, a *App, path string, into any) int {
	t.Helper()
	resp, err := http.Get("http://" + a.HTTP.Addr() + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("GET %s: Content-Type %q, want application/json", path, ct)
	}
	if into != nil {
		if err := json.Unmarshal(body, into); err != nil {
			t.Fatalf("GET %s: body %s: %v", path, body, err)
		}
	}
	return resp.StatusCode
}

// waitCursor polls /v1/status until the cursor reaches seq.
func waitCursor(t *testing.T, a *App, seq uint64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var st struct{ Cursor uint64 }
		getJSON(t, a, "/v1/status", &st)
		if st.Cursor >= seq {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cursor %d did not reach %d within 30s", st.Cursor, seq)
		}
		time.Sleep(10 * time.Millisecond) // polling a value
	}
}

// foldOf folds the whole retained stream from scratch.
func foldOf(t *testing.T, l *eventlog.Stream) *projection.Projection {
	t.Helper()
	p, err := projector.FoldLog(testutil.Ctx(t, 60*time.Second), l, math.MaxUint64)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func dumpOf(a *App) string {
	var d string
	a.Proj.Read(func(p projector.View) { d = string(p.Dump()) })
	return d
}
