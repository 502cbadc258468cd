package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"cellos-allinone/testutil"
)

// fakeStream is a scripted /ws/events: a log of sequences 1..last of one
// epoch, with a first retained sequence, that drops each connection after
// dropAfter events (0 = never). With batch=1 it sends up to three events a
// frame in batch frames.
type fakeStream struct {
	mu        sync.Mutex
	epoch     string
	first     uint64
	last      uint64
	dropAfter int
	resend    bool // also send the event at since, which a client must skip
	refuseAll bool // close every connection with 4410
	noBatch   bool // refuse batch=1 as an unknown parameter, as servers before it did
	queries   []string
	batches   int // batch frames sent
}

func (f *fakeStream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.queries = append(f.queries, r.URL.RawQuery)
	epoch, first, last, dropAfter, resend, refuseAll, noBatch := f.epoch, f.first, f.last, f.dropAfter, f.resend, f.refuseAll, f.noBatch
	f.mu.Unlock()
	q := r.URL.Query()
	if q.Get("subject") == "bad" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":{"code":"bad_parameter","message":"subject is not valid"}}`)
		return
	}
	if noBatch && q.Has("batch") {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":{"code":"unknown_parameter","message":"unknown parameter \"batch\" (allowed: [since subject epoch])"}}`)
		return
	}
	batch := q.Get("batch") == "1"
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	ctx := r.Context()
	since := last
	if q.Has("since") {
		since, _ = strconv.ParseUint(q.Get("since"), 10, 64)
	}
	reason := fmt.Sprintf(`{"firstSeq":%d,"epoch":%q}`, first, epoch)
	if refuseAll || (q.Has("epoch") && q.Get("epoch") != epoch) || since+1 < first || since > last {
		c.Close(CloseCursorExpired, reason)
		return
	}
	write := func(v any) error {
		b, _ := json.Marshal(v)
		return c.Write(ctx, websocket.MessageText, b)
	}
	if write(map[string]any{"type": "hello", "firstSeq": first, "lastSeq": last, "epoch": epoch}) != nil {
		return
	}
	start := since + 1
	if resend && since > 0 {
		start = since
	}
	sent := 0
	item := func(seq uint64) map[string]any {
		return map[string]any{"seq": seq, "subject": "cellos.events.cell.c-1.started",
			"event": map[string]any{"specversion": "1.0", "id": epoch + strconv.FormatUint(seq, 10)}}
	}
	for seq := start; seq <= last; {
		if dropAfter > 0 && sent == dropAfter {
			c.Close(websocket.StatusGoingAway, "shutdown")
			return
		}
		n := uint64(1)
		if batch {
			n = min(3, last-seq+1)
			if dropAfter > 0 {
				n = min(n, uint64(dropAfter-sent))
			}
		}
		var frame map[string]any
		if n == 1 {
			frame = item(seq)
			frame["type"] = "event"
		} else {
			var items []any
			for i := range n {
				items = append(items, item(seq+i))
			}
			frame = map[string]any{"type": "events", "events": items}
			f.set(func(f *fakeStream) { f.batches++ })
		}
		if write(frame) != nil {
			return
		}
		seq += n
		sent += int(n)
	}
	c.Close(websocket.StatusGoingAway, "shutdown")
}

func (f *fakeStream) set(fn func(*fakeStream)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeStream) queryLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.queries...)
}

func startFake(t *testing.T, f *fakeStream) *Client {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ptr(n uint64) *uint64 { return &n }

// collect follows until n events arrived and returns their sequences.
func collect(t *testing.T, c *Client, fo FollowOptions, n int) []uint64 {
	t.Helper()
	ctx := testutil.Ctx(t, 10*time.Second)
	fo.MinBackoff, fo.MaxBackoff = time.Millisecond, 5*time.Millisecond
	var got []uint64
	err := c.Follow(ctx, fo, func(ev Event) error {
		got = append(got, ev.Seq)
		if len(got) == n {
			return ErrStop
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Follow = %v after %v, want nil", err, got)
	}
	return got
}

func TestFollowResumesWithoutGapOrDuplicate(t *testing.T) {
	f := &fakeStream{epoch: "E1", first: 1, last: 10, dropAfter: 3, resend: true}
	c := startFake(t, f)
	got := collect(t, c, FollowOptions{Since: ptr(0)}, 10)
	if fmt.Sprint(got) != fmt.Sprint(testutil.SeqRange(1, 10)) {
		t.Errorf("sequences = %v, want 1..10 once each", got)
	}
	q := f.queryLog()
	if len(q) < 4 || q[1] != "batch=1&epoch=E1&since=3" {
		t.Errorf("queries = %q, want the 2nd to be batch=1&epoch=E1&since=3", q)
	}
	f.set(func(f *fakeStream) {
		if f.batches == 0 {
			t.Error("no batch frame sent")
		}
	})
}

// A server that does not know batch=1 is asked again without it at once.
func TestFollowFallsBackToSingleFrames(t *testing.T) {
	f := &fakeStream{epoch: "E1", first: 1, last: 5, noBatch: true}
	c := startFake(t, f)
	var retries int
	got := collect(t, c, FollowOptions{Since: ptr(0), OnRetry: func(error, time.Duration) { retries++ }}, 5)
	if fmt.Sprint(got) != fmt.Sprint(testutil.SeqRange(1, 5)) {
		t.Errorf("sequences = %v, want 1..5", got)
	}
	if q := f.queryLog(); len(q) != 2 || q[0] != "batch=1&since=0" || q[1] != "since=0" {
		t.Errorf("queries = %q, want batch=1&since=0, then since=0", q)
	}
	if retries != 0 {
		t.Errorf("%d retries with a backoff, want none", retries)
	}
}

func TestFollowWithoutSinceStartsAtHello(t *testing.T) {
	f := &fakeStream{epoch: "E1", first: 1, last: 5}
	c := startFake(t, f)
	ctx := testutil.Ctx(t, 10*time.Second)
	var got []uint64
	hellos := 0
	err := c.Follow(ctx, FollowOptions{
		MinBackoff: time.Millisecond,
		OnConnect: func(Hello) {
			hellos++
			// New events arrive after the first connection opened.
			f.set(func(f *fakeStream) { f.last += 2 })
		},
	}, func(ev Event) error {
		got = append(got, ev.Seq)
		if len(got) == 4 {
			return ErrStop
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(testutil.SeqRange(6, 9)) {
		t.Errorf("sequences = %v, want 6..9 (only events after the first hello)", got)
	}
	if q := f.queryLog(); q[0] != "batch=1" {
		t.Errorf("first query = %q, want only batch=1 (only new events)", q[0])
	}
}

func TestFollowExpiredReportsLossAndContinues(t *testing.T) {
	f := &fakeStream{epoch: "E1", first: 5, last: 7}
	c := startFake(t, f)
	var lost []Lost
	got := collect(t, c, FollowOptions{Since: ptr(1), OnLost: func(l Lost) { lost = append(lost, l) }}, 3)
	if fmt.Sprint(got) != fmt.Sprint(testutil.SeqRange(5, 7)) {
		t.Errorf("sequences = %v, want 5..7", got)
	}
	want := []Lost{{From: 2, To: 4, OldEpoch: "", NewEpoch: "E1"}}
	if fmt.Sprint(lost) != fmt.Sprint(want) {
		t.Errorf("OnLost calls = %+v, want %+v", lost, want)
	}
	if lost[0].EpochChanged() {
		t.Errorf("EpochChanged() = true for a retention loss")
	}
}

func TestFollowEpochChangeStartsOver(t *testing.T) {
	f := &fakeStream{epoch: "E1", first: 1, last: 3}
	c := startFake(t, f)
	var lost []Lost
	var got []uint64
	ctx := testutil.Ctx(t, 10*time.Second)
	err := c.Follow(ctx, FollowOptions{
		Since:      ptr(0),
		MinBackoff: time.Millisecond,
		OnLost:     func(l Lost) { lost = append(lost, l) },
	}, func(ev Event) error {
		got = append(got, ev.Seq)
		if ev.Seq == 3 {
			// The stream is deleted and created again with fewer events.
			f.set(func(f *fakeStream) { f.epoch, f.first, f.last = "E2", 1, 2 })
		}
		if len(got) == 5 {
			return ErrStop
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[1 2 3 1 2]" {
		t.Errorf("sequences = %v, want [1 2 3 1 2]", got)
	}
	if len(lost) != 1 || !lost[0].EpochChanged() || lost[0].NewEpoch != "E2" {
		t.Errorf("OnLost calls = %+v, want one epoch change to E2", lost)
	}
}

func TestFollowBadParameterIsPermanent(t *testing.T) {
	c := startFake(t, &fakeStream{epoch: "E1", first: 1})
	ctx := testutil.Ctx(t, 10*time.Second)
	err := c.Follow(ctx, FollowOptions{Subject: "bad"}, func(Event) error { return nil })
	var he *HandshakeError
	if !errors.As(err, &he) || he.Status != 400 || he.Code != "bad_parameter" {
		t.Fatalf("Follow = %v, want a 400 bad_parameter HandshakeError", err)
	}
}

func TestFollowCallbackErrorEndsFollow(t *testing.T) {
	c := startFake(t, &fakeStream{epoch: "E1", first: 1, last: 3})
	boom := errors.New("stdout closed")
	ctx := testutil.Ctx(t, 10*time.Second)
	err := c.Follow(ctx, FollowOptions{Since: ptr(0)}, func(Event) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("Follow = %v, want %v", err, boom)
	}
}

func TestBackoffIsExponentialJitteredAndCapped(t *testing.T) {
	minB, maxB := 250*time.Millisecond, 30*time.Second
	for n := range 20 {
		step := min(minB<<n, maxB)
		for range 50 {
			if d := backoff(n, minB, maxB); d < step/2 || d > step {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", n, d, step/2, step)
			}
		}
	}
}

func TestFollowCursorBeyondEndGoesOnWithNewEvents(t *testing.T) {
	// The stream lost its tail: it ends at 3 while the client printed 5.
	f := &fakeStream{epoch: "E1", first: 1, last: 3}
	c := startFake(t, f)
	var lost []Lost
	ctx := testutil.Ctx(t, 10*time.Second)
	var got []uint64
	err := c.Follow(ctx, FollowOptions{
		Since:      ptr(5),
		MinBackoff: time.Millisecond,
		OnLost:     func(l Lost) { lost = append(lost, l) },
		OnConnect:  func(Hello) { f.set(func(f *fakeStream) { f.last++ }) },
	}, func(ev Event) error {
		got = append(got, ev.Seq)
		return ErrStop
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(lost) != 1 || !lost[0].Behind || lost[0].To != 5 {
		t.Errorf("OnLost calls = %+v, want one Behind at 5", lost)
	}
	if fmt.Sprint(got) != "[4]" {
		t.Errorf("sequences = %v, want [4] (the first new event)", got)
	}
	if q := f.queryLog(); len(q) < 2 || q[1] != "batch=1&epoch=E1" {
		t.Errorf("queries = %q, want the 2nd without since", q)
	}
}

func TestFollowRepeated4410BacksOff(t *testing.T) {
	f := &fakeStream{epoch: "E1", first: 5, last: 9, refuseAll: true}
	c := startFake(t, f)
	ctx := testutil.Ctx(t, 500*time.Millisecond)
	err := c.Follow(ctx, FollowOptions{Since: ptr(0), MinBackoff: 40 * time.Millisecond, MaxBackoff: 40 * time.Millisecond},
		func(Event) error { return nil })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Follow = %v, want the context's deadline", err)
	}
	// At most one immediate retry per wait of 20-40 ms: far from a busy loop.
	if n := len(f.queryLog()); n < 2 || n > 60 {
		t.Errorf("%d connection attempts in 500ms, want a few", n)
	}
}
