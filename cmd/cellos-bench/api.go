package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// status is the part of GET /v1/status this command reads.
type status struct {
	Ready  bool   `json:"ready"`
	Cursor uint64 `json:"cursor"`
	Lag    uint64 `json:"lag"`
	Stream struct {
		FirstSeq uint64 `json:"firstSeq"`
		LastSeq  uint64 `json:"lastSeq"`
		Messages uint64 `json:"messages"`
		Bytes    uint64 `json:"bytes"`
	} `json:"stream"`
	Boot struct {
		Replayed   uint64 `json:"replayed"`
		DurationMs int64  `json:"durationMs"`
		Rebuild    string `json:"rebuild"`
	} `json:"boot"`
	Registry struct {
		Formations int `json:"formations"`
		Cells      int `json:"cells"`
	} `json:"registry"`
}

func (s *server) status() (status, error) {
	var st status
	resp, err := httpc.Get(s.HTTP + "/v1/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /v1/status: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// waitCaughtUp polls /v1/status every 10 ms until the projection has
// applied everything up to seq (cursor ≥ seq and lag 0), and returns
// when it saw that.
func (s *server) waitCaughtUp(ctx context.Context, seq uint64, timeout time.Duration) (status, time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		st, err := s.status()
		if err == nil && st.Ready && st.Cursor >= seq && st.Lag == 0 {
			return st, time.Now(), nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil || !s.running() {
			return st, time.Time{}, fmt.Errorf("projection not caught up with seq %d within %s: cursor %d lag %d (err %v)", seq, timeout, st.Cursor, st.Lag, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// metrics is the server's /metrics text.
func (s *server) metrics() (string, error) {
	resp, err := httpc.Get(s.HTTP + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return string(b), err
}

// histogram is one Prometheus histogram: cumulative counts per upper
// bound, ascending, +Inf last.
type histogram struct {
	le     []float64
	counts []float64
}

// parseHistogram reads the buckets of the unlabelled histogram name from
// Prometheus text.
func parseHistogram(text, name string) (histogram, bool) {
	var h histogram
	prefix := name + `_bucket{le="`
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), prefix)
		if !ok {
			continue
		}
		bound, val, ok := strings.Cut(rest, `"} `)
		if !ok {
			continue
		}
		le, err1 := strconv.ParseFloat(bound, 64) // "+Inf" parses as +Inf
		c, err2 := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err1 != nil || err2 != nil {
			continue
		}
		h.le, h.counts = append(h.le, le), append(h.counts, c)
	}
	sort.Sort(byBound(h))
	return h, len(h.le) > 0
}

// commitHistogram is the server's cellos_checkpoint_duration_seconds now;
// empty when it cannot be read.
func (s *server) commitHistogram() histogram {
	text, err := s.metrics()
	if err != nil {
		return histogram{}
	}
	h, _ := parseHistogram(text, "cellos_checkpoint_duration_seconds")
	return h
}

// minus is the histogram of the observations made after earlier was read
// (the same buckets); false when either is missing or they differ.
func (h histogram) minus(earlier histogram) (histogram, bool) {
	if len(h.le) == 0 || len(earlier.le) != len(h.le) {
		return histogram{}, false
	}
	d := histogram{le: h.le, counts: make([]float64, len(h.counts))}
	for i := range h.counts {
		if earlier.le[i] != h.le[i] {
			return histogram{}, false
		}
		d.counts[i] = h.counts[i] - earlier.counts[i]
	}
	return d, true
}

type byBound histogram

func (b byBound) Len() int           { return len(b.le) }
func (b byBound) Less(i, j int) bool { return b.le[i] < b.le[j] }
func (b byBound) Swap(i, j int) {
	b.le[i], b.le[j] = b.le[j], b.le[i]
	b.counts[i], b.counts[j] = b.counts[j], b.counts[i]
}

func (h histogram) count() float64 {
	if len(h.counts) == 0 {
		return 0
	}
	return h.counts[len(h.counts)-1]
}

// quantile estimates the q-quantile as Prometheus's histogram_quantile
// does: linear inside the bucket that holds the rank. A rank in the +Inf
// bucket gives the highest finite bound, and above=true (the value is
// beyond what the buckets resolve). NaN without observations.
func (h histogram) quantile(q float64) (v float64, above bool) {
	total := h.count()
	if total == 0 {
		return math.NaN(), false
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for i, le := range h.le {
		if h.counts[i] >= rank {
			if math.IsInf(le, 1) {
				return lower, true
			}
			in := h.counts[i] - below
			if in <= 0 {
				return le, false
			}
			return lower + (le-lower)*(rank-below)/in, false
		}
		lower, below = le, h.counts[i]
	}
	return lower, true
}
