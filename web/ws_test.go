package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go/jetstream"

	"cellos-allinone/eventlog"
	"cellos-allinone/testutil"
	"cellos-allinone/web"
)

func TestWSWithoutSinceSendsOnlyNewEvents(t *testing.T) {
	e := wsStart(t, web.WSConfig{})
	e.publish(t, "cellos.events.cell.c1.admitted", 5)
	c, hello := e.dial(t, "", nil)
	if hello.FirstSeq != 1 || hello.LastSeq != 5 || hello.Epoch != e.a.Events.Epoch() {
		t.Errorf("hello = %+v, want firstSeq 1, lastSeq 5, epoch %q", hello, e.a.Events.Epoch())
	}
	e.publish(t, "cellos.events.cell.c1.started", 3)
	got := readEvents(t, c, 3)
	if !slices.Equal(seqsOf(got), []uint64{6, 7, 8}) {
		t.Errorf("sequences = %v, want [6 7 8]", seqsOf(got))
	}
	if got[0].Subject != "cellos.events.cell.c1.started" || !json.Valid(got[0].Event) || got[0].Event[0] != '{' {
		t.Errorf("frame = %+v, want the subject and the CloudEvent object", got[0])
	}
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Errorf("client close: %v, want a clean close handshake", err)
	}
}

func TestWSSince(t *testing.T) {
	e := wsStart(t, web.WSConfig{})
	e.publish(t, "cellos.events.cell.c1.admitted", 5)
	tests := []struct {
		since     string
		wantFirst func(last uint64) uint64
	}{
		{"0", func(uint64) uint64 { return 1 }},
		{"1", func(uint64) uint64 { return 2 }},
		{"4", func(uint64) uint64 { return 5 }},
		{"5", func(uint64) uint64 { return 6 }}, // caught up: the next one published
	}
	for _, tt := range tests {
		t.Run("since="+tt.since, func(t *testing.T) {
			c, _ := e.dial(t, "since="+tt.since, nil)
			last := e.lastSeq(t)
			next := e.publish(t, "cellos.events.cell.c2.started", 1)[0]
			want := testutil.SeqRange(tt.wantFirst(last), next)
			got := seqsOf(readEvents(t, c, len(want)))
			if !slices.Equal(got, want) {
				t.Errorf("since=%s: sequences = %v, want %v", tt.since, got, want)
			}
			c.Close(websocket.StatusNormalClosure, "")
		})
	}
}

func TestWSSubjectFilter(t *testing.T) {
	e := wsStart(t, web.WSConfig{})
	var want []uint64
	for i := range 4 {
		e.publish(t, fmt.Sprintf("cellos.events.cell.c%d.admitted", i), 1)
		want = append(want, e.publish(t, fmt.Sprintf("cellos.events.cell.c%d.started", i), 1)...)
		e.publish(t, fmt.Sprintf("cellos.events.formation.f%d.created", i), 1)
	}
	c, _ := e.dial(t, "since=0&subject=cellos.events.cell.*.started", nil)
	want = append(want, e.publish(t, "cellos.events.cell.c9.started", 1)...)
	got := readEvents(t, c, len(want))
	if !slices.Equal(seqsOf(got), want) {
		t.Errorf("sequences = %v, want %v", seqsOf(got), want)
	}
	for _, f := range got {
		if !strings.HasSuffix(f.Subject, ".started") {
			t.Errorf("subject %q does not match the filter", f.Subject)
		}
	}
}

// A client that reconnects with the last sequence it saw, while events
// are being published, ends up with every sequence exactly once.
func TestWSResumeUnderConcurrentPublishing(t *testing.T) {
	e := wsStart(t, web.WSConfig{})
	const total = 3000
	pubDone := make(chan []uint64, 1)
	go func() {
		var seqs []uint64
		for range total / 100 {
			seqs = append(seqs, e.publish(t, "cellos.events.cell.c1.started", 100)...)
		}
		pubDone <- seqs
	}()
	rng := rand.New(rand.NewPCG(1, 2))
	var got []uint64
	var since uint64
	ctx := testutil.Ctx(t, 40*time.Second)
	for reconnects := 0; len(got) < total; reconnects++ {
		if reconnects > 200 {
			t.Fatalf("still missing events after %d reconnects: have %d", reconnects, len(got))
		}
		c, _ := e.dial(t, fmt.Sprintf("since=%d", since), nil)
		for n := 1 + rng.IntN(400); n > 0 && len(got) < total; n-- {
			f, err := readFrame(ctx, c)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			got = append(got, f.Seq)
			since = f.Seq
		}
		c.Close(websocket.StatusNormalClosure, "")
	}
	published := <-pubDone
	if !slices.Equal(got, published) || !slices.Equal(got, testutil.SeqRange(1, total)) {
		t.Fatalf("received %d sequences, first gap or duplicate at %d; want 1..%d exactly once", len(got), firstMismatch(got, testutil.SeqRange(1, total)), total)
	}
}

