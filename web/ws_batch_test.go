package web_test

// batch=1 on /ws/events (docs/websocket.md, "Batch frames"): several
// events per frame, the same events in the same order as without it, each
// batch frame within its bounds, and every other rule unchanged.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go/jetstream"

	"cellos-allinone/testutil"
	"cellos-allinone/web"
)

const (
	eventHead = `{"type":"event",`
	batchHead = `{"type":"events","events":[`
)

// unpacked is what a batch=1 socket sent, frame by frame.
type unpacked struct {
	items   [][]byte // every event's item {"seq","subject","event"}, as sent
	events  []wsFrame
	frames  int // frames read
	batches int // of which batch frames
	// the largest batch frame, in bytes and in events
	maxBytes, maxEvents int
}

// readFrameItems reads one frame of a batch=1 socket and returns the items
// of its events: one for an event frame, all of a batch frame.
func readFrameItems(ctx context.Context, c *websocket.Conn) (items [][]byte, batch bool, raw []byte, err error) {
	typ, raw, err := c.Read(ctx)
	if err != nil {
		return nil, false, nil, err
	}
	if typ != websocket.MessageText {
		return nil, false, raw, fmt.Errorf("frame of type %v, want text", typ)
	}
	switch {
	case bytes.HasPrefix(raw, []byte(eventHead)):
		return [][]byte{append([]byte("{"), raw[len(eventHead):]...)}, false, raw, nil
	case bytes.HasPrefix(raw, []byte(batchHead)):
		var f struct {
			Type   string            `json:"type"`
			Events []json.RawMessage `json:"events"`
		}
		if err := json.Unmarshal(raw, &f); err != nil || f.Type != "events" {
			return nil, true, raw, fmt.Errorf("batch frame %.200s: %v", raw, err)
		}
		if len(f.Events) < 2 {
			return nil, true, raw, fmt.Errorf("batch frame of %d events, want at least 2 (one goes as an event frame)", len(f.Events))
		}
		for _, it := range f.Events {
			items = append(items, it)
		}
		return items, true, raw, nil
	}
	return nil, false, raw, fmt.Errorf("frame %.200s is neither an event nor a batch frame", raw)
}

// readBatched reads frames of a batch=1 socket until it has n events.
func readBatched(t testing.TB, c *websocket.Conn, n int) unpacked {
	t.Helper()
	ctx := testutil.Ctx(t, 30*time.Second)
	var u unpacked
	for len(u.items) < n {
		items, batch, raw, err := readFrameItems(ctx, c)
		if err != nil {
			t.Fatalf("after %d of %d events: %v", len(u.items), n, err)
		}
		u.frames++
		if batch {
			u.batches++
			u.maxBytes, u.maxEvents = max(u.maxBytes, len(raw)), max(u.maxEvents, len(items))
		}
		for _, it := range items {
			var f wsFrame
			if err := json.Unmarshal(it, &f); err != nil {
				t.Fatalf("item %s: %v", it, err)
			}
			u.items = append(u.items, it)
			u.events = append(u.events, f)
		}
	}
	if len(u.items) != n {
		t.Fatalf("read %d events, want exactly %d (more came in the last frame)", len(u.items), n)
	}
	return u
}

// readRaw reads n frames as sent.
func readRaw(t testing.TB, c *websocket.Conn, n int) [][]byte {
	t.Helper()
	ctx := testutil.Ctx(t, 30*time.Second)
	out := make([][]byte, 0, n)
	for len(out) < n {
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("after %d of %d frames: %v", len(out), n, err)
		}
		out = append(out, b)
	}
	return out
}

