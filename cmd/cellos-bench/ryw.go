package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// rywResult is figure 11, read-your-writes: one client writes an event
// with POST /v1/events and reads it back at once, write after write, while
// other events are published over NATS at each of cfg.rywRates.
type rywResult struct {
	Points []rywPoint `json:"points"`
	// Skipped says why it was not measured: a server without min_seq.
	Skipped string `json:"skipped,omitempty"`
}

// rywPoint is figure 11 at one ingest rate. The client's writes take
// turns: one is read back with min_seq=<the seq it was answered>, the
// next with a plain GET, which tells how often a read right after a write
// misses it without min_seq.
type rywPoint struct {
	Rate     int     `json:"rate"`     // events/s asked of the NATS publisher (0: none)
	Ingested float64 `json:"ingested"` // events/s it had acknowledged
	Post     latency `json:"post"`     // POST /v1/events
	Get      latency `json:"get"`      // GET /v1/cells/{id}?min_seq=<seq>
	EndToEnd latency `json:"endToEnd"` // POST + GET with min_seq
	Plain    int     `json:"plain"`    // plain GETs right after their POST
	Missed   int     `json:"missed"`   // of them, answered 404: the write not yet in
}

// missRate is the share of plain reads that missed their write.
func (p rywPoint) missRate() float64 { return float64(p.Missed) / float64(max(p.Plain, 1)) }

// busiest is the point of the highest ingest rate.
func (y rywResult) busiest() (rywPoint, bool) {
	if len(y.Points) == 0 {
		return rywPoint{}, false
	}
	return y.Points[len(y.Points)-1], true
}

// errNoMinSeq is a server that does not take min_seq (400
// unknown_parameter): an older binary.
var errNoMinSeq = errors.New("the server does not take min_seq")

// readYourWrites measures figure 11 on a running server of binary b:
// cfg.rywFor at each rate of cfg.rywRates, in order; lv is the traffic
// published over NATS meanwhile.
func readYourWrites(ctx context.Context, cfg *config, b binary, s *server, lv *live, run uint64) (rywResult, error) {
	var r rywResult
	nc, js, err := connect(s.NATS, cfg.inflight)
	if err != nil {
		return r, err
	}
	defer nc.Close()
	w := &writer{s: s, prefix: fmt.Sprintf("bench-ryw-%d", run)}
	for _, rate := range cfg.rywRates {
		p := rywPoint{Rate: rate}
		var t rywTimes
		if rate == 0 {
			t, err = w.loop(ctx, time.Now().Add(cfg.rywFor), nil)
		} else {
			pubDone := make(chan error, 1)
			var ps pubStats
			go func() {
				var err error
				ps, err = publish(ctx, js, int(cfg.rywFor.Seconds()*float64(rate)), rate, func(int) (message, error) { return lv.next() }, nil)
				pubDone <- err
			}()
			t, err = w.loop(ctx, time.Time{}, pubDone)
			p.Ingested = ps.rate
		}
		if errors.Is(err, errNoMinSeq) {
			return rywResult{Skipped: "the server does not take min_seq"}, nil
		}
		if err != nil {
			return r, err
		}
		p.Post, p.Get, p.EndToEnd = latencyOf(t.post), latencyOf(t.get), latencyOf(t.both)
		p.Plain, p.Missed = t.plain, t.missed
		r.Points = append(r.Points, p)
		cfg.say("%-6s read-your-writes under %d ev/s (%.0f acknowledged): GET with min_seq p50 %.1f ms p99 %.1f ms, POST + GET p50 %.1f ms p99 %.1f ms (%d); a plain GET missed its write %d of %d times",
			b.Label, rate, p.Ingested, p.Get.P50*1000, p.Get.P99*1000, p.EndToEnd.P50*1000, p.EndToEnd.P99*1000, p.Get.N, p.Missed, p.Plain)
	}
	return r, nil
}