func firstMismatch(a, b []uint64) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestWSCursorExpired4410(t *testing.T) {
	e := wsStart(t, web.WSConfig{})
	e.publish(t, "cellos.events.cell.c1.started", 10)
	if err := e.a.Events.Handle().Purge(testutil.Ctx(t, 5*time.Second), jetstream.WithPurgeSequence(6)); err != nil {
		t.Fatal(err)
	}
	epoch := e.a.Events.Epoch()
	wantReason := fmt.Sprintf(`{"firstSeq":6,"epoch":%q}`, epoch)
	for _, q := range []string{
		"since=3",                            // events 4 and 5 are gone
		"since=1",                            // so are 2..5
		"since=11",                           // beyond the end: another incarnation
		"since=7&epoch=2001-01-01T00:00:00Z", // the stream was recreated
		"epoch=other",                        // also without since
	} {
		t.Run(q, func(t *testing.T) {
			c := e.dialNoHello(t, q, nil)
			code, reason := testutil.ReadClose(t, c, 10*time.Second)
			if code != web.CloseCursorExpired || reason != wantReason {
				t.Errorf("?%s closed with %d %q, want %d %q", q, code, reason, web.CloseCursorExpired, wantReason)
			}
		})
	}
	// The floor itself resumes; since=0 (a client that holds nothing)
	// starts there, the hello's firstSeq saying where, then goes on live.
	var socks []*websocket.Conn
	for _, q := range []string{"since=5&epoch=" + epoch, "since=0"} {
		c, hello := e.dial(t, q, nil)
		if hello.FirstSeq != 6 || hello.LastSeq != 10 {
			t.Errorf("?%s: hello = %+v, want firstSeq 6, lastSeq 10", q, hello)
		}
		socks = append(socks, c)
	}
	e.publish(t, "cellos.events.cell.c1.started", 1)
	for i, c := range socks {
		if got := seqsOf(readEvents(t, c, 6)); !slices.Equal(got, testutil.SeqRange(6, 11)) {
			t.Errorf("socket %d after the purge: %v, want 6..11", i, got)
		}
	}
	testutil.WaitFor(t, 5*time.Second, "five sockets counted as cursor_expired", func() bool {
		return e.a.HTTP.SocketStats().Closed[web.EndCursorExpired] == 5
	})
}

func TestWSBadParametersGet400WithoutSocket(t *testing.T) {
	e := wsStart(t, web.WSConfig{})
	tests := []struct{ query, code string }{
		{"since=-1", "bad_parameter"},
		{"since=abc", "bad_parameter"},
		{"since=1.5", "bad_parameter"},
		{"since=%2B1", "bad_parameter"},
		{"since=18446744073709551616", "bad_parameter"},
		{"since=", "bad_parameter"},
		{"since=1&since=2", "bad_parameter"},
		{"subject=other.events.%3E", "bad_parameter"},
		{"subject=cellos.%3E", "bad_parameter"},
		{"subject=cellos.events.cell%20x.%3E", "bad_parameter"},
		{"subject=cellos.events..started", "bad_parameter"},
		{"subject=cellos.events.%3E.started", "bad_parameter"},
		{"epoch=", "bad_parameter"},
		{"limit=5", "unknown_parameter"},
	}
	for _, tt := range tests {
		c, resp, err := e.tryDial(t, tt.query, nil)
		if err == nil {
			c.CloseNow()
			t.Errorf("?%s: upgraded, want HTTP 400", tt.query)
			continue
		}
		if resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Errorf("?%s: %v, want HTTP 400", tt.query, err)
			continue
		}
		if got := decodeError(t, respBody(resp)); got.Error.Code != tt.code {
			t.Errorf("?%s: error %+v, want code %s", tt.query, got, tt.code)
		}
	}
	if st := e.a.HTTP.SocketStats(); st.Open != 0 || len(st.Closed) != 0 || e.consumers(t) != 0 {
		t.Errorf("after refused handshakes: %+v, %d consumers; want no socket and no consumer", st, e.consumers(t))
	}
}