// A batch=1 socket from since=0, while events are published, gets every
// event exactly once in order across the hand-over from history to live,
// each item byte for byte the event frame a socket without batch gets
// (without its type); history comes in batch frames.
func TestWSBatchCarriesEveryEventInOrder(t *testing.T) {
	e := wsStart(t, web.WSConfig{})
	const history, total = 600, 2000
	for i := range history / 100 {
		e.publish(t, fmt.Sprintf("cellos.events.cell.c%d.started", i), 100)
	}
	plain, _ := e.dial(t, "since=0", nil)
	batched, _ := e.dial(t, "since=0&batch=1", nil)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := history / 100; i < total/100; i++ {
			e.publish(t, fmt.Sprintf("cellos.events.formation.f%d.running", i), 100)
		}
	})
	u := readBatched(t, batched, total)
	frames := readRaw(t, plain, total)
	wg.Wait()
	if got, want := seqsOf(u.events), testutil.SeqRange(1, total); !slices.Equal(got, want) {
		t.Fatalf("batch=1: first gap or duplicate at index %d of %d", firstMismatch(got, want), total)
	}
	for i, f := range frames {
		if want := append([]byte("{"), bytes.TrimPrefix(f, []byte(eventHead))...); !bytes.Equal(u.items[i], want) {
			t.Fatalf("item %d = %s, want the event frame's item %s", i, u.items[i], want)
		}
	}
	if u.batches == 0 || u.frames >= total/2 {
		t.Errorf("%d events came in %d frames (%d batch frames), want history batched", total, u.frames, u.batches)
	}
	t.Logf("%d events in %d frames, %d of them batch frames (largest %d events, %d bytes)", total, u.frames, u.batches, u.maxEvents, u.maxBytes)
}

// Without batch, or with batch=0, frames are exactly as before: one event
// frame per event, the same bytes.
func TestWSWithoutBatchIsUnchanged(t *testing.T) {
	e := wsStart(t, web.WSConfig{})
	e.publish(t, "cellos.events.cell.c1.started", 300)
	absent, _ := e.dial(t, "since=0", nil)
	zero, _ := e.dial(t, "since=0&batch=0", nil)
	seqs := e.publish(t, "cellos.events.cell.c1.completed", 200)
	n := int(seqs[len(seqs)-1])
	a, z := readRaw(t, absent, n), readRaw(t, zero, n)
	for i := range a {
		if !bytes.Equal(a[i], z[i]) {
			t.Fatalf("frame %d: batch=0 sent %s, without batch %s", i, z[i], a[i])
		}
		if !bytes.HasPrefix(a[i], []byte(fmt.Sprintf(`{"type":"event","seq":%d,`, i+1))) {
			t.Fatalf("frame %d = %.80s, want the event frame of seq %d", i, a[i], i+1)
		}
	}
}

func TestWSBadBatchGets400WithoutSocket(t *testing.T) {
	e := wsStart(t, web.WSConfig{})
	for _, q := range []string{"batch=2", "batch=true", "batch=", "batch=01", "batch=%201", "batch=-1", "batch=1&batch=1", "since=0&batch=yes"} {
		c, resp, err := e.tryDial(t, q, nil)
		if err == nil {
			c.CloseNow()
			t.Errorf("?%s: upgraded, want HTTP 400", q)
			continue
		}
		if resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Errorf("?%s: %v, want HTTP 400", q, err)
			continue
		}
		if got := decodeError(t, respBody(resp)); got.Error.Code != "bad_parameter" {
			t.Errorf("?%s: error %+v, want bad_parameter", q, got)
		}
	}
	if st := e.a.HTTP.SocketStats(); st.Open != 0 || len(st.Closed) != 0 || e.consumers(t) != 0 {
		t.Errorf("after refused handshakes: %+v, %d consumers; want no socket and no consumer", st, e.consumers(t))
	}
}

