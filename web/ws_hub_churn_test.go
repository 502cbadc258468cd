package web

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"cellos-allinone/eventlog"
	"cellos-allinone/testutil"
)

// A socket of an ended incarnation that subscribes after the hub dropped
// its subscribers, but before the hub moved on, is refused: it would get
// the new incarnation's events under the old epoch.
func TestHubRefusesASubscriberOfAnEndedIncarnation(t *testing.T) {
	_, nc := testutil.MustStartNATS(t, t.TempDir())
	ctx := testutil.Ctx(t, 30*time.Second)
	events, err := eventlog.Open(ctx, nc, eventlog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	testutil.MustPublish(t, nc, testutil.Event{Subject: "cellos.events.cell.c1.admitted", Payload: []byte(`{}`)})
	old := events.Current()
	h := newHub(events, slog.New(slog.DiscardHandler), 1<<20, time.Minute)
	h.inc, h.pos = old, 1 // as right after it dropped old's subscribers
	testutil.RemoveStream(t, events)
	if err := events.Ensure(ctx); err != nil { // what the watcher does
		t.Fatal(err)
	}
	if !old.Ended() {
		t.Fatal("the old incarnation did not end")
	}
	if _, _, err := h.subscribe(ctx, eventlog.SubjectAll, old, 0); err != errIncarnationEnded {
		t.Fatalf("subscribe with the ended incarnation = %v, want errIncarnationEnded", err)
	}
}

// A hub that jumps over purged events (it fell behind the floor) drops
// with 4410 only the subscribers that needed events below the floor: one
// whose history already covered the jump goes on with the next event.
func TestHubJumpDropsOnlySubscribersThatMissedEvents(t *testing.T) {
	_, nc := testutil.MustStartNATS(t, t.TempDir())
	ctx := testutil.Ctx(t, 30*time.Second)
	events, err := eventlog.Open(ctx, nc, eventlog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ev := testutil.Event{Subject: "cellos.events.cell.c1.admitted", Payload: []byte(`{}`)}
	testutil.MustPublish(t, nc, ev, ev, ev, ev, ev)
	inc := events.Current()
	h := newHub(events, slog.New(slog.DiscardHandler), 1<<20, time.Minute)
	h.inc, h.pos = inc, 0 // it has not read anything yet
	// A live-only socket (needs everything after the hub's position) and
	// one whose history covered 1..5 before it subscribed.
	behind, _, err := h.subscribe(ctx, eventlog.SubjectAll, inc, 0)
	if err != nil {
		t.Fatal(err)
	}
	covered, _, err := h.subscribe(ctx, eventlog.SubjectAll, inc, 5)
	if err != nil {
		t.Fatal(err)
	}
	if err := events.Handle().Purge(ctx, jetstream.WithPurgeSequence(4)); err != nil {
		t.Fatal(err)
	}
	if err := h.deliver(ctx, inc, eventlog.Delivery{Seq: 4, Subject: ev.Subject, Payload: ev.Payload}); err != nil {
		t.Fatal(err)
	}
	var ce *eventlog.CursorError
	select {
	case <-behind.gone:
		if !errors.As(behind.why, &ce) || ce.State.FirstSeq != 4 {
			t.Errorf("subscriber behind the floor dropped with %v, want the CursorError of firstSeq 4", behind.why)
		}
	default:
		t.Error("subscriber that missed events 1..3 not dropped")
	}
	select {
	case <-covered.gone:
		t.Fatalf("subscriber that needed only events after 5 dropped: %v", covered.why)
	default:
	}
	if err := h.deliver(ctx, inc, eventlog.Delivery{Seq: 6, Subject: ev.Subject, Payload: ev.Payload}); err != nil {
		t.Fatal(err)
	}
	got, err := covered.take(ctx, nil)
	if err != nil || len(got) != 2 || got[0].seq != 4 || got[1].seq != 6 {
		t.Fatalf("the covered subscriber's queue: %v, %v; want 4 (skipped by its socket) and 6", got, err)
	}
}
