package web

import (
	"log/slog"
	"testing"
	"time"

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
	h := newHub(events, slog.New(slog.DiscardHandler), 1<<20)
	h.inc, h.pos = old, 1 // as right after it dropped old's subscribers
	testutil.RemoveStream(t, events)
	if err := events.Ensure(ctx); err != nil { // what the watcher does
		t.Fatal(err)
	}
	if !old.Ended() {
		t.Fatal("the old incarnation did not end")
	}
	if _, _, err := h.subscribe(ctx, eventlog.SubjectAll, old); err != errIncarnationEnded {
		t.Fatalf("subscribe with the ended incarnation = %v, want errIncarnationEnded", err)
	}
}
