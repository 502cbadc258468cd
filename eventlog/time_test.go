package eventlog_test

import (
	"testing"
	"time"

	"cellos-allinone/testutil"
)

// SeqAtTime finds the first message stored at or after a time (matching a
// filter), by the time JetStream stored it.
func TestSeqAtTime(t *testing.T) {
	l := mustOpenStream(t)
	ctx := testutil.Ctx(t, 10*time.Second)
	if _, found, err := l.SeqAtTime(ctx, time.Now().Add(-time.Hour), ""); err != nil || found {
		t.Fatalf("SeqAtTime on an empty stream = found %v, %v; want none", found, err)
	}
	seqs := append(mustPublish(t, l, "cellos.events.cell.c1.started", 3), mustPublish(t, l, "cellos.events.cell.c2.started", 3)...)
	stored := make([]time.Time, len(seqs))
	for i, seq := range seqs {
		msg, found, err := l.Get(ctx, seq)
		if err != nil || !found {
			t.Fatalf("get %d: found %v, %v", seq, found, err)
		}
		stored[i] = msg.Time
	}
	for i, at := range stored {
		want := seqs[i]
		for j := i - 1; j >= 0 && !stored[j].Before(at); j-- {
			want = seqs[j] // stored in the same nanosecond
		}
		got, found, err := l.SeqAtTime(ctx, at, "")
		if err != nil || !found || got != want {
			t.Errorf("SeqAtTime(time of #%d) = %d, %v, %v; want %d", seqs[i], got, found, err, want)
		}
	}
	if got, found, err := l.SeqAtTime(ctx, stored[0].Add(-time.Hour), ""); err != nil || !found || got != seqs[0] {
		t.Errorf("SeqAtTime(an hour before the first) = %d, %v, %v; want %d", got, found, err, seqs[0])
	}
	if got, found, err := l.SeqAtTime(ctx, stored[len(stored)-1].Add(time.Nanosecond), ""); err != nil || found {
		t.Errorf("SeqAtTime(after the last) = %d, %v, %v; want none", got, found, err)
	}
	// With a filter: the first c2 message at or after the first message's time.
	if got, found, err := l.SeqAtTime(ctx, stored[0], "cellos.events.cell.c2.>"); err != nil || !found || got != seqs[3] {
		t.Errorf("SeqAtTime(first, c2) = %d, %v, %v; want %d", got, found, err, seqs[3])
	}
	if _, found, err := l.SeqAtTime(ctx, stored[0], "cellos.events.cell.c3.>"); err != nil || found {
		t.Errorf("SeqAtTime(c3) found %v, %v; want none", found, err)
	}
}

func TestHolds(t *testing.T) {
	l := mustOpenStream(t)
	ctx := testutil.Ctx(t, 10*time.Second)
	mustPublish(t, l, "cellos.events.cell.c1.started", 1)
	for filter, want := range map[string]bool{
		"cellos.events.cell.c1.>":      true,
		"cellos.events.cell.c10.>":     false,
		"cellos.events.formation.c1.>": false,
	} {
		if got, err := l.Holds(ctx, filter); err != nil || got != want {
			t.Errorf("Holds(%s) = %v, %v; want %v", filter, got, err, want)
		}
	}
}
