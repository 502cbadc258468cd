package web_test

// The live stream's promise when the stream changes under it
// (docs/websocket.md, "When the stream changes"): a socket of an old
// incarnation ends with 4410, new sockets get the whole new incarnation,
// and a history read that the floor overtakes ends with 4410 instead of
// jumping.

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go/jetstream"

	"cellos-allinone/eventlog"
	"cellos-allinone/testutil"
	"cellos-allinone/web"
)

// closeReason4410 is the reason of a 4410 close.
type closeReason4410 struct {
	FirstSeq uint64 `json:"firstSeq"`
	Epoch    string `json:"epoch"`
}

// expect4410 reads until c ends and fails unless it ended with 4410; it
// returns the decoded reason.
func expect4410(t *testing.T, c *websocket.Conn, what string) closeReason4410 {
	t.Helper()
	code, reason := testutil.ReadClose(t, c, 15*time.Second)
	if code != web.CloseCursorExpired {
		t.Fatalf("%s: closed with %d %q, want 4410", what, code, reason)
	}
	var r closeReason4410
	if err := json.Unmarshal([]byte(reason), &r); err != nil {
		t.Fatalf("%s: 4410 reason %q is not {\"firstSeq\",\"epoch\"}: %v", what, reason, err)
	}
	return r
}

// openedBefore publishes n events and opens two sockets on them: one live
// only, and one from since that has read every event after it. It returns
// them with the epoch of the stream they read.
func (e *wsEnv) openedBefore(t *testing.T, n int, since uint64) (live, resumed *websocket.Conn, epoch string) {
	t.Helper()
	e.publish(t, "cellos.events.cell.c-1.admitted", n)
	live, _ = e.dial(t, "", nil)
	resumed, _ = e.dial(t, fmt.Sprintf("since=%d", since), nil)
	readEvents(t, resumed, n-int(since))
	return live, resumed, e.a.Events.Epoch()
}

// Deleting the stream (nats stream rm) under open sockets: the server
// creates it again, every socket of the old incarnation ends with 4410
// naming the new epoch, and new sockets get every event of the new one.
func TestStreamDeletedUnderOpenSockets(t *testing.T) {
	e := wsStart(t, web.WSConfig{})
	live, resumed, oldEpoch := e.openedBefore(t, 3, 0)
	filtered, _ := e.dial(t, "since=0&subject=cellos.events.cell.*.started", nil)

	testutil.RemoveStream(t, e.a.Events)
	var newEpoch string
	for name, c := range map[string]*websocket.Conn{"live-only": live, "since=0": resumed, "filtered": filtered} {
		r := expect4410(t, c, name)
		if r.Epoch == "" || r.Epoch == oldEpoch {
			t.Fatalf("%s: 4410 names epoch %q, want the new incarnation's (old %q)", name, r.Epoch, oldEpoch)
		}
		if newEpoch != "" && r.Epoch != newEpoch {
			t.Fatalf("%s: 4410 names epoch %q, another socket %q", name, r.Epoch, newEpoch)
		}
		newEpoch = r.Epoch
	}
	assertNewIncarnationServed(t, e, newEpoch)
}

// Deleting and creating the stream from outside (nats stream rm; nats
// stream add) and publishing at once: the sockets of the old incarnation
// end with 4410, and a socket from since=0 of the new one gets every event
// from sequence 1 — none skipped, none carried over.
func TestStreamRecreatedByAnotherClient(t *testing.T) {
	e := wsStart(t, web.WSConfig{})
	live, resumed, oldEpoch := e.openedBefore(t, 50, 40)

	js := e.a.Events.JetStream()
	ctx := testutil.Ctx(t, 10*time.Second)
	if err := js.DeleteStream(ctx, eventlog.StreamName); err != nil {
		t.Fatal(err)
	}
	// The server creates a deleted stream again at once; whoever wins,
	// the stream is a new incarnation with events right away.
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: eventlog.StreamName, Subjects: []string{eventlog.SubjectAll}, Storage: jetstream.FileStorage})
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		s, err = js.Stream(ctx, eventlog.StreamName)
	}
	if err != nil {
		t.Fatal(err)
	}
	created := s.CachedInfo().Created.UTC().Format(time.RFC3339Nano)
	e.publish(t, "cellos.events.cell.c-2.admitted", 3)
	for name, c := range map[string]*websocket.Conn{"live-only": live, "since=40": resumed} {
		if r := expect4410(t, c, name); r.Epoch != created {
			t.Fatalf("%s: 4410 names epoch %q, want the recreated stream's %q (old %q)", name, r.Epoch, created, oldEpoch)
		}
	}
	assertNewIncarnationServed(t, e, created)
}