func TestWSPlainGETGets426(t *testing.T) {
	e := wsStart(t, web.WSConfig{})
	status, body := e.do(t, "GET", "/ws/events", "", nil)
	if status != http.StatusUpgradeRequired || decodeError(t, string(body)).Error.Code != "upgrade_required" {
		t.Errorf("GET /ws/events without upgrade = %d %s, want 426 upgrade_required", status, body)
	}
}

// A socket reading history has its own ephemeral consumer, deleted when
// the socket closes (or when history is done).
func TestWSConsumersAreEphemeralAndDeletedOnClose(t *testing.T) {
	// No write timeout gets in the way: these clients read nothing.
	e := wsStart(t, web.WSConfig{WriteTimeout: time.Minute})
	// ~7 MB of history: more than a client with a small receive buffer and
	// the server's send buffer (at most 4 MB here) hold, so the sockets
	// stay in history.
	e.publishRaw(t, "cellos.events.cell.c1.started", 800, func() []byte { return e.event("c1", "started", 8<<10) })
	client := testutil.SmallBufferClient(t)
	conns := make([]*websocket.Conn, 20)
	for i := range conns {
		conns[i], _ = e.dial(t, "since=1&subject=cellos.events.cell.%3E", &websocket.DialOptions{HTTPClient: client})
	}
	testutil.WaitFor(t, 20*time.Second, "20 reader consumers", func() bool { return e.consumers(t) == 20 })
	for _, ci := range e.readers(t) {
		cfg := ci.Config
		if cfg.Durable != "" || cfg.AckPolicy != jetstream.AckNonePolicy || cfg.InactiveThreshold != eventlog.ReaderInactiveThreshold ||
			cfg.InactiveThreshold < time.Minute || cfg.DeliverPolicy != jetstream.DeliverByStartSequencePolicy ||
			cfg.OptStartSeq != 2 || cfg.FilterSubject != "cellos.events.cell.>" {
			t.Errorf("consumer config = %+v, want ephemeral, AckNone, inactivity of minutes, from sequence 2, filtered", cfg)
		}
	}
	for _, c := range conns {
		c.CloseNow()
	}
	testutil.WaitFor(t, 5*time.Second, "consumers deleted after the sockets closed", func() bool { return e.consumers(t) == 0 })
	testutil.WaitFor(t, 5*time.Second, "socket handlers ended", func() bool { return e.a.HTTP.SocketStats().Open == 0 })
}

// A live socket needs no consumer of its own: history is handed over to
// the shared live tail and its consumer deleted.
func TestWSHistoryConsumerIsDeletedAtTheHandOver(t *testing.T) {
	e := wsStart(t, web.WSConfig{})
	e.publish(t, "cellos.events.cell.c1.started", 3)
	c, _ := e.dial(t, "since=0", nil)
	readEvents(t, c, 3)
	testutil.WaitFor(t, 5*time.Second, "history consumer deleted", func() bool { return e.consumers(t) == 0 })
	e.publish(t, "cellos.events.cell.c1.started", 2)
	if got := seqsOf(readEvents(t, c, 2)); !slices.Equal(got, []uint64{4, 5}) {
		t.Errorf("live after the hand-over: %v, want [4 5]", got)
	}
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Errorf("client close: %v, want a clean close handshake", err)
	}
	testutil.WaitFor(t, 5*time.Second, "socket counted as closed by its client", func() bool {
		return e.a.HTTP.SocketStats().Closed[web.EndClient] == 1
	})
}

