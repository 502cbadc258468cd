package main

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cellos-allinone/app"
	"cellos-allinone/apptest"
	"cellos-allinone/client"
	"cellos-allinone/projection"
	"cellos-allinone/projector"
	"cellos-allinone/testutil"
)

const demoStart = "2026-11-26T10:00:00Z"

// dryRun returns the events demo generates for seed, one JSON per line.
// The rate matters: event times advance by 1/rate.
func dryRun(t *testing.T, seed, count int, rate string) []string {
	t.Helper()
	code, stdout, stderr := runCLI("demo", "--dry-run", "--seed", fmt.Sprint(seed), "--start", demoStart,
		"--rate", rate, "--count", fmt.Sprint(count))
	if code != 0 || len(lines(stdout)) != count {
		t.Fatalf("demo --dry-run --seed %d = %d with %d lines; stderr %q", seed, code, len(lines(stdout)), stderr)
	}
	return lines(stdout)
}

// storedEvents reads the whole log of a server through GET /v1/events.
func storedEvents(t *testing.T, c *client.Client) []string {
	t.Helper()
	var out []string
	var since uint64
	for {
		page, err := c.Events(testutil.Ctx(t, 10*time.Second), client.EventsQuery{Since: since, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range page.Events {
			out = append(out, string(ev.Event))
		}
		if len(page.Events) == 0 || page.Next >= page.LastSeq {
			return out
		}
		since = page.Next
	}
}

// TestDemoSeedIsDeterministic: the same seed gives byte-identical events,
// in dry runs and as stored by a server; another seed gives other events.
func TestDemoSeedIsDeterministic(t *testing.T) {
	const n = 400
	first, again, other := dryRun(t, 7, n, "0"), dryRun(t, 7, n, "0"), dryRun(t, 8, n, "0")
	if strings.Join(first, "\n") != strings.Join(again, "\n") {
		t.Fatal("two dry runs of seed 7 differ")
	}
	for i := range first {
		if first[i] == other[i] {
			t.Fatalf("event %d is the same for seeds 7 and 8: %s", i, first[i])
		}
	}

	a := apptest.Start(t, app.Config{})
	code, stdout, stderr := runCLI("demo", "--target", a.URL(), "--seed", "7", "--start", demoStart, "--rate", "0", "--count", fmt.Sprint(n))
	if code != 0 || !strings.Contains(stdout, "(seed 7)") {
		t.Fatalf("demo --target = %d, %q, %q; want 0", code, stdout, stderr)
	}
	// POST /v1/events refuses types it cannot route; everything else is
	// stored exactly as generated.
	var want []string
	for _, l := range first {
		if !strings.Contains(l, `"type":"dev.cellos.events.cell.telemetry.v1.sample"`) {
			want = append(want, l)
		}
	}
	refused := len(first) - len(want)
	if refused == 0 || !strings.Contains(stdout, fmt.Sprintf("%d events published, %d refused", len(want), refused)) {
		t.Errorf("demo summary %q; want %d published, %d refused", stdout, len(want), refused)
	}
	if got := storedEvents(t, a.Client()); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("stored events differ from the dry run of the same seed (%d vs %d events)", len(got), len(want))
	}
}

// TestDemoRunsItsOwnServer: without --target demo starts the server on
// its data dir and publishes over NATS, unknown types included; a server
// started later on that dir has them all.
func TestDemoRunsItsOwnServer(t *testing.T) {
	const n = 300
	dir := filepath.Join(t.TempDir(), "data")
	code, stdout, stderr := runCLI("demo", "--data-dir", dir, "--http-addr", "127.0.0.1:0", "--nats-addr", "127.0.0.1:0",
		"--seed", "3", "--start", demoStart, "--rate", "0", "--count", fmt.Sprint(n))
	if code != 0 || !strings.Contains(stdout, "demo: open http://127.0.0.1:") || !strings.Contains(stdout, fmt.Sprintf("%d events published, 0 refused", n)) {
		t.Fatalf("demo = %d, stdout %q, stderr %q; want 0, the URL and %d events", code, stdout, stderr, n)
	}
	a := apptest.Start(t, app.Config{DataDir: dir})
	a.WaitCursor(n)
	if got, want := storedEvents(t, a.Client()), dryRun(t, 3, n, "0"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("stored events differ from the dry run of the same seed (%d vs %d events)", len(got), len(want))
	}
	var counters projection.Counters
	var formations []projection.Formation
	a.Proj.Read(func(p projector.View) {
		counters = p.Counters()
		formations, _ = p.Formations(projection.FormationFilter{}, projection.Page{Limit: 100})
	})
	if counters.Malformed != 0 || counters.Ignored == 0 || counters.Applied+counters.Ignored != n || len(formations) == 0 {
		t.Errorf("counters %+v with %d formations; want none malformed, some ignored, formations", counters, len(formations))
	}
}

func TestDemoStopsAfterDuration(t *testing.T) {
	start := time.Now()
	code, stdout, stderr := runCLI("demo", "--dry-run", "--rate", "100", "--duration", "200ms")
	n := len(lines(stdout))
	if code != 0 || n < 1 || n > 40 || time.Since(start) > 10*time.Second || !strings.Contains(stderr, "demo: seed ") {
		t.Errorf("demo --duration 200ms = %d after %v with %d events, stderr %q; want 0, about 20 events and the seed", code, time.Since(start), n, stderr)
	}
	if !bytes.Contains([]byte(stdout), []byte(`"specversion":"1.0"`)) {
		t.Errorf("dry run printed %q, want CloudEvents", stdout)
	}
}

func TestDemoUnreachableTargetFails(t *testing.T) {
	a := apptest.Start(t, app.Config{})
	url := a.URL()
	a.Stop()
	code, _, stderr := runCLI("demo", "--target", url, "--count", "5", "--rate", "0")
	if code != 1 || !strings.Contains(stderr, "is the server running") {
		t.Errorf("demo --target (down) = %d, %q; want 1 with a hint", code, stderr)
	}
}

// TestDemoRidesOutServerRestart: demo --target keeps going when the server
// restarts under it, and the log ends up with every event once, in order.
func TestDemoRidesOutServerRestart(t *testing.T) {
	const n = 150
	dir := t.TempDir()
	a := apptest.Start(t, app.Config{DataDir: dir})
	stdout, stderr := new(testutil.Buffer), new(testutil.Buffer)
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"demo", "--target", a.URL(), "--seed", "11", "--start", demoStart,
			"--rate", "100", "--count", fmt.Sprint(n)}, stdout, stderr)
	}()
	a.WaitCursor(20)
	a.Stop()
	b := apptest.Start(t, app.Config{DataDir: dir, HTTPAddr: a.HTTP.Addr()})
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("demo exited %d; stderr:\n%s", code, stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("demo did not finish within 30s; stderr:\n%s", stderr)
	}
	var want []string
	for _, l := range dryRun(t, 11, n, "100") {
		if !strings.Contains(l, `"type":"dev.cellos.events.cell.telemetry.v1.sample"`) {
			want = append(want, l)
		}
	}
	if got := storedEvents(t, b.Client()); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("stored %d events, want the %d of the dry run, once each, in order; demo stderr:\n%s", len(got), len(want), stderr)
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				t.Errorf("first difference at %d:\n got %s\nwant %s", i, got[i], want[i])
				break
			}
		}
	}
}
