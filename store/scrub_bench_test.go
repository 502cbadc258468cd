package store

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"cellos-allinone/testutil"
)

// BenchmarkScrub runs whole passes at full speed over a fold of 100,000
// workload events: the CPU a pass costs per key (docs/benchmarks.md,
// "Scrub").
func BenchmarkScrub(b *testing.B) {
	const n = 100_000
	s := mustOpen(b, filepath.Join(b.TempDir(), "cp.db"))
	s.db.NoSync = true
	write(b, s, "e", testutil.Workload(n), 10_000)
	var rep ScrubReport
	for b.Loop() {
		var err error
		if rep, err = s.Scrub(context.Background(), ScrubOptions{Budget: 1}); err != nil || rep.Damaged != 0 {
			b.Fatalf("Scrub: %v, %d damage %q", err, rep.Damaged, rep.Damage)
		}
	}
	b.ReportMetric(float64(rep.Checked), "keys/pass")
	b.ReportMetric(float64(rep.CPU.Nanoseconds())/float64(rep.Checked), "cpu-ns/key")
}

// TestScrubStateFile scrubs the state file named by CELLOS_SCRUB_FILE
// (a copy: a pass writes nothing, but bbolt's check takes a write
// transaction) once at full speed and once at CELLOS_SCRUB_BUDGET
// (default 0.05), and logs the figures of docs/benchmarks.md, "Scrub".
func TestScrubStateFile(t *testing.T) {
	path := os.Getenv("CELLOS_SCRUB_FILE")
	if path == "" {
		t.Skip("CELLOS_SCRUB_FILE names no state file")
	}
	budget := DefaultScrubBudget
	if v := os.Getenv("CELLOS_SCRUB_BUDGET"); v != "" {
		var err error
		if budget, err = strconv.ParseFloat(v, 64); err != nil {
			t.Fatal(err)
		}
	}
	s := mustOpen(t, path)
	fs, err := s.FileStats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("state file: %d bytes, %d live", fs.FileBytes, fs.LiveBytes)
	for _, b := range []float64{1, budget} {
		var longest ScrubStep
		parts := map[string]time.Duration{} // the longest step of each part
		var order []string
		rep, err := s.Scrub(context.Background(), ScrubOptions{Budget: b, OnStep: func(st ScrubStep) {
			if st.Duration > longest.Duration {
				longest = st
			}
			if _, ok := parts[st.Part]; !ok {
				order = append(order, st.Part)
			}
			parts[st.Part] = max(parts[st.Part], st.Duration)
		}})
		if err != nil || rep.Damaged != 0 {
			t.Fatalf("Scrub: %v, %d damage %q", err, rep.Damaged, rep.Damage)
		}
		t.Logf("budget %.2f: %d keys in %d steps; CPU %v, steps %v, wall %v (duty %.3f); longest step %v (%d keys)",
			b, rep.Checked, rep.Steps, rep.CPU, rep.Busy, rep.Duration, float64(rep.Busy)/float64(rep.Duration), longest.Duration, longest.Checked)
		for _, p := range order {
			t.Logf("  longest step of %s: %v", p, parts[p].Round(time.Microsecond))
		}
	}
}
