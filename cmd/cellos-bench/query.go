package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"cellos-allinone/demo"
)

// queryResult is figure 6: GET /v1/cells?tenant=…&state=…&limit=100.
type queryResult struct {
	Cells      int     `json:"cells"`      // registry cells when the queries began
	IngestRate int     `json:"ingestRate"` // events/s published during the busy phase
	Ingested   float64 `json:"ingested"`   // events/s acknowledged in it
	Idle       latency `json:"idle"`       // nobody publishing
	Busy       latency `json:"busy"`       // while the ingest runs
	// cellos_checkpoint_duration_seconds over the busy phase alone: the
	// commits of a steady ingest at IngestRate.
	CommitP99   float64 `json:"commitP99"` // seconds
	CommitAbove bool    `json:"commitAbove"`
	Commits     float64 `json:"commits"`
}

// latency is a distribution of durations in seconds.
type latency struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func latencyOf(ds []time.Duration) latency {
	if len(ds) == 0 {
		return latency{}
	}
	s := sortedSeconds(ds)
	return latency{N: len(s), P50: percentile(s, 0.50), P99: percentile(s, 0.99), Max: s[len(s)-1]}
}

var cellStates = []string{"admitted", "running", "completed", "failed", "destroyed"}

// queryLatency times one client's queries back to back, first with the
// server idle, then while lv's events are published at cfg.queryRate.
func queryLatency(ctx context.Context, cfg *config, s *server, lv *live) (queryResult, error) {
	r := queryResult{IngestRate: cfg.queryRate}
	st, err := s.status()
	if err != nil {
		return r, err
	}
	r.Cells = st.Registry.Cells
	idle, err := queryFor(ctx, s, time.Now().Add(cfg.queryDur/3), nil)
	if err != nil {
		return r, err
	}
	r.Idle = latencyOf(idle)

	nc, js, err := connect(s.NATS, cfg.inflight)
	if err != nil {
		return r, err
	}
	defer nc.Close()
	n := int(cfg.queryDur.Seconds() * float64(cfg.queryRate))
	commitsBefore := s.commitHistogram()
	pubDone := make(chan error, 1)
	var ps pubStats
	go func() {
		var err error
		ps, err = publish(ctx, js, n, cfg.queryRate, func(int) (message, error) { return lv.next() }, nil)
		pubDone <- err
	}()
	busy, err := queryFor(ctx, s, time.Time{}, pubDone)
	if err != nil {
		return r, err
	}
	r.Busy, r.Ingested = latencyOf(busy), ps.rate
	if h, ok := s.commitHistogram().minus(commitsBefore); ok {
		r.CommitP99, r.CommitAbove = h.quantile(0.99)
		r.Commits = h.count()
	}
	return r, nil
}

// queryFor queries until the deadline, or, with a zero deadline, until
// done delivers (whose error it returns).
func queryFor(ctx context.Context, s *server, deadline time.Time, done <-chan error) ([]time.Duration, error) {
	tenants := demo.TenantNames[:demo.DefaultTenants]
	var ds []time.Duration
	for i := 0; ; i++ {
		if !deadline.IsZero() && time.Now().After(deadline) {
			return ds, nil
		}
		select {
		case err := <-done:
			return ds, err
		case <-ctx.Done():
			return ds, ctx.Err()
		default:
		}
		q := url.Values{"tenant": {tenants[i%len(tenants)]}, "state": {cellStates[(i/len(tenants))%len(cellStates)]}, "limit": {"100"}}
		t0 := time.Now()
		resp, err := httpc.Get(s.HTTP + "/v1/cells?" + q.Encode())
		if err != nil {
			return ds, err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return ds, err
		}
		if resp.StatusCode != http.StatusOK {
			return ds, fmt.Errorf("GET /v1/cells?%s: %s", q.Encode(), resp.Status)
		}
		ds = append(ds, time.Since(t0))
	}
}
