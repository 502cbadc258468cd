package eventlog_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"cellos-allinone/eventlog"
	"cellos-allinone/testutil"
)

func TestReaderConsumerIsEphemeralAckNoneAndDeletedOnClose(t *testing.T) {
	l := mustOpenStream(t)
	mustPublish(t, l, "cellos.events.cell.c1.started", 3)
	ctx := testutil.Ctx(t, 10*time.Second)
	r := mustOpenReader(t, ctx, l, l.Current(), 2, "cellos.events.cell.>")
	info, err := l.Handle().Consumer(ctx, r.Name())
	if err != nil {
		t.Fatalf("consumer %s: %v", r.Name(), err)
	}
	cfg := info.CachedInfo().Config
	if cfg.Durable != "" || cfg.AckPolicy != jetstream.AckNonePolicy || cfg.InactiveThreshold != 5*time.Minute ||
		cfg.DeliverPolicy != jetstream.DeliverByStartSequencePolicy || cfg.OptStartSeq != 2 ||
		cfg.FilterSubject != "cellos.events.cell.>" || !cfg.MemoryStorage {
		t.Errorf("consumer config = %+v, want ephemeral, AckNone, InactiveThreshold 5m, by start sequence 2, filtered, memory", cfg)
	}
	if r.Pending() != 2 {
		t.Errorf("Pending() = %d, want 2", r.Pending())
	}
	if n := consumerCount(t, l); n != 1 {
		t.Errorf("consumers while open = %d, want 1", n)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if n := consumerCount(t, l); n != 0 {
		t.Errorf("consumers after Close = %d, want 0", n)
	}
	if _, err := r.Batch(ctx, 1); err == nil {
		t.Error("Batch after Close succeeded, want an error")
	}
}

func TestReaderBatchStopsAtTheEnd(t *testing.T) {
	l := mustOpenStream(t)
	mustPublish(t, l, "cellos.events.cell.c1.started", 2)
	mustPublish(t, l, "cellos.events.formation.f1.created", 3)
	ctx := testutil.Ctx(t, 10*time.Second)
	r := mustOpenReader(t, ctx, l, l.Current(), 1, "cellos.events.formation.>")
	if r.Pending() != 3 {
		t.Fatalf("Pending() = %d, want 3", r.Pending())
	}
	ds, err := r.Batch(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 || ds[0].Seq != 3 || ds[1].Seq != 4 || ds[1].Pending != 1 {
		t.Fatalf("Batch(2) = %+v, want sequences 3, 4 with 1 pending", ds)
	}
	start := time.Now()
	ds, err = r.Batch(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].Seq != 5 {
		t.Fatalf("Batch(5) = %+v, want sequence 5 only", ds)
	}
	if ds, err = r.Batch(ctx, 5); err != nil || len(ds) != 0 {
		t.Fatalf("Batch at the end = %+v, %v, want nothing", ds, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Batch at the end took %v, want it to return at once", d)
	}
}

// batches reads r to its end and returns the sequences and the error that
// ended it (nil at the end of what is stored).
func batches(ctx context.Context, r *eventlog.Reader, n int) ([]uint64, error) {
	var seqs []uint64
	for {
		ds, err := r.Batch(ctx, n)
		for _, d := range ds {
			seqs = append(seqs, d.Seq)
		}
		if err != nil || len(ds) == 0 {
			return seqs, err
		}
	}
}

// The floor overtakes a reader between two batches: the reader hands over
// what it read and then a *CursorError — never the events after the
// floor as if nothing had happened. Unfiltered and filtered alike.
func TestReaderOvertakenByTheFloorEndsWithCursorError(t *testing.T) {
	for _, filter := range []string{"", "cellos.events.cell.c1.>"} {
		t.Run("filter="+filter, func(t *testing.T) {
			l := mustOpenStream(t)
			mustPublish(t, l, "cellos.events.cell.c1.started", 20)
			ctx := testutil.Ctx(t, 10*time.Second)
			r := mustOpenReader(t, ctx, l, l.Current(), 3, filter)
			ds, err := r.Batch(ctx, 4)
			if err != nil || len(ds) != 4 || ds[3].Seq != 6 {
				t.Fatalf("first Batch = %+v, %v, want 3..6", ds, err)
			}
			if err := l.Handle().Purge(ctx, jetstream.WithPurgeSequence(12)); err != nil {
				t.Fatal(err)
			}
			seqs, err := batches(ctx, r, 4)
			var ce *eventlog.CursorError
			if !errors.As(err, &ce) || ce.State.FirstSeq != 12 {
				t.Fatalf("after the purge: %v then %v, want a *CursorError with first sequence 12", seqs, err)
			}
			for i, s := range seqs {
				if s != 7+uint64(i) {
					t.Fatalf("after the purge the reader handed over %v: a jump, want only sequences right after 6", seqs)
				}
			}
		})
	}
}

// Messages deleted one by one (nats stream rmm) leave a jump that loses
// nothing the reader could still get: it goes on.
func TestReaderJumpsOverDeletedMessages(t *testing.T) {
	l := mustOpenStream(t)
	mustPublish(t, l, "cellos.events.cell.c1.started", 10)
	ctx := testutil.Ctx(t, 10*time.Second)
	for _, s := range []uint64{4, 5, 8} {
		if err := l.Handle().DeleteMsg(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	r := mustOpenReader(t, ctx, l, l.Current(), 1, "")
	seqs, err := batches(ctx, r, 3)
	if err != nil || fmt.Sprint(seqs) != "[1 2 3 6 7 9 10]" {
		t.Fatalf("read %v, %v; want [1 2 3 6 7 9 10] and no error", seqs, err)
	}
}

// A reader whose stream is deleted and created again ends with a
// *CursorError that names the new epoch.
func TestReaderOfADeletedStreamNamesTheNewEpoch(t *testing.T) {
	l := mustOpenStream(t)
	watch(t, l)
	mustPublish(t, l, "cellos.events.cell.c1.started", 10)
	ctx := testutil.Ctx(t, 20*time.Second)
	old := l.Current()
	r := mustOpenReader(t, ctx, l, old, 1, "")
	if _, err := r.Batch(ctx, 2); err != nil {
		t.Fatal(err)
	}
	testutil.RemoveStream(t, l)
	_, err := batches(ctx, r, 2)
	var ce *eventlog.CursorError
	if !errors.As(err, &ce) || ce.State.Epoch == "" || ce.State.Epoch == old.Epoch {
		t.Fatalf("read after the stream was deleted: %v, want a *CursorError with the new epoch (old %s)", err, old.Epoch)
	}
	if !old.Ended() || old.Next() == nil || old.Next().Epoch != ce.State.Epoch {
		t.Fatalf("old incarnation ended %v, next %+v; want it ended with the new epoch %s", old.Ended(), old.Next(), ce.State.Epoch)
	}
}