// Batch frames stay within BatchBytes and BatchEvents, in history and
// live; an event too large to share a frame within the bound comes alone
// as an event frame.
func TestWSBatchFramesStayWithinBounds(t *testing.T) {
	const maxBytes, maxEvents = 4096, 7
	e := wsStart(t, web.WSConfig{BatchBytes: maxBytes, BatchEvents: maxEvents})
	rng := rand.New(rand.NewPCG(3, 4))
	mixed := func(n int) {
		e.publishRaw(t, "cellos.events.cell.c1.started", n, func() []byte {
			pad := rng.IntN(900)
			if rng.IntN(20) == 0 {
				pad = maxBytes + rng.IntN(3000) // alone in its frame
			}
			return e.event("c1", "started", pad)
		})
	}
	mixed(300)
	c, _ := e.dial(t, "since=0&batch=1", nil)
	u := readBatched(t, c, 300)
	for range 10 {
		mixed(50)
	}
	u2 := readBatched(t, c, 500)
	got := append(seqsOf(u.events), seqsOf(u2.events)...)
	if want := testutil.SeqRange(1, 800); !slices.Equal(got, want) {
		t.Fatalf("first gap or duplicate at index %d", firstMismatch(got, want))
	}
	for _, r := range []unpacked{u, u2} {
		if r.maxBytes > maxBytes || r.maxEvents > maxEvents {
			t.Errorf("largest batch frame: %d bytes, %d events; want at most %d and %d", r.maxBytes, r.maxEvents, maxBytes, maxEvents)
		}
	}
	if u.batches == 0 {
		t.Errorf("history of 300 events came in %d frames without a batch frame", u.frames)
	}
}

// A client that reconnects with the last sequence it handed on, at any
// point inside a batch frame, while events are published, ends up with
// every sequence exactly once.
func TestWSBatchResumeUnderConcurrentPublishing(t *testing.T) {
	e := wsStart(t, web.WSConfig{})
	const total = 3000
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		for range total / 100 {
			e.publish(t, "cellos.events.cell.c1.started", 100)
		}
	}()
	rng := rand.New(rand.NewPCG(5, 6))
	var got []uint64
	var since uint64
	ctx := testutil.Ctx(t, 40*time.Second)
	for reconnects := 0; len(got) < total; reconnects++ {
		if reconnects > 200 {
			t.Fatalf("still missing events after %d reconnects: have %d", reconnects, len(got))
		}
		c, _ := e.dial(t, fmt.Sprintf("since=%d&batch=1", since), nil)
	frames:
		for n := 1 + rng.IntN(400); len(got) < total; {
			items, _, _, err := readFrameItems(ctx, c)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			for _, it := range items {
				var f wsFrame
				if err := json.Unmarshal(it, &f); err != nil {
					t.Fatal(err)
				}
				got = append(got, f.Seq)
				since = f.Seq
				if n--; n == 0 {
					break frames // the rest of the frame is dropped, as a client that stops does
				}
			}
		}
		c.Close(websocket.StatusNormalClosure, "")
	}
	<-pubDone
	if want := testutil.SeqRange(1, total); !slices.Equal(got, want) {
		t.Fatalf("received %d sequences, first gap or duplicate at %d; want 1..%d exactly once", len(got), firstMismatch(got, want), total)
	}
}

// 4410 is unchanged with batch=1: at the upgrade for a cursor below the
// floor (since=0 starts at it), and for a live socket whose stream is
// deleted.
func TestWSBatchCursorExpired4410(t *testing.T) {
	e := wsStart(t, web.WSConfig{})
	e.publish(t, "cellos.events.cell.c1.started", 10)
	if err := e.a.Events.Handle().Purge(testutil.Ctx(t, 5*time.Second), jetstream.WithPurgeSequence(6)); err != nil {
		t.Fatal(err)
	}
	if r := expect4410(t, e.dialNoHello(t, "since=3&batch=1", nil), "since=3&batch=1"); r.FirstSeq != 6 {
		t.Errorf("4410 reason %+v, want firstSeq 6", r)
	}
	live, _ := e.dial(t, "since=5&batch=1", nil)
	if u := readBatched(t, live, 5); !slices.Equal(seqsOf(u.events), testutil.SeqRange(6, 10)) {
		t.Fatalf("since=5: %v, want 6..10", seqsOf(u.events))
	}
	// since=0 holds nothing: it starts at the floor.
	all, hello := e.dial(t, "since=0&batch=1", nil)
	if u := readBatched(t, all, 5); !slices.Equal(seqsOf(u.events), testutil.SeqRange(6, 10)) || hello.FirstSeq != 6 {
		t.Fatalf("since=0: %v, hello %+v; want 6..10, firstSeq 6", seqsOf(u.events), hello)
	}
	old := e.a.Events.Epoch()
	testutil.RemoveStream(t, e.a.Events)
	if r := expect4410(t, live, "live batch=1 socket"); r.Epoch == old || r.Epoch == "" {
		t.Errorf("4410 after the deletion names epoch %q, want the new one (old %q)", r.Epoch, old)
	}
}

