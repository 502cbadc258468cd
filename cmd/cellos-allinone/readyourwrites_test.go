package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cellos-allinone/app"
	"cellos-allinone/apptest"
	"cellos-allinone/testutil"
)

// publish prints the seq; get --min-seq with it shows the write at once,
// although the server commits its state only every 10 s.
func TestPublishThenGetMinSeq(t *testing.T) {
	a := apptest.Start(t, app.Config{CheckpointInterval: 10 * time.Second})
	file := filepath.Join(t.TempDir(), "events.jsonl")
	jsonl := string(cloudEvent("formation.lifecycle.v1.created", map[string]any{"formationId": "f-rw", "name": "mine", "tenantId": "acme"})) + "\n" +
		string(cloudEvent("cell.lifecycle.v1.admitted", map[string]any{"cellId": "c-rw", "formationId": "f-rw"})) + "\n"
	if err := os.WriteFile(file, []byte(jsonl), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI("publish", "-f", file, "-o", "seq", "--server", a.URL())
	if code != 0 || stdout != "1\n2\n" {
		t.Fatalf("publish -o seq = %d, %q, %q; want the seqs 1 and 2, one a line", code, stdout, stderr)
	}
	start := time.Now()
	code, stdout, stderr = runCLI("get", "formation", "f-rw", "--min-seq", "2", "--server", a.URL())
	if code != 0 {
		t.Fatalf("get formation f-rw --min-seq 2 = %d, %q", code, stderr)
	}
	testutil.CheckContains(t, "get formation f-rw --min-seq 2", stdout, []string{"f-rw", "mine", "acme", "c-rw", "admitted"}, nil)
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("get --min-seq took %v, want well under the 10 s checkpoint interval", took)
	}
	for _, args := range [][]string{
		{"get", "cell", "c-rw", "--min-seq", "2", "--wait", "1s"},
		{"get", "cells", "--formation", "f-rw", "--min-seq", "2"},
		{"get", "formations", "--min-seq=2", "--tenant", "acme"},
	} {
		code, stdout, stderr := runCLI(append(args, "--server", a.URL())...)
		if code != 0 || !strings.Contains(stdout, "-rw") {
			t.Errorf("%q = %d, %q, %q; want the write", args, code, stdout, stderr)
		}
	}
	// Beyond what was published: not caught up within --wait.
	code, _, stderr = runCLI("get", "formations", "--min-seq", "1000", "--wait", "200ms", "--server", a.URL())
	if code != 1 || !strings.Contains(stderr, "not_caught_up") || !strings.Contains(stderr, "up to 2") {
		t.Errorf("get --min-seq 1000 --wait 200ms = %d, %q; want 1 and not_caught_up at 2", code, stderr)
	}
	for _, args := range [][]string{
		{"get", "formations", "--wait", "1s"},
		{"get", "formations", "--min-seq", "1", "--wait", "31s"},
		{"get", "formations", "--min-seq", "-1"},
		{"get", "cell", "c-rw", "--limit", "5"},
	} {
		if code, _, stderr := runCLI(append(args, "--server", a.URL())...); code != 2 {
			t.Errorf("%q = %d, %q; want the usage error 2", args, code, stderr)
		}
	}
}

// rows counts the cell rows of get formation's table.
func rows(stdout string) int { return strings.Count(stdout, "\nc-") }

// get formation ID shows the first page of its cells and says how to get
// the rest; --all shows every cell.
func TestGetFormationPages(t *testing.T) {
	a := apptest.Start(t, app.Config{})
	var events []testutil.Event
	events = append(events, testutil.Formation("f-big", "created", nil))
	for i := range 150 {
		events = append(events, testutil.Cell(fmt.Sprintf("c-%03d", i), "admitted", map[string]any{"formationId": "f-big"}))
	}
	seqs := a.Publish(events...)
	last := fmt.Sprint(seqs[len(seqs)-1])
	code, stdout, stderr := runCLI("get", "formation", "f-big", "--min-seq", last, "--server", a.URL())
	if code != 0 || rows(stdout) != 100 || !strings.Contains(stderr, "--after c-099") || !strings.Contains(stderr, "--all") {
		t.Fatalf("get formation f-big = %d, %d cells, stderr %q; want the first 100 and a hint at the rest", code, rows(stdout), stderr)
	}
	code, stdout, stderr = runCLI("get", "formation", "f-big", "--limit", "10", "--server", a.URL())
	if code != 0 || rows(stdout) != 10 || !strings.Contains(stderr, "--after c-009") {
		t.Fatalf("get formation f-big --limit 10 = %d, %d cells, %q", code, rows(stdout), stderr)
	}
	code, stdout, stderr = runCLI("get", "formation", "f-big", "--all", "--server", a.URL())
	if code != 0 || rows(stdout) != 150 || stderr != "" {
		t.Fatalf("get formation f-big --all = %d, %d cells, %q; want all 150", code, rows(stdout), stderr)
	}
	code, stdout, _ = runCLI("get", "formation", "f-big", "--all", "-o", "json", "--server", a.URL())
	var d struct {
		Cells     []json.RawMessage `json:"cells"`
		CellsNext *string           `json:"cellsNext"`
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &d) != nil || len(d.Cells) != 150 || d.CellsNext == nil || *d.CellsNext != "" {
		t.Fatalf("get formation f-big --all -o json = %d, %.200s; want one body of 150 cells, cellsNext \"\"", code, stdout)
	}
}
