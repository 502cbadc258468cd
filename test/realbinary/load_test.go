package realbinary_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	endian "encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go/jetstream"

	"cellos-allinone/testutil"
)

// loadClient is one WebSocket reader that checks every event, whether it
// came alone or in a batch frame: strictly consecutive sequences, nothing
// missing, nothing twice.
type loadClient struct {
	conn     *websocket.Conn
	received atomic.Uint64
	frames   atomic.Uint64 // frames with events
	batches  atomic.Uint64 // of which batch frames
	last     uint64
	err      atomic.Pointer[string]
	lat      []time.Duration // sampled delivery latencies
}

func (c *loadClient) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	c.err.CompareAndSwap(nil, &msg)
}

// field reads the unsigned number after key in a frame without a full
// JSON decode: a thousand readers must stay cheap next to the server.
func field(frame []byte, key string) (uint64, bool) {
	i := bytes.Index(frame, []byte(key))
	if i < 0 {
		return 0, false
	}
	j := i + len(key)
	k := j
	for k < len(frame) && frame[k] >= '0' && frame[k] <= '9' {
		k++
	}
	n, err := strconv.ParseUint(string(frame[j:k]), 10, 64)
	return n, err == nil
}

// read reads frames until ctx ends or the socket closes, and samples the
// latency of every sample-th event. An event frame holds one event; a batch
// frame's items each start with {"seq": (the test's events have no "seq"
// key of their own), and the first "sentAt" after an item's seq is its
// event's.
func (c *loadClient) read(ctx context.Context, sample int) {
	var buf bytes.Buffer
	itemKey, sentKey := []byte(`{"seq":`), []byte(`"sentAt":`)
	for n := 0; ; {
		_, r, err := c.conn.Reader(ctx)
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(r)
		}
		if err != nil {
			if ctx.Err() == nil && websocket.CloseStatus(err) != websocket.StatusNormalClosure {
				c.fail("read after seq %d: %v", c.last, err)
			}
			return
		}
		frame := buf.Bytes()
		if bytes.HasPrefix(frame, []byte(`{"type":"hello"`)) {
			continue
		}
		now := time.Now()
		events := 0
		rest := frame
		if b, ok := bytes.CutPrefix(frame, []byte(`{"type":"event",`)); ok {
			rest = append(itemKey[:1:1], b...) // as one item of a batch frame
		}
		for {
			i := bytes.Index(rest, itemKey)
			if i < 0 {
				break
			}
			rest = rest[i+len(itemKey):]
			k := 0
			for k < len(rest) && rest[k] >= '0' && rest[k] <= '9' {
				k++
			}
			seq, err := strconv.ParseUint(string(rest[:k]), 10, 64)
			if err != nil || (c.last != 0 && seq != c.last+1) {
				c.fail("event after seq %d has seq %d (%v)", c.last, seq, err)
				return
			}
			c.last = seq
			events++
			if n++; n%sample == 0 {
				if sent, ok := field(rest, string(sentKey)); ok {
					c.lat = append(c.lat, now.Sub(time.Unix(0, int64(sent))))
				}
			}
		}
		if events == 0 {
			c.fail("frame after seq %d holds no event: %.100s", c.last, frame)
			return
		}
		c.received.Add(uint64(events))
		if bytes.HasPrefix(frame, []byte(`{"type":"events"`)) {
			c.batches.Add(1)
		}
		c.frames.Add(1)
	}
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, v, err)
	}
	return n
}

// metric reads one series (name with its labels, as /metrics prints it)
// from the server; 0 when the series does not exist yet.
func metric(t *testing.T, s *server, series string) float64 {
	t.Helper()
	resp, err := httpc.Get(s.HTTP + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				t.Fatalf("%s: %v", series, err)
			}
			return v
		}
	}
	return 0
}

// cpuTime is the CPU time (user and system) a process has used so far.
func cpuTime(t *testing.T, pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// After the command in parentheses: state is field 3, utime 14, stime 15.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	const ticks = 100 // USER_HZ, 100 on Linux
	return time.Duration(ut+st) * time.Second / ticks
}

