package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// rywResult is figure 6b, read-your-writes: one client POSTs an event and
// reads it back at once with GET /v1/cells/{id}?min_seq=<the seq it was
// answered>, one write after the other; idle first, then while events are
// published at cfg.queryRate.
type rywResult struct {
	IngestRate int        `json:"ingestRate"` // events/s published during the busy phase
	Ingested   float64    `json:"ingested"`   // events/s acknowledged in it
	Idle       rywLatency `json:"idle"`
	Busy       rywLatency `json:"busy"`
	// Skipped says why it was not measured: a server without min_seq.
	Skipped string `json:"skipped,omitempty"`
}

// rywLatency times each write: the POST, the GET with min_seq alone, and
// both, end to end.
type rywLatency struct {
	Post     latency `json:"post"`
	Get      latency `json:"get"`
	EndToEnd latency `json:"endToEnd"`
}

// errNoMinSeq is a server that does not take min_seq (400
// unknown_parameter): an older binary.
var errNoMinSeq = fmt.Errorf("the server does not take min_seq")

// readYourWrites measures figure 6b on a running server.
func readYourWrites(ctx context.Context, cfg *config, s *server, lv *live, run uint64) (rywResult, error) {
	r := rywResult{IngestRate: cfg.queryRate}
	w := &writer{s: s, prefix: fmt.Sprintf("bench-ryw-%d", run)}
	idle, err := w.loop(ctx, time.Now().Add(cfg.queryDur/3), nil)
	if err == errNoMinSeq {
		r.Skipped = "the server does not take min_seq"
		return r, nil
	}
	if err != nil {
		return r, err
	}
	r.Idle = idle.latency()

	nc, js, err := connect(s.NATS, cfg.inflight)
	if err != nil {
		return r, err
	}
	defer nc.Close()
	n := int(cfg.queryDur.Seconds() * float64(cfg.queryRate))
	pubDone := make(chan error, 1)
	var ps pubStats
	go func() {
		var err error
		ps, err = publish(ctx, js, n, cfg.queryRate, func(int) (message, error) { return lv.next() }, nil)
		pubDone <- err
	}()
	busy, err := w.loop(ctx, time.Time{}, pubDone)
	if err != nil {
		return r, err
	}
	r.Busy, r.Ingested = busy.latency(), ps.rate
	return r, nil
}

// writer is the read-your-writes client: it admits cells <prefix>-<n> one
// after the other and reads each back.
type writer struct {
	s      *server
	prefix string
	n      int
}

type rywTimes struct{ post, get, both []time.Duration }

func (t rywTimes) latency() rywLatency {
	return rywLatency{Post: latencyOf(t.post), Get: latencyOf(t.get), EndToEnd: latencyOf(t.both)}
}

// loop writes and reads until the deadline, or, with a zero deadline,
// until done delivers (whose error it returns).
func (w *writer) loop(ctx context.Context, deadline time.Time, done <-chan error) (rywTimes, error) {
	var t rywTimes
	for {
		if !deadline.IsZero() && time.Now().After(deadline) {
			return t, nil
		}
		select {
		case err := <-done:
			return t, err
		case <-ctx.Done():
			return t, ctx.Err()
		default:
		}
		post, get, err := w.once(ctx)
		if err != nil {
			return t, err
		}
		t.post, t.get, t.both = append(t.post, post), append(t.get, get), append(t.both, post+get)
	}
}

// once POSTs one cell and GETs it with min_seq.
func (w *writer) once(ctx context.Context) (post, get time.Duration, err error) {
	w.n++
	cell := fmt.Sprintf("%s-%07d", w.prefix, w.n)
	body, err := json.Marshal(map[string]any{
		"specversion": "1.0", "id": cell, "source": "/cellos-bench", "type": "dev.cellos.events.cell.lifecycle.v1.admitted",
		"data": map[string]any{"cellId": cell, "formationId": w.prefix},
	})
	if err != nil {
		return 0, 0, err
	}
	t0 := time.Now()
	var pub struct {
		Seq uint64 `json:"seq"`
	}
	status, raw, err := w.s.call(ctx, http.MethodPost, "/v1/events", body)
	if err == nil && status != http.StatusCreated {
		err = fmt.Errorf("POST /v1/events: %d %.200s", status, raw)
	}
	if err == nil {
		err = json.Unmarshal(raw, &pub)
	}
	if err != nil {
		return 0, 0, err
	}
	t1 := time.Now()
	path := fmt.Sprintf("/v1/cells/%s?min_seq=%d", cell, pub.Seq)
	status, raw, err = w.s.call(ctx, http.MethodGet, path, nil)
	switch {
	case err != nil:
		return 0, 0, err
	case status == http.StatusBadRequest && bytes.Contains(raw, []byte("unknown_parameter")):
		return 0, 0, errNoMinSeq
	case status != http.StatusOK:
		// A read-your-writes read that misses its write is a failure of
		// the server, not a slow answer.
		return 0, 0, fmt.Errorf("GET %s: %d %.200s", path, status, raw)
	}
	return t1.Sub(t0), time.Since(t1), nil
}

// call sends one request and reads the whole answer.
func (s *server) call(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.HTTP+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, raw, err
}
