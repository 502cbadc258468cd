package testutil

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	natsembed "cellos-allinone/embed"
	"cellos-allinone/eventlog"
)

// MustStartNATS starts an embedded JetStream server storing in dir on a
// free loopback port, and returns it with an in-process connection. Both
// are shut down when the test ends (unless already shut down).
func MustStartNATS(tb testing.TB, dir string) (*natsembed.Server, *nats.Conn) {
	tb.Helper()
	srv, err := natsembed.Start(natsembed.Options{DataDir: dir, Addr: "127.0.0.1:0", Logger: Logger()})
	if err != nil {
		tb.Fatalf("start embedded NATS: %v", err)
	}
	nc, err := srv.Connect()
	if err != nil {
		srv.Shutdown()
		tb.Fatalf("connect to embedded NATS: %v", err)
	}
	tb.Cleanup(func() {
		nc.Close()
		srv.Shutdown()
	})
	return srv, nc
}

// MustPublish publishes events with JetStream acknowledgements (async,
// then waits for every ack) and fails the test on any error. It returns
// the stream sequence of each event.
func MustPublish(tb testing.TB, nc *nats.Conn, events ...Event) []uint64 {
	tb.Helper()
	seqs, err := Publish(nc, events...)
	if err != nil {
		tb.Fatal(err)
	}
	return seqs
}

// Publish is MustPublish for goroutines other than the test's, which must
// not end the test: it returns the first error instead. It publishes a
// window of events at a time (async), waits for every acknowledgement of
// the window, and returns the stream sequence of each event.
func Publish(nc *nats.Conn, events ...Event) ([]uint64, error) {
	js, err := publisherOn(nc)
	if err != nil {
		return nil, err
	}
	seqs := make([]uint64, 0, len(events))
	const window = 1000 // below the client's limit of outstanding async publishes
	for start := 0; start < len(events); start += window {
		end := min(start+window, len(events))
		futures := make([]jetstream.PubAckFuture, 0, end-start)
		for _, ev := range events[start:end] {
			f, err := js.PublishAsync(ev.Subject, ev.Payload)
			if err != nil {
				return seqs, fmt.Errorf("publish %s: %w", ev.Subject, err)
			}
			futures = append(futures, f)
		}
		for _, f := range futures {
			select {
			case ack := <-f.Ok():
				seqs = append(seqs, ack.Sequence)
			case err := <-f.Err():
				return seqs, fmt.Errorf("publish %s: %w", f.Msg().Subject, err)
			case <-time.After(30 * time.Second):
				return seqs, fmt.Errorf("no ack for %s within 30s", f.Msg().Subject)
			}
		}
	}
	return seqs, nil
}

var (
	publishersMu sync.Mutex
	publishers   = map[*nats.Conn]jetstream.JetStream{}
)

// publisherOn returns the JetStream context Publish uses on nc: one per
// connection, because each context keeps a reply subscription for its
// async acknowledgements, and a goroutine, until the connection closes
// (jetstream's CleanupPublisher can leave that goroutine blocked for
// good). The contexts of closed connections are let go.
func publisherOn(nc *nats.Conn) (jetstream.JetStream, error) {
	publishersMu.Lock()
	defer publishersMu.Unlock()
	for c := range publishers {
		if c.IsClosed() {
			delete(publishers, c)
		}
	}
	if js, ok := publishers[nc]; ok {
		return js, nil
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	publishers[nc] = js
	return js, nil
}

// RemoveStream deletes the event log's stream, as `nats stream rm` does.
func RemoveStream(tb testing.TB, l *eventlog.Stream) {
	tb.Helper()
	if err := l.JetStream().DeleteStream(Ctx(tb, 10*time.Second), eventlog.StreamName); err != nil {
		tb.Fatalf("delete the stream %s: %v", eventlog.StreamName, err)
	}
}

// Ctx returns a context bounded by d and cancelled at the end of the test.
func Ctx(tb testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}

// Logger is a debug logger to standard error when CELLOS_TEST_LOG is set,
// else nil (nothing is logged).
func Logger() *slog.Logger {
	if os.Getenv("CELLOS_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