// rss is a process's resident set in MiB: VmRSS now, VmHWM its peak.
func rss(t *testing.T, pid int, which string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, which+":"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// TestLoad: many WebSocket clients and a steady publisher against the real
// binary. Every client gets every event in order; slow clients that read
// nothing are cut off; afterwards goroutines and JetStream consumers are
// back to their baseline. Sizes: CELLOS_LOAD_CLIENTS, CELLOS_LOAD_RATE
// (events/s), CELLOS_LOAD_SECONDS; CELLOS_LOAD_BATCH=1 (the default) opens
// the sockets with batch=1, 0 without; CELLOS_LOAD_MAX_P99 (milliseconds)
// fails the test when the publish-to-receipt p99 is above it.
//
// The defaults are what .ci/run uses. The target of docs/fanout.md
// ("Fan-out with batch=1"):
//
//	CELLOS_LONG=1 CELLOS_LOAD_RATE=1000 CELLOS_LOAD_SECONDS=60 CELLOS_LOAD_MAX_P99=250 \
//	  go test -count=1 -v -timeout 20m -run 'TestLoad$' ./test/realbinary/
func TestLoad(t *testing.T) {
	requireLong(t)
	clients := envInt(t, "CELLOS_LOAD_CLIENTS", 1000)
	// With one frame per event (CELLOS_LOAD_BATCH=0) these 2 cores deliver
	// about 100,000 frames/s sustained, clients included: 1,000 sockets at
	// 100 events/s (docs/fanout.md). With batch=1 a frame carries the
	// events that are ready together and the limit is bytes, not frames.
	rate := envInt(t, "CELLOS_LOAD_RATE", 500)
	seconds := envInt(t, "CELLOS_LOAD_SECONDS", 30)
	batch := envInt(t, "CELLOS_LOAD_BATCH", 1)
	maxP99 := time.Duration(envInt(t, "CELLOS_LOAD_MAX_P99", 0)) * time.Millisecond
	if batch != 0 && batch != 1 {
		t.Fatalf("CELLOS_LOAD_BATCH=%d: want 0 or 1", batch)
	}
	const slowClients = 5
	bin := binary(t)
	logDir := t.TempDir()
	// --sync interval: this test measures the fan-out, not the disk.
	srv := startServer(t, bin, t.TempDir(), logDir, "load",
		"--sync", "interval", "--ws-max-sockets", strconv.Itoa(clients+slowClients+16))
	nc := srv.connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	consumers := func() int {
		s, err := js.Stream(context.Background(), "CELLOS_EVENTS")
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Consumers
	}
	baseGoroutines, baseConsumers := metric(t, srv, "go_goroutines"), consumers()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wsURL := "ws" + strings.TrimPrefix(srv.HTTP, "http") + "/ws/events"
	if batch == 1 {
		wsURL += "?batch=1"
	}
	dial := func(hc *http.Client) *websocket.Conn {
		dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
		defer dcancel()
		c, resp, err := websocket.Dial(dctx, wsURL, &websocket.DialOptions{HTTPClient: hc})
		if err != nil {
			t.Fatalf("dial: %v (%v)", err, resp)
		}
		c.SetReadLimit(2 << 20)
		return c
	}
	readers := make([]*loadClient, clients)
	var wg sync.WaitGroup
	for i := range readers {
		readers[i] = &loadClient{conn: dial(http.DefaultClient)}
		wg.Go(func() { readers[i].read(ctx, 97) })
	}
	for range slowClients {
		// Never read, with a small fixed receive buffer like a slow mobile
		// peer (loopback autotuning would otherwise absorb ~36 MB first).
		c := dial(testutil.SmallBufferClient(t))
		defer c.CloseNow()
	}
	t.Logf("%d clients and %d slow clients connected (batch=%d); server RSS %.0f MiB", clients, slowClients, batch, rss(t, srv.cmd.Process.Pid, "VmRSS"))

	// The publisher: rate events/s in 10 ms ticks, each event carrying its
	// send time for the latency figure.
	total := rate * seconds
	start := time.Now()
	srvCPU0, ownCPU0 := cpuTime(t, srv.cmd.Process.Pid), cpuTime(t, os.Getpid())
	publish(t, js, total, rate, 0)
	pubElapsed := time.Since(start)

	// Every client must get every event (those that do not are reported
	// below).
	testutil.Poll(120*time.Second, 10*time.Millisecond, func() bool { return allDone(readers, uint64(total)) })
	delivered := time.Since(start)
	srvCPU, ownCPU := cpuTime(t, srv.cmd.Process.Pid)-srvCPU0, cpuTime(t, os.Getpid())-ownCPU0
	failed := 0
	var lat []time.Duration
	for i, c := range readers {
		if e := c.err.Load(); e != nil || c.received.Load() != uint64(total) {
			if failed < 5 {
				t.Errorf("client %d: received %d of %d (err %v)", i, c.received.Load(), total, deref(e))
			}
			failed++
		}
	}
	for _, c := range readers {
		lat = append(lat, c.lat...)
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[int(float64(len(lat)-1)*p)].Round(time.Millisecond)
	}
	var events, frames, batches uint64
	for _, c := range readers {
		events, frames, batches = events+c.received.Load(), frames+c.frames.Load(), batches+c.batches.Load()
	}
	fanoutRSS := rss(t, srv.cmd.Process.Pid, "VmHWM")
	t.Logf("%d clients × %d events (%d ev/s target, batch=%d, published in %s, all delivered after %s): %d events delivered in %d frames (%d batch frames, %.1f events a frame); latency p50 %s p99 %s max %s (%d samples); server peak RSS %.0f MiB; CPU time: server %.1f s, test process %.1f s",
		clients, total, rate, batch, pubElapsed.Round(time.Millisecond), delivered.Round(time.Millisecond),
		events, frames, batches, float64(events)/float64(max(frames, 1)), pct(0.5), pct(0.99), pct(1), len(lat), fanoutRSS,
		srvCPU.Seconds(), ownCPU.Seconds())
	if failed > 0 {
		t.Fatalf("%d of %d clients did not receive every event in order", failed, clients)
	}
	if maxP99 > 0 && pct(0.99) > maxP99 {
		t.Errorf("latency p99 %s, want at most %s (CELLOS_LOAD_MAX_P99)", pct(0.99), maxP99)
	}

	// The slow clients are still connected, having read nothing. Keep ten
	// readers and send enough bulk that the slow clients' TCP buffers and
	// server-side queues overflow: they must be cut off, the readers not.
	for _, c := range readers[10:] {
		c.conn.Close(websocket.StatusNormalClosure, "done")
	}
	const bulk, bulkSize = 48, 400 << 10
	publish(t, js, bulk, 8, bulkSize)
	want := uint64(total + bulk)
	testutil.Poll(60*time.Second, 10*time.Millisecond, func() bool { return allDone(readers[:10], want) })
	for _, c := range readers[:10] {
		if c.received.Load() != want || c.err.Load() != nil {
			t.Fatalf("reader beside slow clients received %d of %d (err %s)", c.received.Load(), want, deref(c.err.Load()))
		}
	}
	var slowClosed float64
	if !testutil.Poll(60*time.Second, 100*time.Millisecond, func() bool {
		// A peer that reads nothing answers no ping either: it is cut off
		// as slow (4408) or as dead (ping timeout), whichever comes first.
		slowClosed = metric(t, srv, `cellos_ws_closed_total{reason="slow"}`) +
			metric(t, srv, `cellos_ws_closed_total{reason="ping_timeout"}`)
		return slowClosed >= slowClients
	}) {
		t.Errorf("%.0f of %d slow clients cut off within 60s of %d MiB of bulk", slowClosed, slowClients, bulk*bulkSize>>20)
	}
	t.Logf("slow clients cut off: %.0f of %d; server peak RSS %.0f MiB (with the bulk)", slowClosed, slowClients, rss(t, srv.cmd.Process.Pid, "VmHWM"))
	for _, c := range readers[:10] {
		c.conn.Close(websocket.StatusNormalClosure, "done")
	}
	cancel()
	wg.Wait()

	// Back to baseline once everybody is gone: the hub deletes its
	// consumer 30 s (web.DefaultWSHubIdleAfter) after the last socket.
	var (
		g    float64
		cons int
	)
	if !testutil.Poll(60*time.Second, 100*time.Millisecond, func() bool {
		g, cons = metric(t, srv, "go_goroutines"), consumers()
		return g <= baseGoroutines+2 && cons == baseConsumers
	}) {
		t.Fatalf("60s after disconnect: %.0f goroutines (baseline %.0f), %d consumers (baseline %d)", g, baseGoroutines, cons, baseConsumers)
	}
	t.Logf("after disconnect: %.0f goroutines (baseline %.0f), %d consumers (baseline %d)", g, baseGoroutines, cons, baseConsumers)
}

// allDone reports whether every client has received want events or ended
// with an error.
func allDone(clients []*loadClient, want uint64) bool {
	for _, c := range clients {
		if c.received.Load() < want && c.err.Load() == nil {
			return false
		}
	}
	return true
}

// publish sends n events at rate events/s (in 10 ms ticks from 100/s up), each carrying
// its send time (and pad bytes of ballast), and waits for every ack.
func publish(t *testing.T, js jetstream.JetStream, n, rate, pad int) {
	t.Helper()
	every, perTick := 10*time.Millisecond, rate/100
	if rate < 100 {
		every, perTick = time.Second/time.Duration(rate), 1
	}
	ballast := strings.Repeat("x", pad)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for sent := 0; sent < n; {
		<-tick.C
		for range min(perTick, n-sent) {
			sent++
			data := map[string]any{"sentAt": time.Now().UnixNano(), "n": sent}
			if pad > 0 {
				data["ballast"] = ballast
			}
			ev := testutil.Cell(fmt.Sprintf("load-%d", sent%5000), "summary", data)
			if _, err := js.PublishAsync(ev.Subject, ev.Payload, jetstream.WithStallWait(10*time.Second)); err != nil {
				t.Fatalf("publish %d: %v", sent, err)
			}
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(60 * time.Second):
		t.Fatal("publish acks not complete within 60s")
	}
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// TestIdleSockets: many open, idle sockets on the real binary — each
// answers the server's pings and reads nothing else until one event is
// published at the end, which every one of them must get. It reports the
// server's resident memory and goroutines per socket and fails when the
// server's RSS with them all open passes CELLOS_IDLE_MAX_RSS MiB (1024).
// Sizes: CELLOS_IDLE_SOCKETS (10,000), CELLOS_IDLE_SECONDS held open
// (20: every socket is pinged at least once).
//
//	CELLOS_LONG=1 go test -count=1 -v -run TestIdleSockets ./test/realbinary/
func TestIdleSockets(t *testing.T) {
	requireLong(t)
	n := envInt(t, "CELLOS_IDLE_SOCKETS", 10000)
	maxRSS := float64(envInt(t, "CELLOS_IDLE_MAX_RSS", 1024))
	hold := time.Duration(envInt(t, "CELLOS_IDLE_SECONDS", 20)) * time.Second
	// This process holds n sockets and the server n more, plus its files:
	// the server inherits the limit set here.
	raiseNoFile(t, uint64(n)+1024)
	srv := startServer(t, binary(t), t.TempDir(), t.TempDir(), "idle",
		"--sync", "interval", "--ws-max-sockets", strconv.Itoa(n+16))
	pid := srv.cmd.Process.Pid
	baseRSS, baseG := rss(t, pid, "VmRSS"), metric(t, srv, "go_goroutines")
	addr := strings.TrimPrefix(srv.HTTP, "http://")

	var (
		got     atomic.Int64 // sockets that received the event
		dropped atomic.Int64 // sockets that ended before the test closed them
		wg      sync.WaitGroup
	)
	socks := make([]net.Conn, n)
	start := time.Now()
	var next atomic.Int64
	var dialErr atomic.Pointer[string]
	var dialers sync.WaitGroup
	for range 32 {
		dialers.Go(func() {
			for i := int(next.Add(1)) - 1; i < n && dialErr.Load() == nil; i = int(next.Add(1)) - 1 {
				c, br, err := dialRaw(addr, "/ws/events?batch=1")
				if err != nil {
					msg := fmt.Sprintf("socket %d: %v", i, err)
					dialErr.CompareAndSwap(nil, &msg)
					return
				}
				socks[i] = c
				wg.Go(func() {
					if serveRaw(c, br) {
						got.Add(1)
					} else {
						dropped.Add(1)
					}
				})
			}
		})
	}
	dialers.Wait()
	defer func() {
		for _, c := range socks {
			if c != nil {
				c.Close()
			}
		}
		wg.Wait()
	}()
	if e := dialErr.Load(); e != nil {
		t.Fatalf("after %d sockets: %s", next.Load(), *e)
	}
	if !testutil.Poll(60*time.Second, 100*time.Millisecond, func() bool { return metric(t, srv, "cellos_ws_sockets") == float64(n) }) {
		t.Fatalf("%.0f sockets open on the server, want %d", metric(t, srv, "cellos_ws_sockets"), n)
	}
	t.Logf("%d sockets open after %s; holding them for %s", n, time.Since(start).Round(time.Millisecond), hold)
	time.Sleep(hold)

	g := metric(t, srv, "go_goroutines")
	now, peak := rss(t, pid, "VmRSS"), rss(t, pid, "VmHWM")
	open := metric(t, srv, "cellos_ws_sockets")
	t.Logf("%d idle sockets: server RSS %.0f MiB (%.0f MiB before them; peak %.0f MiB), %.1f KiB and %.2f goroutines per socket; %.0f open, %d dropped",
		n, now, baseRSS, peak, (now-baseRSS)*1024/float64(n), (g-baseG)/float64(n), open, dropped.Load())
	if open != float64(n) || dropped.Load() != 0 {
		t.Errorf("%.0f of %d sockets still open (%d dropped), want all: idle sockets that answer pings stay", open, n, dropped.Load())
	}
	if now > maxRSS {
		t.Errorf("server RSS %.0f MiB with %d idle sockets, want at most %.0f MiB (CELLOS_IDLE_MAX_RSS)", now, n, maxRSS)
	}

	// One event reaches every one of them.
	nc := srv.connect(t)
	testutil.MustPublish(t, nc, testutil.Cell("idle-1", "started", nil))
	if !testutil.Poll(60*time.Second, 50*time.Millisecond, func() bool { return got.Load()+dropped.Load() == int64(n) }) || got.Load() != int64(n) {
		t.Errorf("the event reached %d of %d sockets (%d dropped)", got.Load(), n, dropped.Load())
	}
	t.Logf("one event reached all %d sockets", got.Load())
}

// raiseNoFile raises this process's open-file limit to its hard limit (the
// processes it starts inherit it) and skips the test when that is below
// need.
func raiseNoFile(t *testing.T, need uint64) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatal(err)
		}
	}
	if lim.Cur < need {
		t.Skipf("RLIMIT_NOFILE: hard limit %d, the test needs %d (raise it, or lower CELLOS_IDLE_SOCKETS)", lim.Max, need)
	}
}

