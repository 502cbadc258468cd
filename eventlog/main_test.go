package eventlog_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	natsembed "cellos-allinone/embed"
	"cellos-allinone/eventlog"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// mustOpenStream starts an embedded JetStream server on a free loopback port
// with its store in a temporary directory and opens the event log on an
// in-process connection. Everything is shut down when the test ends.
func mustOpenStream(tb testing.TB) *eventlog.Stream {
	tb.Helper()
	srv, err := natsembed.Start(natsembed.Options{DataDir: tb.TempDir(), Addr: "127.0.0.1:0"})
	if err != nil {
		tb.Fatalf("start embedded NATS: %v", err)
	}
	nc, err := srv.Connect()
	if err != nil {
		srv.Shutdown()
		tb.Fatalf("connect: %v", err)
	}
	tb.Cleanup(func() {
		nc.Close()
		srv.Shutdown()
	})
	l, err := eventlog.Open(ctxFor(tb, 10*time.Second), nc, eventlog.Config{})
	if err != nil {
		tb.Fatalf("open log: %v", err)
	}
	return l
}

// watch runs the log's watcher until the test ends.
func watch(tb testing.TB, l *eventlog.Stream) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.Watch(ctx)
	}()
	tb.Cleanup(func() {
		cancel()
		<-done
	})
}

func ctxFor(tb testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}

// mustPublish stores n events on subject and returns their sequences.
func mustPublish(tb testing.TB, l *eventlog.Stream, subject string, n int) []uint64 {
	tb.Helper()
	ctx := ctxFor(tb, 10*time.Second)
	seqs := make([]uint64, 0, n)
	for range n {
		ack, err := l.JetStream().Publish(ctx, subject, []byte(`{"k":1}`))
		if err != nil {
			tb.Fatalf("publish %s: %v", subject, err)
		}
		seqs = append(seqs, ack.Sequence)
	}
	return seqs
}

// consumerCount is how many consumers the stream has now.
func consumerCount(tb testing.TB, l *eventlog.Stream) int {
	tb.Helper()
	info, err := l.Handle().Info(ctxFor(tb, 5*time.Second))
	if err != nil {
		tb.Fatalf("stream info: %v", err)
	}
	return info.State.Consumers
}
