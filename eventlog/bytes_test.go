package eventlog_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"cellos-allinone/eventlog"
	"cellos-allinone/testutil"
)

// Events of half a MiB each (ingest accepts up to 1 MiB): 32 MiB in all.
const (
	bigEvent  = 512 << 10
	bigEvents = 64
)

func publishBig(t *testing.T, l *eventlog.Stream) {
	t.Helper()
	publishCopies(t, l, "cellos.events.cell.big.started", bytes.Repeat([]byte("x"), bigEvent), bigEvents)
}

// deliveredWhenSettled waits until the server has handed the consumer all
// it asked for — every message, or a pull request fulfilled with none
// left waiting — and returns how many messages it delivered.
func deliveredWhenSettled(t *testing.T, l *eventlog.Stream, description string) uint64 {
	t.Helper()
	var delivered uint64
	testutil.WaitFor(t, 20*time.Second, "the consumer's pull requests to settle", func() bool {
		lister := l.Handle().ListConsumers(testutil.Ctx(t, 5*time.Second))
		for ci := range lister.Info() {
			if description != "" && ci.Config.Description != description {
				continue
			}
			delivered = ci.Delivered.Stream
			return delivered == bigEvents || delivered > 0 && ci.NumWaiting == 0
		}
		return false
	})
	return delivered
}

// Follow's read-ahead is bounded by bytes: a handler that stops on the
// first of many large events holds at most FollowBufferBytes of them.
func TestFollowReadAheadIsBoundedByBytes(t *testing.T) {
	l := mustOpenStream(t)
	publishBig(t, l)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = l.Follow(ctx, l.Current(), 1, func(eventlog.Delivery) error {
			close(first)
			<-ctx.Done()
			return ctx.Err()
		})
	}()
	<-first
	n := deliveredWhenSettled(t, l, "")
	if got, limit := n*bigEvent, uint64(eventlog.FollowBufferBytes+bigEvent); got > limit {
		t.Fatalf("the server delivered %d events (%d MiB) to a stopped Follow, want at most %d MiB buffered", n, got>>20, limit>>20)
	}
	cancel()
	<-done
}

// A Reader's read-ahead is bounded by bytes too.
func TestReaderReadAheadIsBoundedByBytes(t *testing.T) {
	l := mustOpenStream(t)
	publishBig(t, l)
	ctx := testutil.Ctx(t, 20*time.Second)
	r := mustOpenReader(t, ctx, l, l.Current(), 1, "")
	ds, err := r.Batch(ctx, eventlog.ReaderBatch)
	if err != nil {
		t.Fatal(err)
	}
	if got, limit := len(ds)*bigEvent, eventlog.ReaderBufferBytes; got > limit {
		t.Fatalf("one Batch of %d events holds %d MiB, want at most %d MiB", len(ds), got>>20, limit>>20)
	}
	n := deliveredWhenSettled(t, l, eventlog.ReaderDescription)
	if got, limit := n*bigEvent, uint64(eventlog.ReaderBufferBytes+bigEvent); got > limit {
		t.Fatalf("the server delivered %d events (%d MiB) to a Reader that read one batch, want at most %d MiB buffered", n, got>>20, limit>>20)
	}
}
