package main

import (
	"bytes"
	"flag"
	"strings"
	"testing"
	"time"

	"cellos-allinone/app"
)

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"version"}, 0, ""},
		{[]string{"help"}, 0, "Commands:"},
		{[]string{"no-such-command"}, 2, "unknown command"},
		{[]string{"serve", "--no-such-flag"}, 2, "not defined"},
		{[]string{"serve", "--http-addr", "0.0.0.0:8080"}, 2, "not a loopback address"},
		{[]string{"serve", "--log-level", "loud"}, 2, "--log-level"},
		{[]string{"serve", "extra-arg"}, 2, "unexpected arguments"},
		{[]string{"serve", "--help"}, 0, "Example:"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, &stdout, &stderr)
		if code != tc.code || !strings.Contains(stdout.String()+stderr.String(), tc.out) {
			t.Errorf("run(%q) = %d, output %q; want %d containing %q", tc.args, code, stdout.String()+stderr.String(), tc.code, tc.out)
		}
	}
}

func TestFlagsHaveEnvironmentTwins(t *testing.T) {
	t.Setenv("CELLOS_DATA_DIR", "/from/env")
	t.Setenv("CELLOS_HTTP_ADDR", "127.0.0.1:9999")
	t.Setenv("CELLOS_CHECKPOINT_INTERVAL", "7s")
	t.Setenv("CELLOS_COMPACT_MIN_FREE", "-1")
	var cfg app.Config
	var level, format string
	fs := serveFlags(&cfg, &level, &format)
	if err := parse(fs, []string{"--http-addr", "127.0.0.1:1234"}); err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/from/env" || cfg.HTTPAddr != "127.0.0.1:1234" || cfg.CheckpointInterval != 7*time.Second || cfg.CompactMinFree != -1 {
		t.Fatalf("config = %+v; want data dir from env, http addr from the flag (flag wins), interval and compaction off from env", cfg)
	}
	// Every flag of serve documents its twin by the naming rule.
	fs.VisitAll(func(f *flag.Flag) {
		if !strings.HasPrefix(envName(f.Name), "CELLOS_") || strings.Contains(envName(f.Name), "-") {
			t.Errorf("flag %s has env twin %s", f.Name, envName(f.Name))
		}
	})
	t.Setenv("CELLOS_CHECKPOINT_EVENTS", "many")
	fs = serveFlags(&cfg, &level, &format)
	if err := parse(fs, nil); err == nil || !strings.Contains(err.Error(), "CELLOS_CHECKPOINT_EVENTS") {
		t.Fatalf("bad environment value: err = %v, want one naming CELLOS_CHECKPOINT_EVENTS", err)
	}
}
