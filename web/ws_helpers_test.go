package web_test

// Helpers of the live-side tests (ws_test.go, events_test.go,
// ingest_test.go): the whole program in-process with its embedded NATS,
// real WebSocket clients, and bounded waits.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go/jetstream"

	"cellos-allinone/app"
	"cellos-allinone/apptest"
	"cellos-allinone/eventlog"
	"cellos-allinone/testutil"
	"cellos-allinone/web"
)

// wsEnv is one running program with an HTTP client of its own.
type wsEnv struct {
	a      *apptest.App
	client *http.Client  // its idle connections are closed at the end of the test
	n      atomic.Uint64 // events made by event()
}

// wsStart runs the whole program with ws settings on a fresh data dir and
// checks, when the test ends, that it left no goroutine behind.
func wsStart(t testing.TB, ws web.WSConfig) *wsEnv {
	t.Helper()
	return wsStartConfig(t, app.Config{WS: ws})
}

// wsStartConfig is wsStart with more of the program's settings.
func wsStartConfig(t testing.TB, cfg app.Config) *wsEnv {
	t.Helper()
	apptest.NoLeaks(t)
	client := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)
	return &wsEnv{a: apptest.Start(t, cfg), client: client}
}

// event is a CloudEvent payload for a cell; pad adds that many bytes.
func (e *wsEnv) event(cell, phase string, pad int) []byte {
	b, _ := json.Marshal(map[string]any{
		"specversion": "1.0",
		"id":          fmt.Sprintf("ev-%d", e.n.Add(1)),
		"source":      "/test/supervisor",
		"type":        "dev.cellos.events.cell.lifecycle.v1." + phase,
		"data":        map[string]any{"cellId": cell, "pad": strings.Repeat("x", pad)},
	})
	return b
}

// publish stores n events on subject (payload from event) and returns
// their sequences.
func (e *wsEnv) publish(t testing.TB, subject string, n int) []uint64 {
	t.Helper()
	parts := strings.Split(subject, ".")
	return e.publishRaw(t, subject, n, func() []byte { return e.event(parts[3], parts[4], 0) })
}

func (e *wsEnv) publishRaw(t testing.TB, subject string, n int, payload func() []byte) []uint64 {
	t.Helper()
	events := make([]testutil.Event, n)
	for i := range events {
		events[i] = testutil.Event{Subject: subject, Payload: payload()}
	}
	return e.a.Publish(events...)
}

func (e *wsEnv) lastSeq(t testing.TB) uint64 {
	t.Helper()
	st, err := e.a.Events.State(testutil.Ctx(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return st.LastSeq
}

// readers lists the consumers of eventlog Readers (the projector's own
// ordered consumer is not one).
func (e *wsEnv) readers(t testing.TB) []*jetstream.ConsumerInfo {
	t.Helper()
	lister := e.a.Events.Handle().ListConsumers(testutil.Ctx(t, 5*time.Second))
	var out []*jetstream.ConsumerInfo
	for ci := range lister.Info() {
		if ci.Config.Description == eventlog.ReaderDescription {
			out = append(out, ci)
		}
	}
	if err := lister.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func (e *wsEnv) consumers(t testing.TB) int { return len(e.readers(t)) }

// wsFrame is any frame of /ws/events.
type wsFrame struct {
	Type     string          `json:"type"`
	Seq      uint64          `json:"seq"`
	Subject  string          `json:"subject"`
	Event    json.RawMessage `json:"event"`
	FirstSeq uint64          `json:"firstSeq"`
	LastSeq  uint64          `json:"lastSeq"`
	Epoch    string          `json:"epoch"`
}

// dial opens /ws/events?query and reads its hello frame.
func (e *wsEnv) dial(t testing.TB, query string, opts *websocket.DialOptions) (*websocket.Conn, wsFrame) {
	t.Helper()
	c := e.dialNoHello(t, query, opts)
	hello, err := readFrame(testutil.Ctx(t, 10*time.Second), c)
	if err != nil {
		t.Fatalf("read hello of ?%s: %v", query, err)
	}
	if hello.Type != "hello" {
		t.Fatalf("first frame of ?%s = %+v, want hello", query, hello)
	}
	return c, hello
}

func (e *wsEnv) dialNoHello(t testing.TB, query string, opts *websocket.DialOptions) *websocket.Conn {
	t.Helper()
	c, resp, err := e.tryDial(t, query, opts)
	if err != nil {
		t.Fatalf("dial ?%s: %v (%s)", query, err, respBody(resp))
	}
	c.SetReadLimit(4 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// tryDial opens /ws/events?query through the env's HTTP client.
func (e *wsEnv) tryDial(t testing.TB, query string, opts *websocket.DialOptions) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	o := websocket.DialOptions{}
	if opts != nil {
		o = *opts
	}
	if o.HTTPClient == nil {
		o.HTTPClient = e.client
	}
	return websocket.Dial(testutil.Ctx(t, 10*time.Second), e.a.WSURL()+"?"+query, &o)
}

func readFrame(ctx context.Context, c *websocket.Conn) (wsFrame, error) {
	typ, b, err := c.Read(ctx)
	if err != nil {
		return wsFrame{}, err
	}
	if typ != websocket.MessageText {
		return wsFrame{}, fmt.Errorf("frame of type %v, want text", typ)
	}
	var f wsFrame
	if err := json.Unmarshal(b, &f); err != nil {
		return wsFrame{}, fmt.Errorf("frame %s: %v", b, err)
	}
	return f, nil
}

// readEvents reads n event frames.
func readEvents(t testing.TB, c *websocket.Conn, n int) []wsFrame {
	t.Helper()
	ctx := testutil.Ctx(t, 20*time.Second)
	out := make([]wsFrame, 0, n)
	for len(out) < n {
		f, err := readFrame(ctx, c)
		if err != nil {
			t.Fatalf("after %d of %d events: %v", len(out), n, err)
		}
		if f.Type != "event" {
			t.Fatalf("frame %+v, want an event", f)
		}
		out = append(out, f)
	}
	return out
}

func seqsOf(fs []wsFrame) []uint64 {
	out := make([]uint64, len(fs))
	for i, f := range fs {
		out[i] = f.Seq
	}
	return out
}

// apiError is the body of an error answer.
type apiError struct {
	Error struct {
		Code     string `json:"code"`
		Message  string `json:"message"`
		FirstSeq uint64 `json:"firstSeq"`
	} `json:"error"`
}

func respBody(resp *http.Response) string {
	if resp == nil || resp.Body == nil {
		return ""
	}
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func decodeError(t testing.TB, body string) apiError {
	t.Helper()
	var e apiError
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Code == "" {
		t.Fatalf("error body %q is not {\"error\":{\"code\",\"message\"}}", body)
	}
	return e
}

// do sends a request to path and returns the status and body.
func (e *wsEnv) do(t testing.TB, method, path, contentType string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(testutil.Ctx(t, 10*time.Second), method, e.a.URL()+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return e.send(t, req)
}

// send does req and returns the status and body.
func (e *wsEnv) send(t testing.TB, req *http.Request) (int, []byte) {
	t.Helper()
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}
