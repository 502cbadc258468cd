package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cellos-allinone/app"
	"cellos-allinone/apptest"
)

func TestPublishJSONLAndDuplicates(t *testing.T) {
	a := apptest.Start(t, app.Config{})
	file := filepath.Join(t.TempDir(), "events.jsonl")
	jsonl := strings.Join([]string{
		string(cloudEvent("formation.lifecycle.v1.created", map[string]any{"formationId": "f-1", "tenantId": "acme"})),
		"",
		string(cloudEvent("cell.lifecycle.v1.admitted", map[string]any{"cellId": "c-1", "formationId": "f-1"})),
	}, "\n") + "\n"
	if err := os.WriteFile(file, []byte(jsonl), 0o600); err != nil {
		t.Fatal(err)
	}
	want := "seq=1 subject=cellos.events.formation.f-1.created duplicate=false\n" +
		"seq=2 subject=cellos.events.cell.c-1.admitted duplicate=false\n"
	if code, stdout, stderr := runCLI("publish", "-f", file, "--server", a.URL()); code != 0 || stdout != want {
		t.Fatalf("publish -f events.jsonl = %d, %q, %q; want 0 and\n%s", code, stdout, stderr, want)
	}
	// The same ids again, within the duplicate window: stored once.
	code, stdout, _ := runCLI("publish", "--file", file, "--server", a.URL(), "-o", "json")
	if code != 0 || strings.Count(stdout, `"duplicate":true`) != 2 || !strings.Contains(stdout, `"seq":2`) {
		t.Errorf("publish again -o json = %d, %q; want two duplicates of seq 1 and 2", code, stdout)
	}
}

func TestPublishStdinPrettyPrinted(t *testing.T) {
	a := apptest.Start(t, app.Config{})
	stdin = strings.NewReader(`
{
  "specversion": "1.0",
  "id": "pretty-1",
  "source": "/test",
  "type": "dev.cellos.events.cell.lifecycle.v1.started",
  "data": {"cellId": "c-9"}
}
`)
	t.Cleanup(func() { stdin = os.Stdin })
	code, stdout, stderr := runCLI("publish", "-f", "-", "--server", a.URL())
	if code != 0 || stdout != "seq=1 subject=cellos.events.cell.c-9.started duplicate=false\n" {
		t.Errorf("publish -f - = %d, %q, %q; want seq 1", code, stdout, stderr)
	}
}

func TestPublishStopsAtFirstError(t *testing.T) {
	a := apptest.Start(t, app.Config{})
	dir := t.TempDir()
	good := string(cloudEvent("cell.lifecycle.v1.admitted", map[string]any{"cellId": "c-1"}))
	for _, tc := range []struct {
		name, input, stderr string
		published           int
	}{
		{"not JSON", good + "\n{oops\n" + good + "\n", "line 2: not valid JSON", 1},
		{"invalid, checked before sending", good + "\n" + `{"specversion":"1.0","id":"x","source":"/t","type":"dev.cellos.events.cell.lifecycle.v1.started","data":{}}` + "\n" + good + "\n",
			"line 2: invalid event: data.cellId: missing", 1},
		{"refused by the server", good + "\n" + string(cloudEvent("cell.lifecycle.v1.started", map[string]any{"cellId": "c-2", "pad": strings.Repeat("x", 1<<20)})) + "\n" + good + "\n",
			"(body_too_large, HTTP 413)", 1},
		{"empty", "\n", "holds no event", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".jsonl")
			if err := os.WriteFile(file, []byte(tc.input), 0o600); err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := runCLI("publish", "-f", file, "--server", a.URL())
			if tc.published == 1 && !strings.Contains(stderr, file+", line 2") {
				t.Errorf("stderr %q does not name %s, line 2", stderr, file)
			}
			if code != 1 || !strings.Contains(stderr, tc.stderr) || len(lines(stdout)) != tc.published {
				t.Errorf("publish = %d, stdout %q, stderr %q; want 1, %d published, stderr with %q", code, stdout, stderr, tc.published, tc.stderr)
			}
		})
	}
	code, _, stderr := runCLI("publish", "-f", filepath.Join(dir, "missing.json"), "--server", a.URL())
	if code != 1 || !strings.Contains(stderr, "missing.json") {
		t.Errorf("publish -f missing.json = %d, %q; want 1 naming the file", code, stderr)
	}
}
