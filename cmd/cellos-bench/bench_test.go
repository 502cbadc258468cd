package main

import (
	"io"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// These check the arithmetic of the report, never a timing.

func TestHistogramQuantile(t *testing.T) {
	text := `# TYPE cellos_checkpoint_duration_seconds histogram
cellos_checkpoint_duration_seconds_bucket{le="0.01"} 50
cellos_checkpoint_duration_seconds_bucket{le="0.02"} 90
cellos_checkpoint_duration_seconds_bucket{le="0.04"} 100
cellos_checkpoint_duration_seconds_bucket{le="+Inf"} 100
cellos_checkpoint_duration_seconds_sum 1.2
cellos_checkpoint_duration_seconds_count 100
`
	h, ok := parseHistogram(text, "cellos_checkpoint_duration_seconds")
	if !ok || h.count() != 100 {
		t.Fatalf("parsed %+v, %v", h, ok)
	}
	for _, c := range []struct{ q, want float64 }{{0.5, 0.01}, {0.25, 0.005}, {0.7, 0.015}, {0.99, 0.038}} {
		if got, above := h.quantile(c.q); math.Abs(got-c.want) > 1e-9 || above {
			t.Errorf("quantile(%v) = %v (above %v), want %v", c.q, got, above, c.want)
		}
	}
	h, _ = parseHistogram(`x_bucket{le="0.1"} 1
x_bucket{le="+Inf"} 10
`, "x")
	if got, above := h.quantile(0.99); got != 0.1 || !above {
		t.Errorf("a rank in +Inf: %v above %v, want 0.1 above", got, above)
	}
	if got, _ := (histogram{}).quantile(0.99); !math.IsNaN(got) {
		t.Errorf("empty histogram: %v, want NaN", got)
	}

	// A phase's own observations: the counts after it minus those before.
	before := histogram{le: []float64{0.01, 0.05, math.Inf(1)}, counts: []float64{10, 10, 10}}
	after := histogram{le: []float64{0.01, 0.05, math.Inf(1)}, counts: []float64{10, 20, 20}}
	d, ok := after.minus(before)
	if !ok || d.count() != 10 {
		t.Fatalf("after.minus(before) = %+v, %v; want 10 observations", d, ok)
	}
	if got, _ := d.quantile(0.5); math.Abs(got-0.03) > 1e-9 {
		t.Errorf("median of the phase = %v, want 0.03 (all of it in (0.01, 0.05])", got)
	}
	if _, ok := after.minus(histogram{}); ok {
		t.Error("minus a missing histogram reported ok")
	}
}

func TestStats(t *testing.T) {
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median odd = %v", got)
	}
	if got := median([]float64{4, 1, 2, 3}); got != 2.5 {
		t.Errorf("median even = %v", got)
	}
	s := make([]float64, 100)
	for i := range s {
		s[i] = float64(i + 1)
	}
	if p50, p99 := percentile(s, 0.5), percentile(s, 0.99); p50 != 50 || p99 != 99 {
		t.Errorf("percentiles of 1..100: p50 %v p99 %v", p50, p99)
	}
	if got := slope([]float64{0, 1, 2}, []float64{1, 3, 5}); got != 2 {
		t.Errorf("slope = %v, want 2", got)
	}
	if got := slope([]float64{1}, []float64{1}); !math.IsNaN(got) {
		t.Errorf("slope of one point = %v, want NaN", got)
	}
}

func TestFormat(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -20000: "-20,000"} {
		if got := count(n); got != want {
			t.Errorf("count(%d) = %q, want %q", n, got, want)
		}
	}
	if got := evs(37_449); got != "37,400 ev/s" {
		t.Errorf("evs = %q", got)
	}
	if got := sec(math.NaN()); got != "—" {
		t.Errorf("sec(NaN) = %q", got)
	}
}

