package web_test

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"cellos-allinone/app"
	"cellos-allinone/apptest"
	"cellos-allinone/testutil"
	"cellos-allinone/web"
)

// BenchmarkFanout measures the WebSocket bridge: N live sockets, each
// event published once over NATS (TCP, as a supervisor does) and
// delivered to every socket. It reports events/s (published and
// delivered to all sockets), frames/s, and the delivery latency from
// publish to a client's read (p50/p99), measured with a publish
// timestamp carried in the event. The clients run in the same process
// and share its cores.
//
// The rate=R variants publish at a fixed R events/s, which shows latency
// without queueing; the others publish as fast as acknowledgements allow.
// CELLOS_FANOUT_SOCKETS=N adds a variant with N sockets.
// Publishing waits for acknowledgements every 256 events.
//
//	go test ./web/ -run '^$' -bench 'BenchmarkFanout' -benchtime 20000x
func BenchmarkFanout(b *testing.B) {
	sockets := []int{1, 10, 100}
	if v, err := strconv.Atoi(os.Getenv("CELLOS_FANOUT_SOCKETS")); err == nil && v > 0 {
		sockets = append(sockets, v)
	}
	for _, n := range sockets {
		b.Run(fmt.Sprintf("sockets=%d", n), func(b *testing.B) { benchFanout(b, n, 0) })
	}
	b.Run("sockets=100/rate=1000", func(b *testing.B) { benchFanout(b, 100, 1000) })
}

func benchFanout(b *testing.B, sockets, rate int) {
	// CELLOS_FANOUT_SYNC=interval measures without an fsync per publish
	// (the default policy is always).
	e := wsStartConfig(b, app.Config{WS: web.WSConfig{MaxSockets: sockets}, Sync: os.Getenv("CELLOS_FANOUT_SYNC")})
	conns := make([]*websocket.Conn, sockets)
	for i := range conns {
		conns[i], _ = e.dial(b, "", nil)
	}
	e.a.Publish() // connects the publisher before the clock starts
	ctx := testutil.Ctx(b, 10*time.Minute)
	lat := make([][]time.Duration, sockets)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for i, c := range conns {
		lat[i] = make([]time.Duration, 0, b.N)
		wg.Go(func() {
			for range b.N {
				_, msg, err := c.Read(ctx)
				if err != nil {
					b.Errorf("socket %d after %d events: %v", i, len(lat[i]), err)
					return
				}
				lat[i] = append(lat[i], time.Since(time.Unix(0, sentAt(msg))))
			}
		})
	}
	publish(e.a, b.N, rate)
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "frames/s")
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	}
	b.ReportMetric(0, "ns/op") // per-op time means nothing here
	for _, c := range conns {
		c.Close(websocket.StatusNormalClosure, "")
	}
}

// publish sends n events of ~450 bytes, each with its publish time, at
// rate events/s (0: as fast as acknowledgements allow), over the
// program's NATS port as a supervisor does.
func publish(a *apptest.App, n, rate int) {
	var tick *time.Ticker
	perTick := n
	if rate > 0 {
		tick = time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		perTick = max(1, rate/100)
	}
	pad := bytes.Repeat([]byte("x"), 220)
	const window = 256
	batch := make([]testutil.Event, 0, max(perTick, window))
	for sent := 0; sent < n; {
		if rate == 0 {
			perTick = min(window, n-sent)
		}
		batch = batch[:0]
		for range min(perTick, n-sent) {
			payload := fmt.Appendf(nil, `{"specversion":"1.0","id":"bench-%d","source":"/bench","type":"dev.cellos.events.cell.lifecycle.v1.started","time":"2026-01-01T00:00:00Z","datacontenttype":"application/json","data":{"cellId":"c-%d","formationId":"f-1","sentAt":%d,"pad":"%s"}}`,
				sent, sent%1000, time.Now().UnixNano(), pad)
			batch = append(batch, testutil.Event{Subject: "cellos.events.cell.c.started", Payload: payload})
			sent++
		}
		a.Publish(batch...)
		if tick != nil {
			<-tick.C
		}
	}
}

// sentAt reads data.sentAt from an event frame without decoding it all.
func sentAt(frame []byte) int64 {
	const key = `"sentAt":`
	i := bytes.Index(frame, []byte(key))
	if i < 0 {
		return 0
	}
	rest := frame[i+len(key):]
	end := bytes.IndexByte(rest, ',')
	v, _ := strconv.ParseInt(string(rest[:max(end, 0)]), 10, 64)
	return v
}
