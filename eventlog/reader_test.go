package eventlog_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestReaderConsumerIsEphemeralAckNoneAndDeletedOnClose(t *testing.T) {
	l := mustOpenLog(t)
	mustPublish(t, l, "cellos.events.cell.c1.started", 3)
	ctx := ctxFor(t, 10*time.Second)
	r, err := l.OpenReader(ctx, 2, "cellos.events.cell.>")
	if err != nil {
		t.Fatal(err)
	}
	info, err := l.Stream().Consumer(ctx, r.Name())
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
	if _, err := r.Next(ctx); err == nil {
		t.Error("Next after Close succeeded, want an error")
	}
}

func TestReaderGoesFromHistoryIntoLive(t *testing.T) {
	l := mustOpenLog(t)
	mustPublish(t, l, "cellos.events.cell.c1.started", 5)
	ctx := ctxFor(t, 10*time.Second)
	r, err := l.OpenReader(ctx, 3, "")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got []uint64
	for len(got) < 3 {
		d, err := r.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, d.Seq)
	}
	mustPublish(t, l, "cellos.events.cell.c2.started", 2)
	for len(got) < 5 {
		d, err := r.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, d.Seq)
	}
	want := []uint64{3, 4, 5, 6, 7}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("sequences = %v, want %v", got, want)
		}
	}
}

func TestReaderNextEndsWithContext(t *testing.T) {
	l := mustOpenLog(t)
	ctx := ctxFor(t, 10*time.Second)
	r, err := l.OpenReader(ctx, 1, "")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	short := ctxFor(t, 50*time.Millisecond)
	if _, err := r.Next(short); err != short.Err() || err == nil {
		t.Errorf("Next on an empty stream = %v, want the context's error", err)
	}
}

func TestReaderFetchStopsAtTheEnd(t *testing.T) {
	l := mustOpenLog(t)
	mustPublish(t, l, "cellos.events.cell.c1.started", 2)
	mustPublish(t, l, "cellos.events.formation.f1.created", 3)
	ctx := ctxFor(t, 10*time.Second)
	r, err := l.OpenReader(ctx, 1, "cellos.events.formation.>")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Pending() != 3 {
		t.Fatalf("Pending() = %d, want 3", r.Pending())
	}
	ds, err := r.Fetch(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 || ds[0].Seq != 3 || ds[1].Seq != 4 || ds[1].Pending != 1 {
		t.Fatalf("Fetch(2) = %+v, want sequences 3, 4 with 1 pending", ds)
	}
	start := time.Now()
	ds, err = r.Fetch(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].Seq != 5 {
		t.Fatalf("Fetch(5) = %+v, want sequence 5 only", ds)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Fetch past the end took %v, want it to return at the last message", d)
	}
}