// rywFresh is figure 11 alone (--ryw-only): on a fresh server of each
// binary, with an empty registry.
func rywFresh(ctx context.Context, cfg *config, results []*result) error {
	for i, res := range results {
		dir := filepath.Join(cfg.workDir, "ryw-"+res.Bin.Label)
		s, _, err := start(ctx, res.Bin.Path, dir, cfg.logPath(res.Bin, "ryw"), cfg.bootTimeout, cfg.serveArgs()...)
		if err != nil {
			return err
		}
		res.RYW, err = readYourWrites(ctx, cfg, res.Bin, s, newLive(cfg.seed+7000*uint64(i+1)), uint64(i))
		if err == nil {
			err = s.stop(cfg.stopTimeout)
		}
		s.kill()
		if err != nil {
			return err
		}
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
	}
	return nil
}

// writer is the read-your-writes client: it admits cells <prefix>-<n> one
// after the other and reads each back.
type writer struct {
	s      *server
	prefix string
	n      int
}

// rywTimes are the writes of one point: those read with min_seq (post,
// get, both) and the plain reads.
type rywTimes struct {
	post, get, both []time.Duration
	plain, missed   int
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
		w.n++
		withMinSeq := w.n%2 == 1
		post, get, found, err := w.once(ctx, withMinSeq)
		switch {
		case err != nil:
			return t, err
		case withMinSeq:
			t.post, t.get, t.both = append(t.post, post), append(t.get, get), append(t.both, post+get)
		default:
			t.plain++
			if !found {
				t.missed++
			}
		}
	}
}

// once POSTs cell n and GETs it, with min_seq or without. With min_seq a
// read that does not hold the write fails the run: the server broke its
// promise.
func (w *writer) once(ctx context.Context, withMinSeq bool) (post, get time.Duration, found bool, err error) {
	cell := fmt.Sprintf("%s-%07d", w.prefix, w.n)
	body, err := json.Marshal(map[string]any{
		"specversion": "1.0", "id": cell, "source": "/cellos-bench", "type": "dev.cellos.events.cell.lifecycle.v1.admitted",
		"data": map[string]any{"cellId": cell, "formationId": w.prefix},
	})
	if err != nil {
		return 0, 0, false, err
	}
	t0 := time.Now()
	status, raw, err := w.s.call(ctx, http.MethodPost, "/v1/events", body)
	if err == nil && status != http.StatusCreated {
		err = fmt.Errorf("POST /v1/events: %d %.200s", status, raw)
	}
	var pub struct {
		Seq uint64 `json:"seq"`
	}
	if err == nil {
		err = json.Unmarshal(raw, &pub)
	}
	if err != nil {
		return 0, 0, false, err
	}
	t1 := time.Now()
	path := "/v1/cells/" + cell
	if withMinSeq {
		path += fmt.Sprintf("?min_seq=%d", pub.Seq)
	}
	status, raw, err = w.s.call(ctx, http.MethodGet, path, nil)
	get = time.Since(t1)
	switch {
	case err != nil:
		return 0, 0, false, err
	case status == http.StatusBadRequest && bytes.Contains(raw, []byte("unknown_parameter")):
		return 0, 0, false, errNoMinSeq
	case status == http.StatusNotFound && !withMinSeq:
		return t1.Sub(t0), get, false, nil
	case status != http.StatusOK:
		return 0, 0, false, fmt.Errorf("GET %s: %d %.200s", path, status, raw)
	}
	if withMinSeq {
		var ans struct {
			Cursor uint64 `json:"cursor"`
		}
		if err := json.Unmarshal(raw, &ans); err != nil {
			return 0, 0, false, fmt.Errorf("GET %s: %w", path, err)
		}
		if ans.Cursor < pub.Seq {
			return 0, 0, false, fmt.Errorf("GET %s answered at cursor %d, below min_seq", path, ans.Cursor)
		}
	}
	return t1.Sub(t0), get, true, nil
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