func TestWSNonObjectPayloadIsSentAsAString(t *testing.T) {
	e := wsStart(t, web.WSConfig{})
	payloads := []string{"not json", "[1,2]", `"str"`, "{broken", "\xff\xfe"}
	for _, p := range payloads {
		e.publishRaw(t, "cellos.events.cell.raw.x", 1, func() []byte { return []byte(p) })
	}
	e.publishRaw(t, "cellos.events.cell.raw.x", 1, func() []byte { return []byte(` {"ok":true}`) })
	c, _ := e.dial(t, "since=0", nil)
	got := readEvents(t, c, len(payloads)+1)
	for i, p := range payloads {
		var s string
		if err := json.Unmarshal(got[i].Event, &s); err != nil {
			t.Errorf("event of payload %q = %s, want a JSON string", p, got[i].Event)
		} else if i < 4 && s != p {
			t.Errorf("event of payload %q = %q, want its bytes", p, s)
		}
	}
	var obj map[string]bool
	if err := json.Unmarshal(got[len(payloads)].Event, &obj); err != nil || !obj["ok"] {
		t.Errorf("event of a JSON object payload = %s, want the object", got[len(payloads)].Event)
	}
}

// The Origin of a browser's upgrade must name this server (its Host list,
// any port: on loopback the loopback names) or match --ws-origins.
func TestWSOrigin(t *testing.T) {
	e := wsStart(t, web.WSConfig{Origins: []string{"app.test:5173", "https://*.example.com"}})
	with := func(origin string) *websocket.DialOptions {
		return &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {origin}}}
	}
	for _, origin := range []string{"http://evil.example", "null", "https://app.test:5174", "http://a.example.com", "http://localhost.evil.example"} {
		c, resp, err := e.tryDial(t, "", with(origin))
		if err == nil {
			c.CloseNow()
			t.Errorf("Origin %s: upgraded, want 403", origin)
			continue
		}
		if resp == nil || resp.StatusCode != http.StatusForbidden || decodeError(t, respBody(resp)).Error.Code != "forbidden" {
			t.Errorf("Origin %s: %v, want 403 forbidden", origin, err)
		}
	}
	for _, origin := range []string{e.a.URL(), "http://localhost:5173", "http://127.0.0.1:9", "http://app.test:5173", "https://a.example.com"} {
		c, _ := e.dial(t, "", with(origin))
		c.Close(websocket.StatusNormalClosure, "")
	}
}

func TestWSMaxSockets(t *testing.T) {
	e := wsStart(t, web.WSConfig{MaxSockets: 2})
	c1, _ := e.dial(t, "", nil)
	c2, _ := e.dial(t, "", nil)
	c, resp, err := e.tryDial(t, "", nil)
	if err == nil {
		c.CloseNow()
		t.Fatal("third socket upgraded, want 503")
	}
	if resp == nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third socket: %v, want 503 with Retry-After", err)
	}
	c1.Close(websocket.StatusNormalClosure, "")
	testutil.WaitFor(t, 5*time.Second, "the closed socket's slot freed", func() bool { return e.a.HTTP.SocketStats().Open == 1 })
	c3, _ := e.dial(t, "", nil)
	e.publish(t, "cellos.events.cell.c1.started", 1)
	readEvents(t, c2, 1)
	readEvents(t, c3, 1)
}

func TestWSShutdownCloses1001(t *testing.T) {
	e := wsStart(t, web.WSConfig{})
	e.publish(t, "cellos.events.cell.c1.started", 2)
	var conns []*websocket.Conn
	for _, q := range []string{"", "since=0", "since=1&subject=cellos.events.cell.%3E"} {
		c, _ := e.dial(t, q, nil)
		conns = append(conns, c)
	}
	readEvents(t, conns[1], 2)
	readEvents(t, conns[2], 1)
	codes := make(chan websocket.StatusCode, len(conns))
	for _, c := range conns {
		go func() {
			code, _ := testutil.ReadClose(t, c, 20*time.Second)
			codes <- code
		}()
	}
	e.a.Stop()
	for range conns {
		if code := <-codes; code != websocket.StatusGoingAway {
			t.Errorf("close status at shutdown = %d, want 1001 (a clean close, not 1006)", code)
		}
	}
}

func TestWSDeadPeerIsDroppedByPing(t *testing.T) {
	e := wsStart(t, web.WSConfig{PingInterval: 100 * time.Millisecond, WriteTimeout: 300 * time.Millisecond})
	// A client that does not read cannot answer pings: to the server it is
	// a dead peer.
	e.dial(t, "", nil)
	testutil.WaitFor(t, 10*time.Second, "silent peer dropped", func() bool {
		return e.a.HTTP.SocketStats().Closed[web.EndPingTimeout] == 1
	})
	testutil.WaitFor(t, 5*time.Second, "its handler ended", func() bool { return e.a.HTTP.SocketStats().Open == 0 })
}