func TestSizes(t *testing.T) {
	c := &config{events: 1_000_000}
	if got := c.sizes(); !slices.Equal(got, []int{100_000, 300_000, 1_000_000}) {
		t.Errorf("sizes = %v", got)
	}
}

// The ids of live traffic map back to the order they were made in, which
// is how the fan-out times each event.
func TestLiveIndex(t *testing.T) {
	lv := newLive(7)
	for want := 1; want <= 3; want++ {
		m, err := lv.next()
		if err != nil {
			t.Fatal(err)
		}
		if n, ok := lv.index(m.id); !ok || n != want {
			t.Fatalf("index(%q) = %d, %v; want %d", m.id, n, ok, want)
		}
	}
	if _, ok := lv.index("demo-other-000001"); ok {
		t.Error("an id of another generator was indexed")
	}
}

func TestGenerate(t *testing.T) {
	ds, err := generate(1, 500)
	if err != nil {
		t.Fatal(err)
	}
	if ds.len() != 500 || ds.formations == 0 || ds.cells == 0 {
		t.Fatalf("%d events, %d formations, %d cells", ds.len(), ds.formations, ds.cells)
	}
	m := ds.at(499)
	if m.subject == "" || m.id == "" || m.payload[0] != '{' {
		t.Errorf("last message %+v", m)
	}
}

func TestRYWRates(t *testing.T) {
	for _, c := range []struct {
		args []string
		want []int
	}{
		{nil, []int{0, 1000, 2500, 5000}},
		{[]string{"--quick"}, []int{0, 2000}},
		{[]string{"--quick", "--ryw-rates", "500"}, []int{500}},
	} {
		cfg, err := parseFlags(c.args, io.Discard)
		if err != nil {
			t.Errorf("parseFlags(%q): %v", c.args, err)
		} else if !slices.Equal(cfg.rywRates, c.want) {
			t.Errorf("parseFlags(%q): rates %v, want %v", c.args, cfg.rywRates, c.want)
		}
	}
	for _, bad := range []string{"1000,0", "x", "-1", "0,0"} {
		if _, err := parseFlags([]string{"--ryw-rates", bad}, io.Discard); err == nil {
			t.Errorf("--ryw-rates %q was taken", bad)
		}
	}
}

// Figure 11's table: a row per rate of each binary, the idle one without
// a rate, the misses as a share; a binary without min_seq says so.
func TestReadYourWritesSection(t *testing.T) {
	r := &run{cfg: &config{rywFor: time.Second}, Results: []*result{
		{Bin: binary{Label: "before"}, RYW: rywResult{Skipped: "the server does not take min_seq"}},
		{Bin: binary{Label: "now"}, RYW: rywResult{Points: []rywPoint{
			{Rate: 0, Get: latency{N: 10, P50: 0.005, P99: 0.013, Max: 0.02}, EndToEnd: latency{N: 10}, Plain: 10, Missed: 10},
			{Rate: 5000, Ingested: 4994, Get: latency{N: 8, P50: 0.008, P99: 0.059, Max: 0.1}, EndToEnd: latency{N: 8}, Plain: 8, Missed: 6},
		}}},
	}}
	var b strings.Builder
	r.writeReadYourWrites(&b, []string{"bench-ryw.png"})
	for _, want := range []string{
		"| before | not measured: the server does not take min_seq |",
		"| now | none | 5.00 ms / 13.0 ms / 20.0 ms |",
		"| now | 5,000 ev/s / 5,000 ev/s | 8.00 ms / 59.0 ms / 100.0 ms |",
		"| 10 of 10 (100 %) |", "| 6 of 8 (75 %) |",
		"![bench-ryw.png](bench-ryw.png)",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("figure 11 lacks %q:\n%s", want, b.String())
		}
	}
	if p, ok := r.now().RYW.busiest(); !ok || p.Rate != 5000 {
		t.Errorf("busiest = %+v, %v; want the 5,000 ev/s point", p, ok)
	}
}