// assertNewIncarnationServed checks that sockets opened after a
// recreation, with since=0&epoch=<new> and live-only, get the new
// incarnation's events from its first sequence on.
func assertNewIncarnationServed(t *testing.T, e *wsEnv, epoch string) {
	t.Helper()
	fromStart, hello := e.dial(t, "since=0&epoch="+epoch, nil)
	if hello.Epoch != epoch {
		t.Fatalf("hello after the recreation: epoch %q, want %q", hello.Epoch, epoch)
	}
	liveOnly, liveHello := e.dial(t, "", nil)
	if liveHello.Epoch != epoch {
		t.Fatalf("live-only hello after the recreation: epoch %q, want %q", liveHello.Epoch, epoch)
	}
	seqs := e.publish(t, "cellos.events.cell.c-3.started", 5)
	last := seqs[len(seqs)-1]
	got := seqsOf(readEvents(t, fromStart, int(last)))
	if want := testutil.SeqRange(1, last); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("since=0&epoch=new got %v, want %v", got, want)
	}
	got = seqsOf(readEvents(t, liveOnly, int(last-liveHello.LastSeq)))
	if want := testutil.SeqRange(liveHello.LastSeq+1, last); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("live-only socket after the recreation got %v, want %v", got, want)
	}
}

// A resume whose history read is overtaken by the floor (a purge, or
// expiry under --max-bytes, while the client reads slowly) never jumps:
// it delivers since+1, since+2, … and then ends with 4410.
func TestSlowHistoryOvertakenByTheFloor(t *testing.T) {
	e := wsStart(t, web.WSConfig{WriteTimeout: 30 * time.Second})
	const n, pad = 10000, 2000
	e.publishRaw(t, "cellos.events.cell.c-1.started", n, func() []byte { return e.event("c-1", "started", pad) })
	slow, _ := e.dial(t, "since=0", &websocket.DialOptions{HTTPClient: testutil.SmallBufferClient(t)})
	first := readEvents(t, slow, 10)
	if want := testutil.SeqRange(1, 10); fmt.Sprint(seqsOf(first)) != fmt.Sprint(want) {
		t.Fatalf("first events %v, want %v", seqsOf(first), want)
	}
	// The socket's buffers hold a few MB at most: the server's history
	// reader is far below 8,000 when the floor moves there.
	if err := e.a.Events.Handle().Purge(testutil.Ctx(t, 5*time.Second), jetstream.WithPurgeSequence(8000)); err != nil {
		t.Fatal(err)
	}
	ctx := testutil.Ctx(t, 30*time.Second)
	prev := uint64(10)
	for {
		f, err := readFrame(ctx, slow)
		if err != nil {
			var ce websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != web.CloseCursorExpired {
				t.Fatalf("after seq %d: %v, want frames up to the floor and then 4410", prev, err)
			}
			var r closeReason4410
			if json.Unmarshal([]byte(ce.Reason), &r) != nil || r.FirstSeq != 8000 {
				t.Fatalf("4410 reason %q, want firstSeq 8000", ce.Reason)
			}
			return
		}
		if f.Seq != prev+1 {
			t.Fatalf("after seq %d the socket sent seq %d: a silent jump over the purged events, want 4410", prev, f.Seq)
		}
		prev = f.Seq
	}
}
