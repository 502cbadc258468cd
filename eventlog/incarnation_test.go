package eventlog_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"cellos-allinone/eventlog"
	"cellos-allinone/testutil"
)

// A Follow bound to an incarnation that another client ended (nats stream
// rm; nats stream add; publish) before the log noticed delivers nothing of
// the new one: it ends with a *CursorError naming the new epoch.
func TestFollowRefusesAnotherIncarnation(t *testing.T) {
	l := mustOpenStream(t)
	inc := l.Current()
	ctx := testutil.Ctx(t, 30*time.Second)
	js := l.JetStream()
	if err := js.DeleteStream(ctx, eventlog.StreamName); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: eventlog.StreamName, Subjects: []string{eventlog.SubjectAll}}); err != nil {
		t.Fatal(err)
	}
	testutil.MustPublish(t, js.Conn(), testutil.Event{Subject: "cellos.events.cell.c9.admitted", Payload: []byte(`{"inc":2}`)})
	fctx, stop := inc.Bind(ctx)
	defer stop()
	err := l.Follow(fctx, inc, 1, func(d eventlog.Delivery) error {
		t.Errorf("Follow bound to %s delivered seq %d %s of another incarnation", inc.Epoch, d.Seq, d.Payload)
		return errors.New("stop")
	})
	var ce *eventlog.CursorError
	if !errors.As(err, &ce) || ce.State.Epoch == inc.Epoch || ce.State.Epoch == "" {
		t.Fatalf("Follow = %v, want a *CursorError naming the new epoch (old %s)", err, inc.Epoch)
	}
}

// A fetch that hands over nothing although matching messages are stored
// (here the consumer is paused, standing in for a slow server) is an
// error, not "nothing left": the caller must not end its history there.
func TestReaderEmptyFetchWithStoredMessagesIsAnError(t *testing.T) {
	l := mustOpenStream(t)
	mustPublish(t, l, "cellos.events.cell.c1.admitted", 5)
	ctx := testutil.Ctx(t, 30*time.Second)
	rd := mustOpenReader(t, ctx, l, l.Current(), 1, "")
	if _, err := l.JetStream().PauseConsumer(ctx, eventlog.StreamName, rd.Name(), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	ds, err := rd.Batch(ctx, 100)
	if err == nil || len(ds) != 0 {
		t.Fatalf("Batch on a consumer that hands over nothing = %d events, %v; want an error (5 events are stored)", len(ds), err)
	}
}

// Stale answers do not move the log back: an observation requested before
// the incarnation changed is ignored.
func TestIncarnationEndsOnceWithItsSuccessor(t *testing.T) {
	l := mustOpenStream(t)
	watch(t, l)
	first := l.Current()
	ctx := testutil.Ctx(t, 30*time.Second)
	testutil.RemoveStream(t, l)
	select {
	case <-first.Done():
	case <-ctx.Done():
		t.Fatal("the first incarnation did not end after its stream was deleted")
	}
	next := first.Next()
	if next == nil || next.Epoch == first.Epoch || l.Current() != next {
		t.Fatalf("after the deletion: next %+v, current %+v; want a new current incarnation", next, l.Current())
	}
	if _, err := l.State(context.Background()); err != nil {
		t.Fatal(err)
	}
	if l.Current() != next || next.Ended() {
		t.Fatal("a state read of the same stream changed the incarnation")
	}
}
