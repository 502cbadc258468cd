package web_test

import (
	"bytes"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"cellos-allinone/app"
	"cellos-allinone/testutil"
	"cellos-allinone/web"
)

// scrape reads /metrics as Prometheus does and parses it.
func (e *wsEnv) scrape(t testing.TB) (map[string]*dto.MetricFamily, []byte) {
	t.Helper()
	status, body := e.do(t, "GET", "/metrics", "", nil)
	if status != http.StatusOK {
		t.Fatalf("GET /metrics = %d", status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams, body
}

// value is the value of the series of name whose labels include want
// (a histogram's sample count); ok is false when there is no such series.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (v float64, ok bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		for k, w := range want {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == w {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// TestMetricsCountByRoutePattern drives requests of each kind and reads
// them back from /metrics: HTTP answers under their route pattern (never
// an id or a raw path), ingest results by code, WebSocket sockets, frames
// and events, and the stream's size against its cap. With
// CELLOS_METRICS_SCRAPE set, the last scrape is written there (.ci/run
// checks it with promtool).
func TestMetricsCountByRoutePattern(t *testing.T) {
	const maxBytes = 64 << 20
	e := wsStartConfig(t, app.Config{MaxBytes: maxBytes})
	seqs := e.publish(t, "cellos.events.cell.c-secret-7.admitted", 3)
	e.a.WaitCursor(seqs[len(seqs)-1])

	// Reads: a cell that exists, one that does not, no route, a wrong method.
	for _, r := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/v1/cells/c-secret-7", 200},
		{"GET", "/v1/cells/c-missing-42", 404},
		{"GET", "/no/such/place-99", 404},
		{"DELETE", "/v1/cells", 405},
	} {
		if status, body := e.do(t, r.method, r.path, "", nil); status != r.want {
			t.Fatalf("%s %s = %d %s, want %d", r.method, r.path, status, body, r.want)
		}
	}
	// Ingest: accepted, the same id again, then two refusals, each counted
	// under the code its answer carries.
	ev := []byte(`{"specversion":"1.0","id":"ev-metrics-1","source":"/test","type":"dev.cellos.events.cell.lifecycle.v1.started","data":{"cellId":"c-secret-7"}}`)
	for _, want := range []int{201, 200} {
		if status, body := e.do(t, "POST", "/v1/events", "application/cloudevents+json", ev); status != want {
			t.Fatalf("POST /v1/events = %d %s, want %d", status, body, want)
		}
	}
	refused := map[[2]string]float64{} // {HTTP status, error code}: requests
	for _, r := range []struct {
		ct   string
		body []byte
	}{
		{"application/cloudevents+json", []byte(`{"specversion":"1.0","id":"ev-metrics-2"}`)}, // no source, no type
		{"application/cloudevents+json", []byte(`{"pad":"` + strings.Repeat("x", web.MaxEventBytes) + `"}`)},
	} {
		status, body := e.do(t, "POST", "/v1/events", r.ct, r.body)
		if status < 400 {
			t.Fatalf("POST /v1/events (%.40s…) = %d %s, want a refusal", r.body, status, body)
		}
		refused[[2]string{strconv.Itoa(status), decodeError(t, string(body)).Error.Code}]++
	}
	if len(refused) != 2 {
		t.Fatalf("the two refusals answered %v, want two different codes", refused)
	}

	// A socket from the start gets the hello and the 4 stored events: one
	// event frame each without batch=1.
	c, _ := e.dial(t, "since=0", nil)
	readEvents(t, c, 4)
	// A frame is counted once its write has returned, which can be after
	// the client has read it.
	var open, frames, sent float64
	testutil.WaitFor(t, 10*time.Second, "the socket's frames in /metrics", func() bool {
		fams, _ := e.scrape(t)
		open, _ = value(fams, "cellos_ws_sockets", nil)
		frames, _ = value(fams, "cellos_ws_frames_sent_total", nil)
		sent, _ = value(fams, "cellos_ws_events_sent_total", nil)
		return frames >= 5 && sent >= 4
	})
	if open != 1 || frames != 5 || sent != 4 {
		t.Errorf("with one socket open after the hello and 4 events: cellos_ws_sockets %v, cellos_ws_frames_sent_total %v, cellos_ws_events_sent_total %v; want 1, 5, 4",
			open, frames, sent)
	}
	c.Close(websocket.StatusNormalClosure, "")

	// A WebSocket is counted (101) once its handler has returned.
	var (
		fams map[string]*dto.MetricFamily
		body []byte
	)
	testutil.WaitFor(t, 10*time.Second, "the closed socket in /metrics", func() bool {
		fams, body = e.scrape(t)
		v, _ := value(fams, "cellos_http_requests_total", map[string]string{"route": "GET /ws/events", "code": "101"})
		open, _ := value(fams, "cellos_ws_sockets", nil)
		return v == 1 && open == 0
	})
	// The stream's size is measured every second.
	testutil.WaitFor(t, 5*time.Second, "the stream's size in /metrics", func() bool {
		fams, body = e.scrape(t)
		v, _ := value(fams, "cellos_stream_bytes", nil)
		return v > 0
	})

	type check struct {
		name   string
		labels map[string]string
		want   float64
	}
	checks := []check{
		{"cellos_http_requests_total", map[string]string{"route": "GET /v1/cells/{id}", "code": "200"}, 1},
		{"cellos_http_requests_total", map[string]string{"route": "GET /v1/cells/{id}", "code": "404"}, 1},
		{"cellos_http_request_duration_seconds", map[string]string{"route": "GET /v1/cells/{id}", "code": "404"}, 1},
		{"cellos_http_requests_total", map[string]string{"route": "unmatched", "code": "404"}, 1},
		{"cellos_http_requests_total", map[string]string{"route": "unmatched", "code": "405"}, 1},
		{"cellos_http_requests_total", map[string]string{"route": "POST /v1/events", "code": "201"}, 1},
		{"cellos_http_requests_total", map[string]string{"route": "POST /v1/events", "code": "200"}, 1},
		{"cellos_ingest_events_total", map[string]string{"result": "accepted", "code": ""}, 1},
		{"cellos_ingest_events_total", map[string]string{"result": "duplicate", "code": ""}, 1},
		{"cellos_ws_closed_total", map[string]string{"reason": "client"}, 1},
		{"cellos_stream_max_bytes", nil, maxBytes},
	}
	for sc, n := range refused {
		checks = append(checks,
			check{"cellos_http_requests_total", map[string]string{"route": "POST /v1/events", "code": sc[0]}, n},
			check{"cellos_ingest_events_total", map[string]string{"result": "refused", "code": sc[1]}, n})
	}
	for _, c := range checks {
		if got, ok := value(fams, c.name, c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	// A WebSocket's lifetime is no request latency.
	if _, ok := value(fams, "cellos_http_request_duration_seconds", map[string]string{"route": "GET /ws/events"}); ok {
		t.Error("cellos_http_request_duration_seconds has a series for GET /ws/events, whose duration is a socket's lifetime")
	}
	// No label holds an id, a path or anything a client chose.
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				for _, leak := range []string{"c-secret-7", "c-missing-42", "place-99", "ev-metrics-1", "/no/"} {
					if strings.Contains(l.GetValue(), leak) {
						t.Errorf("%s has label %s=%q, holding %q", name, l.GetName(), l.GetValue(), leak)
					}
				}
			}
		}
	}
	if out := os.Getenv("CELLOS_METRICS_SCRAPE"); out != "" {
		if err := os.WriteFile(out, body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
