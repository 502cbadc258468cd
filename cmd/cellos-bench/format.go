package main

import (
	"fmt"
	"math"
	"slices"
	"strconv"
)

// count formats n with thousands separators: 1,000,000.
func count(n int) string {
	s := strconv.Itoa(max(n, -n))
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if n < 0 {
		s = "-" + s
	}
	return s
}

func bad(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) }

func sec(s float64) string {
	switch {
	case bad(s):
		return "—"
	case s < 1:
		return fmt.Sprintf("%.0f ms", s*1000)
	}
	return fmt.Sprintf("%.2f s", s)
}

// ms is a latency: ms below a second, s above.
func ms(s float64) string {
	switch {
	case bad(s):
		return "—"
	case s >= 1:
		return fmt.Sprintf("%.2f s", s)
	case s < 0.01:
		return fmt.Sprintf("%.2f ms", s*1000)
	}
	return fmt.Sprintf("%.1f ms", s*1000)
}

func mib(v float64) string {
	if bad(v) {
		return "—"
	}
	return fmt.Sprintf("%.0f MiB", v)
}

func bytesMiB(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// evs is a rate in events/s, rounded to a hundred.
func evs(v float64) string {
	if bad(v) {
		return "—"
	}
	return count(int(math.Round(v/100)*100)) + " ev/s"
}

func pct(v float64) string {
	if bad(v) {
		return "—"
	}
	return fmt.Sprintf("%.0f %%", v*100)
}

// ratio is a/b with what it is relative to.
func ratio(a, b float64, what string) string {
	if bad(a) || bad(b) || b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f %s", a/b, what)
}

func contains(xs []string, x string) bool { return slices.Contains(xs, x) }