// A client that keeps reading answers pings and stays.
func TestWSPingsKeepALiveClient(t *testing.T) {
	e := wsStart(t, web.WSConfig{PingInterval: 50 * time.Millisecond, WriteTimeout: time.Second})
	c, _ := e.dial(t, "", nil)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			e.publish(t, "cellos.events.cell.c1.started", 1)
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond): // pacing, not synchronisation
			}
		}
	})
	readEvents(t, c, 20) // spans several ping intervals
	cancel()
	wg.Wait()
	if st := e.a.HTTP.SocketStats(); st.Open != 1 || len(st.Closed) != 0 {
		t.Errorf("stats = %+v, want the socket still open", st)
	}
}

// Sockets without since that open while events are published get exactly
// the events after the hello's lastSeq.
func TestWSLiveOnlyUnderConcurrentPublishing(t *testing.T) {
	e := wsStart(t, web.WSConfig{})
	const total = 2000
	type opened struct {
		c    *websocket.Conn
		last uint64
	}
	socks := make(chan opened, 5)
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		for i := range total / 100 {
			e.publish(t, "cellos.events.cell.c1.started", 100)
			if i%4 == 0 && len(socks) < cap(socks) {
				c, hello := e.dial(t, "", nil)
				socks <- opened{c, hello.LastSeq}
			}
		}
	}()
	<-pubDone
	close(socks)
	for s := range socks {
		got := seqsOf(readEvents(t, s.c, int(total-s.last)))
		if want := testutil.SeqRange(s.last+1, total); !slices.Equal(got, want) {
			t.Errorf("socket opened at %d: %d events, first mismatch at %d; want %d..%d", s.last, len(got), firstMismatch(got, want), s.last+1, total)
		}
	}
}

// The hub reads the stream only while a socket listens: with none for
// HubIdleAfter it deletes its consumer, and the next
// socket, live-only or resuming from before the rest, gets every event
// after its position, gap-free.
func TestWSHubRestsWithoutSockets(t *testing.T) {
	e := wsStart(t, web.WSConfig{HubIdleAfter: 100 * time.Millisecond})
	followers := func() int {
		lister := e.a.Events.Handle().ListConsumers(testutil.Ctx(t, 5*time.Second))
		n := 0
		for ci := range lister.Info() {
			if ci.Config.Description == eventlog.FollowerDescription {
				n++
			}
		}
		if err := lister.Err(); err != nil {
			t.Fatal(err)
		}
		return n
	}
	const subject = "cellos.events.cell.c1.started"
	testutil.WaitFor(t, 10*time.Second, "the projector's follower", func() bool { return followers() >= 1 })
	e.a.WaitCursor(e.publish(t, "cellos.events.cell.c0.started", 1)[0])
	if n := followers(); n != 1 {
		t.Fatalf("%d followers before any socket, want the projector's alone", n)
	}
	c, _ := e.dial(t, "", nil)
	testutil.WaitFor(t, 10*time.Second, "the hub's follower beside the projector's", func() bool { return followers() == 2 })
	seqs := e.publish(t, subject, 3)
	if got := seqsOf(readEvents(t, c, 3)); !slices.Equal(got, seqs) {
		t.Fatalf("live socket got %v, want %v", got, seqs)
	}
	c.Close(websocket.StatusNormalClosure, "")
	testutil.WaitFor(t, 10*time.Second, "the hub at rest after its last socket", func() bool { return followers() == 1 })
	before := e.lastSeq(t)
	rested := e.publish(t, subject, 5)

	live, _ := e.dial(t, "", nil)
	resumed, hello := e.dial(t, fmt.Sprintf("since=%d", before), nil)
	if hello.LastSeq != rested[4] {
		t.Fatalf("hello lastSeq %d, want %d", hello.LastSeq, rested[4])
	}
	next := e.publish(t, subject, 2)
	if got := seqsOf(readEvents(t, resumed, 7)); !slices.Equal(got, append(rested, next...)) {
		t.Errorf("socket resuming from %d got %v, want %v then %v", before, got, rested, next)
	}
	if got := seqsOf(readEvents(t, live, 2)); !slices.Equal(got, next) {
		t.Errorf("live socket opened at rest got %v, want %v", got, next)
	}
	if n := followers(); n != 2 {
		t.Errorf("%d followers with two sockets, want the projector's and the hub's", n)
	}
}
