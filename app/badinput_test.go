package app_test

import (
	"bufio"
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"cellos-allinone/app"
	"cellos-allinone/apptest"
	"cellos-allinone/projector"
	"cellos-allinone/testutil"
	"cellos-allinone/web"
)

// refusal is one request the server must refuse, and how.
type refusal struct {
	name   string // subtest name; "" means "METHOD target"
	method string
	target string // path and query, sent byte for byte
	header http.Header
	body   func() io.Reader // nil: no body
	status int
	// code is the error code of the JSON body; "" when net/http refuses
	// the request before the server's handler sees it (a header block
	// over the limit, a path that does not unescape): only the status is
	// checked then.
	code string
	// names is what the error message must name: the parameter or the
	// event attribute that is wrong ("" to skip).
	names string
}

func (r refusal) String() string {
	if r.name != "" {
		return r.name
	}
	target := r.target
	if len(target) > 80 {
		target = target[:80] + "…"
	}
	return r.method + " " + target
}

// stored is what bad input must not change.
type stored struct {
	lastSeq, messages uint64
	cursor            uint64
	dump              string
	consumers         int
	sockets           web.SocketStats
}

func storedOf(t *testing.T, a *apptest.App) stored {
	t.Helper()
	st, err := a.Events.State(testutil.Ctx(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	s := stored{lastSeq: st.LastSeq, messages: st.Messages, dump: dumpOf(a), consumers: consumersOf(t, a), sockets: a.HTTP.SocketStats()}
	a.Proj.Read(func(p projector.View) { s.cursor = p.Cursor() })
	return s
}

// consumersOf counts the stream's consumers on the server.
func consumersOf(t *testing.T, a *apptest.App) int {
	t.Helper()
	info, err := a.Events.Handle().Info(testutil.Ctx(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Consumers
}

// liveConsumers are the consumers a running app keeps without sockets:
// the projector's ordered consumer (the WebSocket hub follows only while a
// socket listens).
const liveConsumers = 1

// TestBadInputChangesNothing sends bad input to every endpoint over real
// HTTP and WebSocket: each request gets its 4xx with an error code and a
// message naming what is wrong, and afterwards nothing is stored, the
// projection has not moved, no JetStream consumer is left and no socket
// was opened.
func TestBadInputChangesNothing(t *testing.T) {
	a := apptest.Start(t, app.Config{})
	seqs := a.Publish(testutil.Workload(60)...)
	a.WaitCursor(seqs[len(seqs)-1])
	// The projector creates its consumer in the background after start.
	var n int
	if !testutil.Poll(10*time.Second, 10*time.Millisecond, func() bool { n = consumersOf(t, a); return n == liveConsumers }) {
		t.Fatalf("stream consumers = %d after 10s, want %d", n, liveConsumers)
	}
	before := storedOf(t, a)

	tr := &http.Transport{DisableKeepAlives: true, ExpectContinueTimeout: 10 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}
	base := a.URL()

	t.Run("http", func(t *testing.T) {
		for _, rc := range refusals() {
			t.Run(rc.String(), func(t *testing.T) {
				status, hdr, body := send(t, client, base, rc)
				checkRefusal(t, rc, status, hdr.Get("Content-Type"), body)
				if rc.status == 405 && hdr.Get("Allow") == "" {
					t.Errorf("%s = 405 without an Allow header", rc)
				}
				if rc.status == 426 && hdr.Get("Upgrade") != "websocket" {
					t.Errorf("%s = 426 with Upgrade %q, want websocket", rc, hdr.Get("Upgrade"))
				}
				if rc.method == "POST" {
					if got := storedOf(t, a).lastSeq; got != before.lastSeq {
						t.Fatalf("%s stored something: last sequence %d, want %d", rc, got, before.lastSeq)
					}
				}
			})
		}
	})

	t.Run("websocket", func(t *testing.T) {
		cases := wsQueries()
		forbidden := refusal{name: "Origin of another site", method: "GET", target: "/ws/events?since=0",
			header: http.Header{"Origin": {"http://evil.example"}}, status: 403, code: web.CodeForbidden, names: "Origin"}
		cases = append(cases, forbidden)
		for _, rc := range cases {
			t.Run(rc.String(), func(t *testing.T) {
				ctx := testutil.Ctx(t, 10*time.Second)
				c, resp, err := websocket.Dial(ctx, "ws://"+a.HTTP.Addr()+rc.target, &websocket.DialOptions{
					HTTPClient: client, HTTPHeader: rc.header,
				})
				if err == nil {
					c.CloseNow()
					t.Fatalf("WebSocket %s opened, want HTTP %d %s and no socket", rc, rc.status, rc.code)
				}
				if resp == nil {
					t.Fatalf("WebSocket %s: %v, want HTTP %d %s", rc, err, rc.status, rc.code)
				}
				body, _ := io.ReadAll(resp.Body) // coder/websocket keeps the first 1 KiB
				resp.Body.Close()
				checkRefusal(t, rc, resp.StatusCode, resp.Header.Get("Content-Type"), body)
			})
		}
		t.Run("handshake over HTTP/1.0", func(t *testing.T) {
			rc := refusal{name: "handshake over HTTP/1.0", status: 426, code: web.CodeUpgradeRequired, names: "HTTP/1.1"}
			status, contentType, body := sendHTTP10(t, a.HTTP.Addr(), "GET /ws/events?since=0 HTTP/1.0\r\n"+
				"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"+
				"Sec-WebSocket-Key: "+handshakeKey+"\r\n\r\n")
			checkRefusal(t, rc, status, contentType, body)
		})
	})

	after := storedOf(t, a)
	if after.lastSeq != before.lastSeq || after.messages != before.messages {
		t.Errorf("stream after bad input: last sequence %d, %d messages; want %d, %d",
			after.lastSeq, after.messages, before.lastSeq, before.messages)
	}
	if after.cursor != before.cursor || after.dump != before.dump {
		t.Errorf("projection after bad input: cursor %d (changed: %v), want %d unchanged",
			after.cursor, after.dump != before.dump, before.cursor)
	}
	if after.consumers != before.consumers {
		t.Errorf("stream consumers after bad input = %d, want %d: a consumer was left behind", after.consumers, before.consumers)
	}
	if ss := after.sockets; ss.Open != 0 || len(ss.Closed) != 0 {
		t.Errorf("sockets after bad input: %d open, closed %v; want none ever opened", ss.Open, ss.Closed)
	}
}

// sendHTTP10 sends a raw request over its own connection and reads the
// answer: the Go client speaks only HTTP/1.1 and later.
func sendHTTP10(t *testing.T, addr, request string) (status int, contentType string, body []byte) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", request, err)
	}
	defer resp.Body.Close()
	if body, err = io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), body
}

// send sends rc to the server at base, with the target byte for byte.
func send(t *testing.T, client *http.Client, base string, rc refusal) (int, http.Header, []byte) {
	t.Helper()
	var body io.Reader
	if rc.body != nil {
		body = rc.body()
	}
	req, err := http.NewRequestWithContext(testutil.Ctx(t, 10*time.Second), rc.method, base, body)
	if err != nil {
		t.Fatal(err)
	}
	path, query, _ := strings.Cut(rc.target, "?")
	req.URL.Opaque, req.URL.RawQuery = path, query
	maps.Copy(req.Header, rc.header)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", rc, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: reading the answer: %v", rc, err)
	}
	return resp.StatusCode, resp.Header, b
}

// checkRefusal checks an answer against rc: the status and, for answers
// of the server's own, the JSON error body with its code and a message
// naming what is wrong.
func checkRefusal(t *testing.T, rc refusal, status int, contentType string, body []byte) {
	t.Helper()
	if rc.code == "" {
		if status != rc.status {
			t.Errorf("%s = %d %.100s, want %d", rc, status, body, rc.status)
		}
		return
	}
	var e apiError
	err := json.Unmarshal(body, &e)
	if status != rc.status || err != nil || e.Error.Code != rc.code {
		t.Errorf("%s = %d %s, want %d %s", rc, status, clipBody(body), rc.status, rc.code)
		return
	}
	if contentType != "application/json" {
		t.Errorf("%s: Content-Type %q, want application/json", rc, contentType)
	}
	if e.Error.Message == "" || !strings.Contains(e.Error.Message, rc.names) {
		t.Errorf("%s: message %q, want one naming %q", rc, e.Error.Message, rc.names)
	}
}

func clipBody(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}