// dialRaw opens a WebSocket by hand: a cheap client for many idle sockets.
func dialRaw(addr, target string) (net.Conn, *bufio.Reader, error) {
	c, err := net.DialTimeout("tcp", addr, 30*time.Second)
	if err != nil {
		return nil, nil, err
	}
	key := make([]byte, 16)
	rand.Read(key)
	c.SetDeadline(time.Now().Add(60 * time.Second))
	_, err = fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
		target, addr, base64.StdEncoding.EncodeToString(key))
	br := bufio.NewReaderSize(c, 256)
	var resp *http.Response
	if err == nil {
		resp, err = http.ReadResponse(br, nil)
	}
	if err == nil && resp.StatusCode != http.StatusSwitchingProtocols {
		err = fmt.Errorf("handshake answered %s", resp.Status)
	}
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	c.SetDeadline(time.Time{})
	return c, br, nil
}

// serveRaw reads a raw socket's frames, answers pings, and reports whether
// an event (or batch) frame arrived before the connection ended.
func serveRaw(c net.Conn, br *bufio.Reader) bool {
	var head [14]byte
	for {
		if _, err := io.ReadFull(br, head[:2]); err != nil {
			return false
		}
		op, n := head[0]&0x0f, uint64(head[1]&0x7f)
		switch n {
		case 126:
			if _, err := io.ReadFull(br, head[2:4]); err != nil {
				return false
			}
			n = uint64(endian.BigEndian.Uint16(head[2:4]))
		case 127:
			if _, err := io.ReadFull(br, head[2:10]); err != nil {
				return false
			}
			n = endian.BigEndian.Uint64(head[2:10])
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(br, payload); err != nil {
			return false
		}
		switch op {
		case 0x9: // ping: a pong with the same payload, masked (key 0)
			pong := append([]byte{0x8a, 0x80 | byte(n), 0, 0, 0, 0}, payload...)
			if _, err := c.Write(pong); err != nil {
				return false
			}
		case 0x8: // close
			return false
		case 0x1:
			if bytes.Contains(payload, []byte(`"seq":`)) {
				return true
			}
		}
	}
}
