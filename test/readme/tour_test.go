package readme

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"cellos-allinone/app"
	"cellos-allinone/apptest"
	"cellos-allinone/client"
	"cellos-allinone/testutil"
)

const (
	tourHeading = "## A tour with curl"
	tourAddr    = "127.0.0.1:8080" // the default address the tour is written for
)

// tourCommands is the command lines of the fenced sh blocks under the tour
// heading, up to the next heading, comments left to the shell.
func tourCommands(t *testing.T) []string {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n"+tourHeading+"\n")
	if !ok {
		t.Fatalf("README.md has no %q section", tourHeading)
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	var cmds []string
	inBlock := false
	sc := bufio.NewScanner(strings.NewReader(section))
	for sc.Scan() {
		line := sc.Text()
		// A command continued on the next line (a trailing backslash)
		// is one command.
		for strings.HasSuffix(line, `\`) && sc.Scan() {
			line = strings.TrimSuffix(line, `\`) + sc.Text()
		}
		switch {
		case strings.HasPrefix(line, "```"):
			inBlock = !inBlock && strings.TrimPrefix(line, "```") == "sh"
		case inBlock && strings.TrimSpace(line) != "" && !strings.HasPrefix(strings.TrimSpace(line), "#"):
			cmds = append(cmds, line)
		}
	}
	return cmds
}

// result is one curl command's answer.
type result struct {
	path   string // path and query asked for, variables expanded
	status int
	body   string
}

// runTour runs the commands in order in one shell, as a terminal they are
// pasted into does: a variable one of them sets is there for the next.
// The tour's address is replaced by addr; a command that starts with curl
// also prints the URL it asked for and the status code, on two lines of
// their own at the end. The first command to fail ends the tour.
func runTour(t *testing.T, cmds []string, addr string) []result {
	t.Helper()
	dir := t.TempDir()
	out := func(i int) string { return filepath.Join(dir, fmt.Sprintf("%d.out", i)) }
	failed := func(i int) string { return filepath.Join(dir, fmt.Sprintf("%d.failed", i)) }
	var script strings.Builder
	for i, line := range cmds {
		line = strings.ReplaceAll(line, tourAddr, addr)
		if strings.HasPrefix(line, "curl ") {
			line = `curl -w '\n%{url_effective}\n%{http_code}' --max-time 20 ` + strings.TrimPrefix(line, "curl ")
		}
		// A brace group runs in the shell itself, so its variables stay;
		// the command has a line of its own in it, so that a trailing
		// comment does not hide the closing brace.
		fmt.Fprintf(&script, "{\n%s\n} >'%s' 2>&1 || { echo \"exit status $?\" >'%s'; exit 1; }\n", line, out(i), failed(i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	runErr := exec.CommandContext(ctx, "sh", "-c", script.String()).Run()
	var results []result
	for i, line := range cmds {
		raw, err := os.ReadFile(out(i))
		if err != nil {
			t.Fatalf("the tour stopped before %s: %v", line, runErr)
		}
		if why, err := os.ReadFile(failed(i)); err == nil {
			t.Fatalf("%s: %s\n%s", line, bytes.TrimSpace(why), raw)
		}
		if !strings.HasPrefix(line, "curl ") {
			continue
		}
		r := curlResult(t, line, string(raw))
		if r.status < 200 || r.status > 299 {
			t.Errorf("%s: HTTP %d %s", line, r.status, r.body)
		}
		results = append(results, r)
	}
	if runErr != nil {
		t.Fatalf("the tour: %v", runErr)
	}
	return results
}

// curlResult takes apart what a curl command of runTour printed: the
// body, then the URL it asked for and the status code.
func curlResult(t *testing.T, line, out string) result {
	t.Helper()
	parts := strings.Split(out, "\n")
	if len(parts) < 3 {
		t.Fatalf("%s: no URL and status code at the end of %q", line, out)
	}
	n := len(parts)
	status, err := strconv.Atoi(parts[n-1])
	if err != nil {
		t.Fatalf("%s: no status code at the end of %q", line, out)
	}
	u, err := url.Parse(parts[n-2])
	if err != nil {
		t.Fatalf("%s: the URL %q: %v", line, parts[n-2], err)
	}
	return result{path: u.RequestURI(), status: status, body: strings.Join(parts[:n-2], "\n")}
}

func TestREADMETourOnAFreshServer(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("curl is missing: .ci/run installs it")
		}
		t.Skip("curl is not installed")
	}
	cmds := tourCommands(t)
	if len(cmds) < 10 {
		t.Fatalf("found %d commands under %q; the tour was not extracted", len(cmds), tourHeading)
	}
	a := apptest.Start(t, app.Config{})
	results := runTour(t, cmds, a.HTTP.Addr())

	// What the reads must show of what the tour wrote. Every one must be in
	// the tour, so that a tour that drops a write or a read fails here.
	want := map[string][]string{
		"/v1/formations?min_seq=4":                           {`"id":"f-1"`, `"cursor":4`},
		"/v1/formations?tenant=acme&status=running&limit=50": {`"id":"f-1"`, `"status":"running"`},
		"/v1/formations/f-1":                                 {`"id":"f-1"`, `"name":"nightly"`, `"id":"c-1"`, `"cellsNext":""`},
		"/v1/cells?formation=f-1&state=failed":               {`"id":"c-1"`, `"reason":"OOMKilled"`},
		"/v1/cells?prefix=c-1&limit=10":                      {`"id":"c-1"`},
		"/v1/cells/c-1":                                      {`"id":"c-1"`, `"formationId":"f-1"`, `"state":"failed"`},
		"/v1/events?since=0&limit=10":                        {`"id":"tour-1"`, `"id":"tour-4"`},
	}
	for _, r := range results {
		for _, s := range want[r.path] {
			if !strings.Contains(r.body, s) {
				t.Errorf("GET %s = %s; want it to contain %s", r.path, r.body, s)
			}
		}
		delete(want, r.path)
	}
	for path := range want {
		t.Errorf("the tour no longer reads %s", path)
	}
	// Every POST of the section (the tour's four and the binary-mode
	// example) stored its event, and nothing else was stored: on a fresh
	// server the log ends at their number.
	wantPosts := 0
	for _, c := range cmds {
		if strings.Contains(c, "-XPOST") {
			wantPosts++
		}
	}
	page, err := a.Client().Events(testutil.Ctx(t, 10*time.Second), client.EventsQuery{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if page.LastSeq != uint64(wantPosts) || wantPosts < 5 {
		t.Errorf("the log ends at %d after the tour; want all %d POSTs of the section (the tour's 4 and more) stored", page.LastSeq, wantPosts)
	}
}