// A history read with batch=1 that the floor overtakes delivers since+1,
// since+2, … and ends with 4410, never jumping.
func TestWSBatchSlowHistoryOvertakenByTheFloor(t *testing.T) {
	e := wsStart(t, web.WSConfig{WriteTimeout: 30 * time.Second})
	const n, pad = 10000, 2000
	e.publishRaw(t, "cellos.events.cell.c-1.started", n, func() []byte { return e.event("c-1", "started", pad) })
	slow, _ := e.dial(t, "since=0&batch=1", &websocket.DialOptions{HTTPClient: testutil.SmallBufferClient(t)})
	ctx := testutil.Ctx(t, 30*time.Second)
	var prev uint64
	items, _, _, err := readFrameItems(ctx, slow)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		var f wsFrame
		if err := json.Unmarshal(it, &f); err != nil || f.Seq != prev+1 {
			t.Fatalf("first frame: item %s after seq %d (%v)", it, prev, err)
		}
		prev = f.Seq
	}
	// The socket's buffers hold a few MB at most: the server's history
	// reader is far below 8,000 when the floor moves there.
	if err := e.a.Events.Handle().Purge(testutil.Ctx(t, 5*time.Second), jetstream.WithPurgeSequence(8000)); err != nil {
		t.Fatal(err)
	}
	for {
		items, _, _, err := readFrameItems(ctx, slow)
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
		for _, it := range items {
			var f wsFrame
			if err := json.Unmarshal(it, &f); err != nil {
				t.Fatal(err)
			}
			if f.Seq != prev+1 {
				t.Fatalf("after seq %d the socket sent seq %d: a silent jump over the purged events, want 4410", prev, f.Seq)
			}
			prev = f.Seq
		}
	}
}

// A live event that reaches a batch=1 socket later than MaxLag after it
// was stored closes it with 4408, as without batch.
func TestWSBatchLaggingSocketCloses4408(t *testing.T) {
	e := wsStart(t, web.WSConfig{MaxLag: time.Nanosecond})
	c, _ := e.dial(t, "batch=1", nil)
	e.publish(t, "cellos.events.cell.c1.started", 5)
	if code, reason := testutil.ReadClose(t, c, 10*time.Second); code != web.CloseSlowClient {
		t.Fatalf("closed with %d %q, want 4408", code, reason)
	}
	testutil.WaitFor(t, 5*time.Second, "the socket counted as slow", func() bool {
		return e.a.HTTP.SocketStats().Closed[web.EndSlow] == 1
	})
}

// A busy batch=1 socket starts a round of frames at most once per
// BatchWait: events published one by one right after a frame wait for
// the next round and share a frame.
func TestWSBatchWaitGathersABusyStream(t *testing.T) {
	const wait = 400 * time.Millisecond
	e := wsStart(t, web.WSConfig{BatchWait: wait})
	c, _ := e.dial(t, "batch=1", nil)
	e.publish(t, "cellos.events.cell.c1.started", 1)
	if u := readBatched(t, c, 1); u.frames != 1 {
		t.Fatalf("first event in %d frames", u.frames)
	}
	// Published one by one: without the wait each could leave alone.
	for range 5 {
		e.publish(t, "cellos.events.cell.c1.started", 1)
	}
	u := readBatched(t, c, 5)
	if !slices.Equal(seqsOf(u.events), testutil.SeqRange(2, 6)) {
		t.Fatalf("sequences %v, want 2..6", seqsOf(u.events))
	}
	if u.frames == 5 {
		t.Errorf("5 events published within the wait came in 5 frames, want them to share")
	}
}
