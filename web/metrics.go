package web

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"cellos-allinone/projector"
)

// RouteUnmatched is the route label of a request no route matched (404,
// 405): a label never holds a raw path, so a scan cannot grow the series.
const RouteUnmatched = "unmatched"

// Ingest results: the result label of cellos_ingest_events_total.
const (
	IngestAccepted  = "accepted"  // stored now (201)
	IngestDuplicate = "duplicate" // its id was stored before (200)
	IngestRefused   = "refused"   // nothing stored; the code label says why
)

// metrics are the server's own series (docs/operations.md, "Metrics and
// alerts"). With a nil Registerer they are counted but not exported.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	ingest   *prometheus.CounterVec
	waiting  prometheus.Gauge // registry reads with min_seq under way
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cellos_http_requests_total",
			Help: "HTTP requests answered, by route pattern (\"unmatched\" when none matched) and status code; a WebSocket counts as 101 when it ends.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "cellos_http_request_duration_seconds",
			Help: "Time to answer an HTTP request, by route pattern and status code (WebSockets, which live on, are not observed).",
			// 0.5 ms to 10 s: a read from the projection is sub-millisecond,
			// an ingest waits for JetStream's fsync.
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "code"}),
		ingest: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cellos_ingest_events_total",
			Help: "Events offered to POST /v1/events, by result (accepted, duplicate, refused) and, when refused, the error code.",
		}, []string{"result", "code"}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cellos_http_reads_waiting",
			Help: "Registry reads with min_seq (read-your-writes) under way: waiting for the projector to commit the sequence they asked for.",
		}),
	}
	// The ingest series exist from the start, so that a rate over them is
	// 0, not absent, before the first event.
	m.ingest.WithLabelValues(IngestAccepted, "")
	m.ingest.WithLabelValues(IngestDuplicate, "")
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.ingest, m.waiting)
	}
	return m
}

// ingested counts one event offered to POST /v1/events: err is why it was
// refused (nil when it was stored), duplicate whether its id was stored
// before. A handler that takes several events in one request counts each.
func (m *metrics) ingested(err error, duplicate bool) {
	switch {
	case err != nil:
		m.ingest.WithLabelValues(IngestRefused, codeOf(err)).Inc()
	case duplicate:
		m.ingest.WithLabelValues(IngestDuplicate, "").Inc()
	default:
		m.ingest.WithLabelValues(IngestAccepted, "").Inc()
	}
}

// countRefused counts a request to an ingest handler refused whole (bad
// media type, too large, invalid, log unavailable) as one refused event;
// what the handler stored it counts itself, through ingested.
func (s *Server) countRefused(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		err := h(w, r)
		if err != nil {
			s.metrics.ingested(err, false)
		}
		return err
	}
}

// codeOf is the error code writeError answers err with.
func codeOf(err error) string {
	if errors.Is(err, projector.ErrStateDamaged) {
		return CodeStateDamaged
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// observe wraps w to record the request under route once it is answered;
// call done when the handler has returned.
func (m *metrics) observe(w http.ResponseWriter, route string) *statusRecorder {
	if route == "" {
		route = RouteUnmatched
	}
	return &statusRecorder{ResponseWriter: w, m: m, route: route, start: time.Now()}
}

// statusRecorder remembers the status a handler answered with. It keeps
// the writer's other abilities (Hijack, Flush) reachable through Unwrap,
// which http.ResponseController uses.
type statusRecorder struct {
	http.ResponseWriter
	m      *metrics
	route  string
	start  time.Time
	status int // 0 until the header is written
}

func (r *statusRecorder) WriteHeader(status int) {
	if r.status == 0 || r.status < 200 && r.status != http.StatusSwitchingProtocols {
		// The first final status counts (101 is one: the upgrade);
		// informational headers (103) may precede it.
		r.status = status
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *statusRecorder) done() {
	status := r.status
	if status == 0 {
		status = http.StatusOK // what net/http sends for a handler that wrote nothing
	}
	code := strconv.Itoa(status)
	r.m.requests.WithLabelValues(r.route, code).Inc()
	if status != http.StatusSwitchingProtocols {
		r.m.duration.WithLabelValues(r.route, code).Observe(time.Since(r.start).Seconds())
	}
}
