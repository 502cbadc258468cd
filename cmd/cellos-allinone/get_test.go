package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"cellos-allinone/app"
	"cellos-allinone/apptest"
	"cellos-allinone/testutil"
)

// seedRegistry publishes formations f-1 (acme, running, cells c-1
// completed and c-2 failed), f-2 (acme, created) and f-3 (globex,
// running, cell c-3 running).
func seedRegistry(t *testing.T, a *apptest.App) {
	t.Helper()
	mustPublish(t, a.Client(),
		cloudEvent("formation.lifecycle.v1.created", map[string]any{"formationId": "f-1", "name": "build", "tenantId": "acme", "labels": map[string]string{"env": "prod"}}),
		cloudEvent("formation.lifecycle.v1.running", map[string]any{"formationId": "f-1"}),
		cloudEvent("formation.lifecycle.v1.created", map[string]any{"formationId": "f-2", "name": "etl", "tenantId": "acme"}),
		cloudEvent("formation.lifecycle.v1.created", map[string]any{"formationId": "f-3", "name": "train", "tenantId": "globex"}),
		cloudEvent("formation.lifecycle.v1.running", map[string]any{"formationId": "f-3"}),
		cloudEvent("cell.lifecycle.v1.admitted", map[string]any{"cellId": "c-1", "formationId": "f-1", "tenantId": "acme"}),
		cloudEvent("cell.lifecycle.v1.completed", map[string]any{"cellId": "c-1", "exitCode": 0}),
		cloudEvent("cell.compliance.v1.summary", map[string]any{"cellId": "c-1", "result": "pass"}),
		cloudEvent("cell.lifecycle.v1.admitted", map[string]any{"cellId": "c-2", "formationId": "f-1", "tenantId": "acme"}),
		cloudEvent("cell.lifecycle.v1.failed", map[string]any{"cellId": "c-2", "reason": "oom killed"}),
		cloudEvent("cell.lifecycle.v1.started", map[string]any{"cellId": "c-3", "formationId": "f-3", "tenantId": "globex"}),
	)
	a.WaitCursor(11)
}

func TestGet(t *testing.T) {
	a := apptest.Start(t, app.Config{})
	seedRegistry(t, a)
	for _, tc := range []struct {
		args           []string
		want, wantNot  []string
		wantLines      int // stdout lines, 0 = unchecked
		stderrContains string
	}{
		{args: []string{"get", "formations"}, wantLines: 4,
			want: []string{"ID", "NAME", "STATUS", "f-1", "build", "acme", "running", "f-3", "globex"}},
		{args: []string{"get", "formations", "--tenant", "acme"}, wantLines: 3,
			want: []string{"f-1", "f-2"}, wantNot: []string{"f-3"}},
		{args: []string{"get", "formation", "--status", "running"}, wantLines: 3,
			want: []string{"f-1", "f-3"}, wantNot: []string{"f-2"}},
		{args: []string{"get", "formations", "--limit", "2"}, wantLines: 3,
			want: []string{"f-1", "f-2"}, wantNot: []string{"f-3"}, stderrContains: "--after f-2"},
		{args: []string{"get", "formations", "--limit", "1", "--all"}, wantLines: 4,
			want: []string{"f-1", "f-2", "f-3"}},
		{args: []string{"get", "cells", "--formation", "f-1", "--state", "failed"}, wantLines: 2,
			want: []string{"c-2", "failed", "oom killed"}, wantNot: []string{"c-1"}},
		{args: []string{"get", "cells", "--tenant", "globex"}, wantLines: 2,
			want: []string{"c-3", "running", "f-3"}},
		{args: []string{"get", "formation", "f-1"},
			want: []string{"Formation:", "f-1", "Labels:", "env=prod", "2 total", "1 completed, 1 failed", "CELL", "c-1", "c-2"}},
		{args: []string{"get", "cell", "c-1", "--server", a.URL()},
			want: []string{"Cell:", "c-1", "Exit code:", "completed", `"result":"pass"`}},
	} {
		args := append(tc.args, "--server", a.URL())
		code, stdout, stderr := runCLI(args...)
		if code != 0 {
			t.Errorf("run(%q) = %d, stderr %q; want 0", tc.args, code, stderr)
			continue
		}
		testutil.CheckContains(t, fmt.Sprintf("run(%q) stdout", tc.args), stdout, tc.want, tc.wantNot)
		if tc.wantLines > 0 && len(lines(stdout)) != tc.wantLines {
			t.Errorf("run(%q) printed %d lines, want %d:\n%s", tc.args, len(lines(stdout)), tc.wantLines, stdout)
		}
		if !strings.Contains(stderr, tc.stderrContains) {
			t.Errorf("run(%q) stderr = %q, want it to contain %q", tc.args, stderr, tc.stderrContains)
		}
	}
}

func TestGetJSON(t *testing.T) {
	a := apptest.Start(t, app.Config{})
	seedRegistry(t, a)
	// One page: the API's body as it is.
	code, stdout, _ := runCLI("get", "cells", "-o", "json", "--limit", "2", "--server", a.URL())
	var page struct {
		Cursor uint64 `json:"cursor"`
		Cells  []struct {
			ID string `json:"id"`
		} `json:"cells"`
		Next string `json:"next"`
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &page) != nil || len(page.Cells) != 2 || page.Next != "c-2" || page.Cursor != 11 {
		t.Errorf("get cells -o json --limit 2 = %d, %s; want a page of 2 with next c-2 at cursor 11", code, stdout)
	}
	// --all: every page in one body.
	code, stdout, _ = runCLI("get", "--output", "json", "cells", "--all", "--limit", "1", "--server", a.URL())
	if code != 0 || json.Unmarshal([]byte(stdout), &page) != nil || len(page.Cells) != 3 || page.Next != "" {
		t.Errorf("get cells --all -o json = %d, %s; want all 3 cells and no next", code, stdout)
	}
	code, stdout, _ = runCLI("get", "formation", "f-3", "-o", "json", "--server", a.URL())
	var one struct {
		Formation struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"formation"`
		Cells []json.RawMessage `json:"cells"`
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &one) != nil || one.Formation.Status != "running" || len(one.Cells) != 1 {
		t.Errorf("get formation f-3 -o json = %d, %s; want f-3 running with one cell", code, stdout)
	}
}

func TestGetFailures(t *testing.T) {
	a := apptest.Start(t, app.Config{})
	code, _, stderr := runCLI("get", "cell", "nope", "--server", a.URL())
	if code != 1 || !strings.Contains(stderr, `no cell "nope"`) || !strings.Contains(stderr, "not_found") {
		t.Errorf("get cell nope = %d, %q; want 1 and not_found", code, stderr)
	}
	// Nothing listens on the port of a stopped server.
	addr := a.URL()
	a.Stop()
	code, _, stderr = runCLI("get", "formations", "--server", addr)
	if code != 1 || !strings.Contains(stderr, "is the server running") {
		t.Errorf("get formations (no server) = %d, %q; want 1 with a hint", code, stderr)
	}
	t.Setenv("CELLOS_SERVER", addr)
	code, _, stderr = runCLI("get", "formations")
	if code != 1 || !strings.Contains(stderr, addr) {
		t.Errorf("get formations with CELLOS_SERVER = %d, %q; want it to use %s", code, stderr, addr)
	}
}
