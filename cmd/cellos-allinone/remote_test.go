package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"cellos-allinone/client"
	"cellos-allinone/testutil"
)

var eventIDs atomic.Int64

// cloudEvent builds a v1 event of type dev.cellos.events.<typ> with a
// fresh id.
func cloudEvent(typ string, data map[string]any) []byte {
	b, err := json.Marshal(map[string]any{
		"specversion": "1.0",
		"id":          fmt.Sprintf("test-%d", eventIDs.Add(1)),
		"source":      "/test",
		"type":        "dev.cellos.events." + typ,
		"time":        "2026-11-26T10:00:00Z",
		"data":        data,
	})
	if err != nil {
		panic(err)
	}
	return b
}

// mustPublish posts events and returns their sequences.
func mustPublish(tb testing.TB, c *client.Client, events ...[]byte) []uint64 {
	tb.Helper()
	var seqs []uint64
	for _, ev := range events {
		res, err := c.Publish(testutil.Ctx(tb, 10*time.Second), ev)
		if err != nil {
			tb.Fatalf("publish %s: %v", ev, err)
		}
		seqs = append(seqs, res.Seq)
	}
	return seqs
}

// runCLI runs one command line as main would and returns its exit code
// and output.
func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func lines(s string) []string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func TestHelpOfEveryCommand(t *testing.T) {
	for _, name := range []string{"tail", "follow", "get", "publish", "demo"} {
		code, stdout, stderr := runCLI(name, "--help")
		out := stdout + stderr
		if code != 0 || !strings.Contains(out, "Usage: cellos-allinone "+strings.Replace(name, "follow", "tail", 1)) ||
			!strings.Contains(out, "Example:\n  cellos-allinone ") || !strings.Contains(out, "-server") && name != "demo" {
			t.Errorf("%s --help = %d, %q; want 0 with usage, an example and --server", name, code, out)
		}
	}
	_, stdout, _ := runCLI("help")
	for _, name := range []string{"tail", "follow", "get", "publish", "demo"} {
		if !strings.Contains(stdout, "\n  "+name+" ") {
			t.Errorf("help does not list %s:\n%s", name, stdout)
		}
	}
}

func TestUsageErrorsExitTwo(t *testing.T) {
	for _, args := range [][]string{
		{"get"},
		{"get", "pods"},
		{"get", "formation", "a", "b"},
		{"get", "formation", "f-1", "--tenant", "acme"},
		{"get", "formations", "--formation", "f-1"},
		{"get", "cells", "--state", "sleeping"},
		{"get", "formations", "--status", "admitted"},
		{"get", "cells", "--limit", "5000"},
		{"get", "cells", "-o", "yaml"},
		{"get", "cells", "--server", "ftp://127.0.0.1:1"},
		{"tail", "--since", "yesterday"},
		{"tail", "extra"},
		{"tail", "--count", "-1"},
		{"publish"},
		{"publish", "-f", "x.json", "more"},
		{"demo", "--rate", "-1"},
		{"demo", "--tenants", "99"},
		{"demo", "--start", "today"},
		{"demo", "--target", "http://127.0.0.1:1", "--data-dir", "/tmp/x"},
		{"demo", "--target", "http://127.0.0.1:1", "--dry-run"},
		{"demo", "--http-addr", "0.0.0.0:8080", "--count", "1"},
	} {
		code, stdout, stderr := runCLI(args...)
		if code != 2 {
			t.Errorf("run(%q) = %d, want 2 (usage); output %q", args, code, stdout+stderr)
		}
	}
}
