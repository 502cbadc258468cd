package apptest

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"cellos-allinone/app"
	"cellos-allinone/client"
	"cellos-allinone/projector"
	"cellos-allinone/testutil"
)

// Bounds of the waits.
const (
	startTimeout  = 30 * time.Second // app.Start: bind, open NATS and the stream
	readyTimeout  = 60 * time.Second // the boot replay
	stopTimeout   = 20 * time.Second // Close: requests in flight, final checkpoint
	cursorTimeout = 30 * time.Second // WaitCursor
)

// App is the program run in-process by a test. Its methods that can fail
// fail the test that started it: call them from that test's goroutine.
type App struct {
	*app.App
	tb     testing.TB
	client *client.Client
	// admin is the token of an admin principal when the program runs with
	// an auth file (StartSite): Client and Publish use it.
	admin string

	stopOnce sync.Once
	mu       sync.Mutex
	producer *nats.Conn // Publish's connection, made on first use
}

// Start runs the program with cfg and waits until its boot replay is done.
// An empty DataDir is a fresh temporary directory, empty HTTPAddr and
// NATSAddr are free loopback ports, and a nil Logger logs to standard
// error when CELLOS_TEST_LOG is set. The program is stopped cleanly when
// the test ends, unless Stop or Crash came first.
func Start(tb testing.TB, cfg app.Config) *App {
	tb.Helper()
	a := StartNotReady(tb, cfg)
	a.WaitReady()
	return a
}

// StartNotReady is Start without the wait for the boot replay: it returns
// as soon as the program listens, as app.Start does.
func StartNotReady(tb testing.TB, cfg app.Config) *App {
	tb.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = tb.TempDir()
	}
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = "127.0.0.1:0"
	}
	if cfg.NATSAddr == "" {
		cfg.NATSAddr = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = testutil.Logger()
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	a, err := app.Start(ctx, cfg)
	if err != nil {
		tb.Fatalf("app.Start (data dir %s, HTTP %s): %v", cfg.DataDir, cfg.HTTPAddr, err)
	}
	ta := &App{App: a, tb: tb}
	tb.Cleanup(ta.Stop)
	if ta.client, err = client.New(ta.URL()); err != nil {
		tb.Fatal(err)
	}
	return ta
}

// StartSite is Start with the auth file of testutil.Site (written into the
// data dir unless cfg.AuthFile is set): Client and Publish act as its
// admin, ClientAs as any principal.
func StartSite(tb testing.TB, cfg app.Config) *App {
	tb.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = tb.TempDir()
	}
	if cfg.AuthFile == "" {
		cfg.AuthFile = filepath.Join(cfg.DataDir, "auth")
		testutil.WriteAuthFile(tb, cfg.AuthFile, testutil.Site)
	}
	a := StartNotReady(tb, cfg)
	a.admin = testutil.SitePrincipal(tb, "ops").Token
	var err error
	if a.client, err = client.New(a.URL(), client.WithToken(a.admin)); err != nil {
		tb.Fatal(err)
	}
	a.WaitReady()
	return a
}

// ClientAs is an API client that sends token (of a principal of the auth
// file, or anything a test wants to try).
func (a *App) ClientAs(token string) *client.Client {
	a.tb.Helper()
	c, err := client.New(a.URL(), client.WithToken(token))
	if err != nil {
		a.tb.Fatal(err)
	}
	return c
}

// WaitReady waits until the boot replay is done.
func (a *App) WaitReady() {
	a.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	if err := a.Proj.WaitReady(ctx); err != nil {
		a.tb.Fatalf("projection not ready: %v", err)
	}
}

// URL is the program's HTTP address, http://host:port (https:// with TLS).
func (a *App) URL() string { return a.HTTPURL() }

// WSURL is the address of its live stream, ws://host:port/ws/events
// (wss:// with TLS).
func (a *App) WSURL() string { return "ws" + strings.TrimPrefix(a.HTTPURL(), "http") + "/ws/events" }

// Client is an API client of the program.
func (a *App) Client() *client.Client { return a.client }

// Stop closes the program cleanly (final checkpoint) unless it was stopped
// or crashed before; a failed close fails the test. It runs again, doing
// nothing, when the test ends.
func (a *App) Stop() {
	a.stopOnce.Do(func() {
		a.closeProducer()
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		if err := a.Close(ctx); err != nil {
			a.tb.Errorf("close the program: %v", err)
		}
	})
}

// StopErr closes the program cleanly, as Stop, but returns what Close
// returned instead of failing the test: for a test that damaged the state
// file, whose final commit may rightly fail on it.
func (a *App) StopErr() error {
	var err error
	a.stopOnce.Do(func() {
		a.closeProducer()
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		err = a.Close(ctx)
	})
	return err
}

// Crash stops the program as a kill would leave its data dir: without the
// final checkpoint (app.App.Abort). It fails the test if the program was
// stopped before or wrote a final checkpoint all the same.
func (a *App) Crash() {
	a.tb.Helper()
	var err error
	crashed := false
	a.stopOnce.Do(func() {
		crashed = true
		a.closeProducer()
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		err = a.Abort(ctx)
	})
	switch {
	case !crashed:
		a.tb.Fatal("Crash of a program that was already stopped")
	case err == nil:
		a.tb.Fatal("the program wrote a final checkpoint although its checkpoint file was closed first")
	}
}

// Cursor is the last sequence the served projection has applied.
func (a *App) Cursor() uint64 {
	var cur uint64
	a.Proj.Read(func(v projector.View) { cur = v.Cursor() })
	return cur
}

// WaitCursor waits until the served projection has applied seq.
func (a *App) WaitCursor(seq uint64) {
	a.tb.Helper()
	var cur uint64
	if !testutil.Poll(cursorTimeout, 5*time.Millisecond, func() bool { cur = a.Cursor(); return cur >= seq }) {
		a.tb.Fatalf("projection cursor %d did not reach %d within %v", cur, seq, cursorTimeout)
	}
}

// Publish stores events as a supervisor does, over a TCP connection to the
// program's NATS port, waits for every acknowledgement and returns their
// stream sequences (testutil.MustPublish).
func (a *App) Publish(events ...testutil.Event) []uint64 {
	a.tb.Helper()
	return testutil.MustPublish(a.tb, a.natsConn(), events...)
}

func (a *App) natsConn() *nats.Conn {
	a.tb.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.producer == nil {
		var opts []nats.Option
		if a.admin != "" {
			opts = append(opts, nats.Token(a.admin))
		}
		nc, err := nats.Connect(a.NATSURL(), opts...)
		if err != nil {
			a.tb.Fatalf("connect to NATS at %s: %v", a.NATSURL(), err)
		}
		a.producer = nc
	}
	return a.producer
}

func (a *App) closeProducer() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.producer != nil {
		a.producer.Close()
	}
}

// NoLeaks fails the test if goroutines started during it are still
// running when it has cleaned up. Call it before anything the test starts
// (Start included): the check runs after their cleanups. Goroutines that
// were running before (other tests') are not counted.
func NoLeaks(tb testing.TB) {
	ignore := goleak.IgnoreCurrent()
	tb.Cleanup(func() {
		if err := goleak.Find(ignore); err != nil {
			tb.Errorf("goroutines left behind: %v", err)
		}
	})
}
