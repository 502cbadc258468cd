package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// listedCommands is the command names of the "Commands:" section of the
// top-level help, in order.
func listedCommands(t *testing.T, help string) []string {
	t.Helper()
	_, section, ok := strings.Cut(help, "\nCommands:\n")
	if !ok {
		t.Fatalf("no Commands: section in\n%s", help)
	}
	var names []string
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "  ") {
			break
		}
		fields := strings.Fields(line)
		if len(fields) < 2 {
			t.Fatalf("command line without a summary: %q", line)
		}
		names = append(names, fields[0])
	}
	return names
}

func TestTopLevelHelpListsTheCommandTable(t *testing.T) {
	var want []string
	for _, c := range commands {
		want = append(want, c.name)
	}
	for _, args := range [][]string{{"--help"}, {"-h"}, {"-help"}, {"help"}, {"-h", "--data-dir", "x"}} {
		code, stdout, stderr := runCLI(args...)
		if code != 0 || stderr != "" {
			t.Errorf("%q = %d, stderr %q; want 0 and nothing on stderr", args, code, stderr)
		}
		if got := listedCommands(t, stdout); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%q lists %v; want the command table %v", args, got, want)
		}
	}
}

func TestHelpOfACommandPrintsItsFlags(t *testing.T) {
	// One flag each that only that command's usage names.
	flagOf := map[string]string{
		"serve": "-ws-max-sockets", "demo": "-seed", "tail": "-since", "follow": "-since",
		"get": "-formation", "publish": "-f", "snapshot": "rebuild", "version": "Prints the version",
	}
	for _, c := range commands {
		mark, ok := flagOf[c.name]
		if !ok {
			t.Errorf("command %s has no case in this test", c.name)
			continue
		}
		for _, args := range [][]string{{"help", c.name}, {c.name, "--help"}, {c.name, "-h"}} {
			code, stdout, stderr := runCLI(args...)
			if code != 0 || stderr != "" || !strings.Contains(stdout, "Usage: cellos-allinone ") || !strings.Contains(stdout, mark) {
				t.Errorf("%q = %d, stdout %q, stderr %q; want 0 and a usage naming %q on stdout only", args, code, stdout, stderr, mark)
			}
		}
	}
	// A subcommand's subcommand, and a command that does not exist.
	if code, stdout, _ := runCLI("help", "snapshot", "verify"); code != 0 || !strings.Contains(stdout, "Usage: cellos-allinone snapshot verify") {
		t.Errorf("help snapshot verify = %d, %q", code, stdout)
	}
	if code, stdout, stderr := runCLI("help", "nope"); code != 2 || stdout != "" || !strings.Contains(stderr, `unknown command "nope"`) {
		t.Errorf("help nope = %d, stdout %q, stderr %q; want 2 and the error on stderr", code, stdout, stderr)
	}
	// A bad flag is no request for help: its usage goes to stderr, exit 2.
	if code, stdout, stderr := runCLI("serve", "--bogus"); code != 2 || stdout != "" || !strings.Contains(stderr, "Usage: cellos-allinone serve") {
		t.Errorf("serve --bogus = %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// versionFields parses the output of `version` into its first line and
// its "key: value" lines.
func versionFields(t *testing.T, out string) (first string, fields map[string]string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	fields = map[string]string{}
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			t.Fatalf("version line %q is not key: value", l)
		}
		fields[k] = strings.TrimSpace(v)
	}
	return lines[0], fields
}

// natsServerRequired is the nats-server version go.mod requires.
func natsServerRequired(t *testing.T) string {
	t.Helper()
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*(?:require\s+)?` + regexp.QuoteMeta(natsServerModule) + `\s+(v\S+)`).FindSubmatch(mod)
	if m == nil {
		t.Fatalf("go.mod requires no %s", natsServerModule)
	}
	return string(m[1])
}

func TestVersionUnstamped(t *testing.T) {
	// go test records neither a module version nor VCS information in a
	// test binary; should a toolchain start to, they are what must show.
	wantVersion, wantCommit := "dev", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			wantVersion = v
		}
		if c := vcsCommit(bi.Settings); c != "" {
			wantCommit = c
		}
	}
	want := map[string]string{
		"commit":      wantCommit,
		"go":          runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		"nats-server": natsServerRequired(t),
	}
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, stdout, _ := runCLI(args...)
		first, fields := versionFields(t, stdout)
		if code != 0 || first != "cellos-allinone "+wantVersion {
			t.Errorf("%q = %d, first line %q; want 0 and %q", args, code, first, "cellos-allinone "+wantVersion)
		}
		for k, v := range want {
			if fields[k] != v {
				t.Errorf("%q: %s = %q, want %q", args, k, fields[k], v)
			}
		}
	}
	if code, _, _ := runCLI("version", "extra"); code != 2 {
		t.Errorf("version extra = %d, want 2", code)
	}
}

func TestVCSCommit(t *testing.T) {
	for _, tc := range []struct {
		settings []debug.BuildSetting
		want     string
	}{
		{nil, ""},
		{[]debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "false"}}, "abc"},
		{[]debug.BuildSetting{{Key: "vcs.modified", Value: "true"}, {Key: "vcs.revision", Value: "abc"}}, "abc+dirty"},
	} {
		if got := vcsCommit(tc.settings); got != tc.want {
			t.Errorf("vcsCommit(%v) = %q, want %q", tc.settings, got, tc.want)
		}
	}
}

// TestVersionOfAStampedBuild builds the binary with -ldflags stamps as the
// release does (without -trimpath, which would recompile every dependency
// instead of reusing the build cache of the other tests) and runs it.
func TestVersionOfAStampedBuild(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "cellos-allinone")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build",
		"-ldflags", "-X main.version=v1.2.3-test -X main.commit=0123abc+dirty", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", bin, err)
	}
	first, fields := versionFields(t, string(out))
	goVersion, err := exec.CommandContext(ctx, "go", "env", "GOVERSION").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"commit":      "0123abc+dirty",
		"go":          strings.TrimSpace(string(goVersion)) + " " + runtime.GOOS + "/" + runtime.GOARCH,
		"nats-server": natsServerRequired(t),
	}
	if first != "cellos-allinone v1.2.3-test" {
		t.Errorf("first line %q, want the stamped version", first)
	}
	for k, v := range want {
		if fields[k] != v {
			t.Errorf("%s = %q, want %q (output %q)", k, fields[k], v, out)
		}
	}
	help, err := exec.CommandContext(ctx, bin, "--help").Output()
	if err != nil {
		t.Fatalf("%s --help: %v", bin, err)
	}
	if !strings.HasPrefix(string(help), "cellos-allinone v1.2.3-test: ") || len(listedCommands(t, string(help))) != len(commands) {
		t.Errorf("--help of the binary:\n%s", help)
	}
}
