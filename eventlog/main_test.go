package eventlog_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"cellos-allinone/eventlog"
	"cellos-allinone/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// mustOpenStream starts an embedded JetStream server on a free loopback port
// with its store in a temporary directory and opens the event log on an
// in-process connection. Everything is shut down when the test ends.
func mustOpenStream(tb testing.TB) *eventlog.Stream {
	tb.Helper()
	_, nc := testutil.MustStartNATS(tb, tb.TempDir())
	l, err := eventlog.Open(testutil.Ctx(tb, 10*time.Second), nc, eventlog.Config{})
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

// mustPublish stores n events on subject and returns their sequences.
func mustPublish(tb testing.TB, l *eventlog.Stream, subject string, n int) []uint64 {
	tb.Helper()
	return publishCopies(tb, l, subject, []byte(`{"k":1}`), n)
}

// publishCopies stores n copies of payload on subject and returns their
// sequences.
func publishCopies(tb testing.TB, l *eventlog.Stream, subject string, payload []byte, n int) []uint64 {
	tb.Helper()
	events := make([]testutil.Event, n)
	for i := range events {
		events[i] = testutil.Event{Subject: subject, Payload: payload}
	}
	return testutil.MustPublish(tb, l.JetStream().Conn(), events...)
}

// mustOpenReader opens a reader of inc from start on filter ("": every
// subject); it is closed when the test ends.
func mustOpenReader(tb testing.TB, ctx context.Context, l *eventlog.Stream, inc *eventlog.Incarnation, start uint64, filter string) *eventlog.Reader {
	tb.Helper()
	r, err := l.OpenReader(ctx, inc, start, filter)
	if err != nil {
		tb.Fatalf("open a reader from %d: %v", start, err)
	}
	tb.Cleanup(func() { r.Close() })
	return r
}

// consumerCount is how many consumers the stream has now.
func consumerCount(tb testing.TB, l *eventlog.Stream) int {
	tb.Helper()
	info, err := l.Handle().Info(testutil.Ctx(tb, 5*time.Second))
	if err != nil {
		tb.Fatalf("stream info: %v", err)
	}
	return info.State.Consumers
}
