package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"
)

// fanoutPoint is figure 7 at one socket count: events published at a
// fixed rate, read on every socket, publish-to-receipt latency.
type fanoutPoint struct {
	Sockets   int     `json:"sockets"`
	Rate      int     `json:"rate"`      // events/s published
	Events    int     `json:"events"`    // published
	Batch     bool    `json:"batch"`     // sockets opened with batch=1
	Frames    uint64  `json:"frames"`    // received over all sockets
	Delivered float64 `json:"delivered"` // fraction of sockets × events received
	Latency   latency `json:"latency"`   // publish call to receipt
	RSSMiB    float64 `json:"rssMiB"`    // the server's largest VmRSS meanwhile
}

// batchSupported probes /ws/events?batch=1: a server without batch frames
// refuses the unknown parameter with 400 before the upgrade.
func batchSupported(ctx context.Context, s *server, header http.Header) (bool, error) {
	c, resp, err := websocket.Dial(ctx, wsURL(s, true), &websocket.DialOptions{HTTPHeader: header})
	if err == nil {
		c.CloseNow()
		return true, nil
	}
	if resp != nil && resp.StatusCode == http.StatusBadRequest {
		return false, nil
	}
	return false, fmt.Errorf("probe /ws/events?batch=1: %w", err)
}

func wsURL(s *server, batch bool) string {
	u := "ws" + strings.TrimPrefix(s.HTTP, "http") + "/ws/events"
	if batch {
		u += "?batch=1"
	}
	return u
}

// wsReader is one socket's reader: it finds the ids of lv's events in any
// frame (one event or several) and times each against its publish.
type wsReader struct {
	conn     *websocket.Conn
	received atomic.Uint64
	frames   atomic.Uint64
	lat      []time.Duration
	err      error       // read after the reader has ended
	broken   atomic.Bool // the socket failed
}

func (r *wsReader) read(ctx context.Context, lv *live, sent []atomic.Int64, hello *sync.WaitGroup) {
	prefix := []byte(lv.prefix)
	greeted := false
	for {
		_, frame, err := r.conn.Read(ctx)
		now := time.Now()
		if err != nil {
			if ctx.Err() == nil && websocket.CloseStatus(err) == -1 {
				r.err = err
				r.broken.Store(true)
			}
			if !greeted {
				hello.Done()
			}
			return
		}
		if !greeted {
			greeted = true
			hello.Done()
		}
		r.frames.Add(1)
		for rest := frame; ; {
			i := bytes.Index(rest, prefix)
			if i < 0 {
				break
			}
			rest = rest[i+len(prefix):]
			j := 0
			for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
				j++
			}
			n, ok := lv.index(lv.prefix + string(rest[:j]))
			if ok && n >= 1 && n <= len(sent) {
				if t := sent[n-1].Load(); t != 0 {
					r.lat = append(r.lat, now.Sub(time.Unix(0, t)))
					r.received.Add(1)
				}
			}
		}
	}
}

// fanoutSpec is what one fan-out measurement sends and as whom.
type fanoutSpec struct {
	lv     *live         // the traffic
	rate   int           // events/s published
	dur    time.Duration // publish time
	header http.Header   // of every socket's upgrade (a bearer token)
	nats   []nats.Option // of the publisher's connection (its credentials)
}

// figure7 is the fan-out of figure 7: the demo's traffic of seed,
// anonymous, cfg's rate and time.
func (c *config) figure7(seed uint64) fanoutSpec {
	return fanoutSpec{lv: newLive(seed), rate: c.fanoutRate, dur: c.fanoutFor}
}

// with is sp with the traffic lv.
func (sp fanoutSpec) with(lv *live) fanoutSpec { sp.lv = lv; return sp }

// fanout opens k sockets, publishes sp.rate events/s for sp.dur, and
// waits until every socket has every event (or a minute more has passed).
func fanout(ctx context.Context, cfg *config, s *server, k int, batch bool, sp fanoutSpec) (fanoutPoint, error) {
	lv := sp.lv
	n := int(sp.dur.Seconds() * float64(sp.rate))
	p := fanoutPoint{Sockets: k, Rate: sp.rate, Events: n, Batch: batch}
	sent := make([]atomic.Int64, n)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	readers := make([]*wsReader, k)
	var hello, wg sync.WaitGroup
	defer func() {
		cancel()
		for _, r := range readers {
			if r != nil {
				r.conn.CloseNow()
			}
		}
		wg.Wait()
	}()
	for i := range readers {
		dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
		c, _, err := websocket.Dial(dctx, wsURL(s, batch), &websocket.DialOptions{HTTPHeader: sp.header})
		dcancel()
		if err != nil {
			return p, fmt.Errorf("socket %d of %d: %w", i+1, k, err)
		}
		c.SetReadLimit(64 << 20)
		readers[i] = &wsReader{conn: c}
		hello.Add(1)
		wg.Go(func() { readers[i].read(rctx, lv, sent, &hello) })
	}
	// A socket without since sees only what comes after its hello.
	if !waitTimeout(&hello, 60*time.Second) {
		return p, fmt.Errorf("%d sockets: not every socket had its hello within 60s", k)
	}

	nc, js, err := connect(s.NATS, cfg.inflight, sp.nats...)
	if err != nil {
		return p, err
	}
	defer nc.Close()
	peak := sampleRSS(rctx, s.pid())
	if _, err := publish(ctx, js, n, sp.rate, func(int) (message, error) { return lv.next() }, func(i int, t time.Time) {
		sent[i].Store(t.UnixNano())
	}); err != nil {
		return p, err
	}
	want := uint64(k * n)
	deadline := time.Now().Add(time.Minute)
	for total(readers) < want && time.Now().Before(deadline) && ctx.Err() == nil && !failed(readers) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel() // first: what the readers see after this is no error
	for _, r := range readers {
		r.conn.CloseNow()
	}
	wg.Wait()
	var all []time.Duration
	var errs []error
	for _, r := range readers {
		all = append(all, r.lat...)
		p.Frames += r.frames.Load()
		if r.err != nil && len(errs) < 3 {
			errs = append(errs, r.err)
		}
	}
	p.Delivered = float64(total(readers)) / float64(max(want, 1))
	p.Latency = latencyOf(all)
	p.RSSMiB = peak()
	readers = nil
	if len(errs) > 0 {
		cfg.say("fan-out %d sockets: socket errors: %v", k, errors.Join(errs...))
	}
	return p, nil
}

func total(rs []*wsReader) uint64 {
	var t uint64
	for _, r := range rs {
		t += r.received.Load()
	}
	return t
}

func failed(rs []*wsReader) bool {
	for _, r := range rs {
		if r.broken.Load() {
			return true
		}
	}
	return false
}

// sampleRSS samples pid's VmRSS every 100 ms until ctx ends; the returned
// function gives the largest value seen (MiB).
func sampleRSS(ctx context.Context, pid int) func() float64 {
	var mu sync.Mutex
	var peak float64
	take := func() {
		_, rss := procMem(pid)
		mu.Lock()
		peak = max(peak, rss)
		mu.Unlock()
	}
	take()
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				take()
			}
		}
	}()
	return func() float64 {
		take()
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

// waitTimeout waits for wg at most d; false if it had to give up.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}
