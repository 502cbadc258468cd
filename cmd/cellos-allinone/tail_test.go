package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"cellos-allinone/app"
	"cellos-allinone/apptest"
	"cellos-allinone/testutil"
)

// startTail runs tail in the background; the channel yields its exit code.
func startTail(args ...string) (stdout, stderr *testutil.Buffer, code <-chan int) {
	stdout, stderr = new(testutil.Buffer), new(testutil.Buffer)
	done := make(chan int, 1)
	go func() { done <- run(append([]string{"tail"}, args...), stdout, stderr) }()
	return stdout, stderr, done
}

func waitExit(t *testing.T, code <-chan int, stdout, stderr *testutil.Buffer) {
	t.Helper()
	select {
	case c := <-code:
		if c != 0 {
			t.Fatalf("tail exited %d; stderr:\n%s", c, stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("tail did not exit within 30s; stdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
}

func cellEvents(from, to int) [][]byte {
	var evs [][]byte
	for i := from; i <= to; i++ {
		evs = append(evs, cloudEvent("cell.lifecycle.v1.admitted", map[string]any{"cellId": fmt.Sprintf("c-%d", i)}))
	}
	return evs
}

// frames parses tail -o json output.
func frames(t *testing.T, out string) (seqs []uint64, ids []string) {
	t.Helper()
	for _, l := range lines(out) {
		var f struct {
			Seq   uint64 `json:"seq"`
			Event struct {
				ID string `json:"id"`
			} `json:"event"`
		}
		if err := json.Unmarshal([]byte(l), &f); err != nil {
			t.Fatalf("tail -o json printed %q: %v", l, err)
		}
		seqs, ids = append(seqs, f.Seq), append(ids, f.Event.ID)
	}
	return seqs, ids
}

func idsOf(t *testing.T, events [][]byte) []string {
	var ids []string
	for _, ev := range events {
		var e struct{ ID string }
		if err := json.Unmarshal(ev, &e); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	return ids
}

// TestTailReconnectsAcrossRestart stops the server under a running tail
// and starts it again on the same data dir and port: tail prints every
// event once, in order, across the restart.
func TestTailReconnectsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	a := apptest.Start(t, app.Config{DataDir: dir})
	before, after := cellEvents(1, 5), cellEvents(6, 12)
	mustPublish(t, a.Client(), before...)

	stdout, stderr, code := startTail("--since", "0", "--count", "12", "-o", "json", "--server", a.URL())
	stdout.WaitFor(t, 10*time.Second, "the first 5 events", func(s string) bool { return len(lines(s)) == 5 })
	a.Stop()
	stderr.WaitFor(t, 10*time.Second, "tail to lose the server", func(s string) bool { return strings.Contains(s, "retrying in") })

	b := apptest.Start(t, app.Config{DataDir: dir, HTTPAddr: a.HTTP.Addr()})
	mustPublish(t, b.Client(), after[:3]...)
	stderr.WaitFor(t, 40*time.Second, "tail to reconnect", func(s string) bool { return strings.Contains(s, "reconnected to") })
	mustPublish(t, b.Client(), after[3:]...)
	waitExit(t, code, stdout, stderr)

	t.Logf("tail stderr:\n%s", stderr)
	seqs, ids := frames(t, stdout.String())
	if want := "[1 2 3 4 5 6 7 8 9 10 11 12]"; fmt.Sprint(seqs) != want {
		t.Errorf("sequences printed = %v, want %s (no gap, no duplicate)", seqs, want)
	}
	if want := idsOf(t, append(before, after...)); fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Errorf("event ids printed = %v, want %v", ids, want)
	}
}

// TestTailReportsRetentionLoss: events after --since were purged; tail
// says which were lost and goes on from the first retained one.
func TestTailReportsRetentionLoss(t *testing.T) {
	a := apptest.Start(t, app.Config{})
	mustPublish(t, a.Client(), cellEvents(1, 5)...)
	if err := a.Events.Handle().Purge(testutil.Ctx(t, 10*time.Second), jetstream.WithPurgeSequence(4)); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := startTail("--since", "1", "--count", "3", "--server", a.URL())
	stdout.WaitFor(t, 10*time.Second, "events 4 and 5", func(s string) bool { return len(lines(s)) == 2 })
	mustPublish(t, a.Client(), cellEvents(6, 6)...)
	waitExit(t, code, stdout, stderr)

	if want := "events 2..3 were lost to retention; continuing from 4"; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr = %q, want it to say %q", stderr, want)
	}
	var got []string
	for _, l := range lines(stdout.String()) {
		got = append(got, strings.Fields(l)[0])
	}
	if fmt.Sprint(got) != "[#4 #5 #6]" {
		t.Errorf("printed %v, want #4 #5 #6:\n%s", got, stdout)
	}
}

// TestTailSinceZeroAfterExpiry: --since 0 on a stream whose first events
// expired prints every retained event and reports no loss: a client that
// held nothing has lost nothing (docs/design.md §5).
func TestTailSinceZeroAfterExpiry(t *testing.T) {
	a := apptest.Start(t, app.Config{})
	mustPublish(t, a.Client(), cellEvents(1, 5)...)
	if err := a.Events.Handle().Purge(testutil.Ctx(t, 10*time.Second), jetstream.WithPurgeSequence(4)); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := startTail("--since", "0", "--count", "2", "--server", a.URL())
	waitExit(t, code, stdout, stderr)
	if strings.Contains(stderr.String(), "lost") {
		t.Errorf("stderr = %q, want no loss reported", stderr)
	}
	var got []string
	for _, l := range lines(stdout.String()) {
		got = append(got, strings.Fields(l)[0])
	}
	if fmt.Sprint(got) != "[#4 #5]" {
		t.Errorf("printed %v, want #4 #5:\n%s", got, stdout)
	}
}

// TestTailNewEventsOnlyWithSubject: without --since only events published
// after tail connected are printed, filtered by subject, one line each.
func TestTailNewEventsOnlyWithSubject(t *testing.T) {
	a := apptest.Start(t, app.Config{})
	c := a.Client()
	mustPublish(t, c, cloudEvent("cell.lifecycle.v1.failed", map[string]any{"cellId": "c-0", "reason": "before"}))
	stdout, stderr, code := startTail("--subject", "cell.*.failed", "--count", "2", "--server", a.URL())
	stderr.WaitFor(t, 10*time.Second, "tail to connect", func(s string) bool { return strings.Contains(s, "connected to") })
	mustPublish(t, c,
		cloudEvent("cell.lifecycle.v1.admitted", map[string]any{"cellId": "c-1", "formationId": "f-1", "tenantId": "acme"}),
		cloudEvent("cell.lifecycle.v1.failed", map[string]any{"cellId": "c-1", "reason": "node lost"}),
		cloudEvent("cell.lifecycle.v1.failed", map[string]any{"cellId": "c-2", "reason": "oom"}),
	)
	waitExit(t, code, stdout, stderr)
	want := "#3 2026-11-26T10:00:00Z cell.lifecycle.v1.failed cell=c-1 reason=\"node lost\"\n" +
		"#4 2026-11-26T10:00:00Z cell.lifecycle.v1.failed cell=c-2 reason=oom\n"
	if stdout.String() != want {
		t.Errorf("tail printed\n%s\nwant\n%s", stdout, want)
	}
}

// TestTailPrintsEveryEventOfABatch: history comes in batch frames (tail
// asks for batch=1); tail still prints one line per event, in order.
func TestTailPrintsEveryEventOfABatch(t *testing.T) {
	a := apptest.Start(t, app.Config{})
	const n = 700 // several batch frames of history
	events := make([]testutil.Event, n)
	for i := range events {
		events[i] = testutil.Cell(fmt.Sprintf("c-%d", i%7), "started", nil)
	}
	a.Publish(events...)
	stdout, stderr, code := startTail("--since", "0", "--count", strconv.Itoa(n+1), "--server", a.URL())
	stdout.WaitFor(t, 20*time.Second, "the stored events", func(s string) bool { return len(lines(s)) == n })
	a.Publish(testutil.Cell("c-live", "started", nil))
	waitExit(t, code, stdout, stderr)
	got := lines(stdout.String())
	for i, l := range got {
		if want := fmt.Sprintf("#%d ", i+1); !strings.HasPrefix(l, want) || !strings.Contains(l, " cell.lifecycle.v1.started cell=c-") {
			t.Fatalf("line %d = %q, want %q… for a started cell", i+1, l, want)
		}
	}
	if len(got) != n+1 {
		t.Fatalf("%d lines, want %d", len(got), n+1)
	}
}

func TestTailBadSubjectIsUsageError(t *testing.T) {
	a := apptest.Start(t, app.Config{})
	code, _, stderr := runCLI("tail", "--subject", "cell..x", "--server", a.URL())
	if code != 2 || !strings.Contains(stderr, "subject") {
		t.Errorf("tail --subject cell..x = %d, %q; want 2 with the server's reason", code, stderr)
	}
}

// TestTailCursorBeyondEnd: a --since past the end of the stream (its tail
// was lost, or the wrong server) is said so, and tail goes on with new
// events instead of printing old ones again.
func TestTailCursorBeyondEnd(t *testing.T) {
	a := apptest.Start(t, app.Config{})
	c := a.Client()
	mustPublish(t, c, cellEvents(1, 3)...)
	stdout, stderr, code := startTail("--since", "100", "--count", "1", "--server", a.URL())
	stderr.WaitFor(t, 10*time.Second, "tail to reconnect without a cursor", func(s string) bool {
		return strings.Contains(s, "ends before #100") && strings.Contains(s, "connected to")
	})
	mustPublish(t, c, cellEvents(4, 4)...)
	waitExit(t, code, stdout, stderr)
	if got := stdout.String(); !strings.HasPrefix(got, "#4 ") || len(lines(got)) != 1 {
		t.Errorf("tail printed %q, want only #4", got)
	}
}

// TestTailAcrossStreamRecreation deletes the stream under a running tail
// (nats stream rm): the server creates it again, tail is told 4410 with
// the new epoch, says so, and prints the new stream's events from #1.
func TestTailAcrossStreamRecreation(t *testing.T) {
	a := apptest.Start(t, app.Config{})
	mustPublish(t, a.Client(), cellEvents(1, 3)...)
	stdout, stderr, code := startTail("--since", "0", "--count", "5", "-o", "json", "--server", a.URL())
	stdout.WaitFor(t, 10*time.Second, "the first 3 events", func(s string) bool { return len(lines(s)) == 3 })

	testutil.RemoveStream(t, a.Events)
	stderr.WaitFor(t, 15*time.Second, "tail to say the stream was recreated", func(s string) bool {
		return strings.Contains(s, "the event stream was recreated")
	})
	after := cellEvents(4, 5)
	mustPublish(t, a.Client(), after...)
	waitExit(t, code, stdout, stderr)
	seqs, ids := frames(t, stdout.String())
	if want := "[1 2 3 1 2]"; fmt.Sprint(seqs) != want {
		t.Errorf("sequences printed = %v, want %s (the new stream from #1)", seqs, want)
	}
	if want := idsOf(t, after); fmt.Sprint(ids[3:]) != fmt.Sprint(want) {
		t.Errorf("events after the recreation = %v, want %v", ids[3:], want)
	}
}

// TestTailFrom: --from prints the events stored at or after a time (a
// duration ago, or an RFC 3339 time), then follows live ones.
func TestTailFrom(t *testing.T) {
	a := apptest.Start(t, app.Config{})
	c := a.Client()
	mustPublish(t, c, cellEvents(1, 3)...)
	mid := time.Now()
	testutil.WaitFor(t, time.Second, "the clock to move past mid", func() bool { return time.Now().After(mid) })
	mustPublish(t, c, cellEvents(4, 5)...)

	stdout, stderr, code := startTail("--from", mid.UTC().Format(time.RFC3339Nano), "--count", "3", "-o", "json", "--server", a.URL())
	stdout.WaitFor(t, 10*time.Second, "the events after mid", func(s string) bool { return len(lines(s)) == 2 })
	mustPublish(t, c, cellEvents(6, 6)...)
	waitExit(t, code, stdout, stderr)
	if seqs, _ := frames(t, stdout.String()); fmt.Sprint(seqs) != "[4 5 6]" {
		t.Errorf("tail --from <mid> printed %v, want [4 5 6]", seqs)
	}

	// A duration ago: an hour covers everything stored.
	code2, out, errOut := runCLI("tail", "--from", "1h", "--count", "6", "-o", "json", "--server", a.URL())
	if seqs, _ := frames(t, out); code2 != 0 || fmt.Sprint(seqs) != "[1 2 3 4 5 6]" {
		t.Errorf("tail --from 1h = %d, %v (%s); want 0 and [1 2 3 4 5 6]", code2, seqs, errOut)
	}
	// With a subject: the first matching event at or after the time.
	code2, out, errOut = runCLI("tail", "--from", mid.UTC().Format(time.RFC3339Nano), "--subject", "cell.c-5.>", "--count", "1", "-o", "json", "--server", a.URL())
	if seqs, _ := frames(t, out); code2 != 0 || fmt.Sprint(seqs) != "[5]" {
		t.Errorf("tail --from <mid> --subject cell.c-5.> = %d, %v (%s); want 0 and [5]", code2, seqs, errOut)
	}
}

func TestTailFromBadInput(t *testing.T) {
	a := apptest.Start(t, app.Config{})
	for _, args := range [][]string{
		{"--from", "yesterday"},
		{"--from", "-1h"},
		{"--from", "2026-01-01"},
		{"--from", "1h", "--since", "0"},
	} {
		code, _, stderr := runCLI(append(append([]string{"tail"}, args...), "--server", a.URL())...)
		if code != 2 || !strings.Contains(stderr, "--from") {
			t.Errorf("tail %v = %d, %q; want 2 naming --from", args, code, stderr)
		}
	}
}

func TestParseFrom(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"1h":                        now.Add(-time.Hour),
		"90m":                       now.Add(-90 * time.Minute),
		"0s":                        now,
		"2026-11-26T08:00:00Z":      time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC),
		"2026-11-26T09:00:00+01:00": time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC),
	} {
		if got, err := parseFrom(in, now); err != nil || !got.Equal(want) {
			t.Errorf("parseFrom(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}
