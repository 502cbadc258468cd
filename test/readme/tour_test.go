package readme

import (
	"bufio"
	"context"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"cellos-allinone/app"
	"cellos-allinone/apptest"
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
	path   string // path and query asked for
	status int
	body   string
}

// runTour runs each command with sh, the tour's address replaced by addr;
// a curl line also prints its status code last.
func runTour(t *testing.T, cmds []string, addr string) []result {
	t.Helper()
	var results []result
	for _, line := range cmds {
		line = strings.ReplaceAll(line, tourAddr, addr)
		isCurl := strings.HasPrefix(line, "curl ")
		if isCurl {
			line = "curl -w '\\n%{http_code}' --max-time 20 " + strings.TrimPrefix(line, "curl ")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, "sh", "-c", line).Output()
		cancel()
		if err != nil {
			t.Fatalf("%s: %v\n%s", line, err, out)
		}
		if !isCurl {
			continue
		}
		nl := strings.LastIndexByte(string(out), '\n')
		status, err := strconv.Atoi(string(out[nl+1:]))
		if nl < 0 || err != nil {
			t.Fatalf("%s: no status code at the end of %q", line, out)
		}
		r := result{path: requestPath(t, line, addr), status: status, body: string(out[:nl])}
		if status < 200 || status > 299 {
			t.Errorf("%s: HTTP %d %s", line, status, r.body)
		}
		results = append(results, r)
	}
	return results
}

// requestPath is the path and query of the URL on a curl line.
func requestPath(t *testing.T, line, addr string) string {
	t.Helper()
	i := strings.Index(line, addr)
	if i < 0 {
		t.Fatalf("no %s on %q", addr, line)
	}
	rest := line[i+len(addr):]
	if j := strings.IndexAny(rest, "' "); j >= 0 {
		rest = rest[:j]
	}
	u, err := url.Parse(rest)
	if err != nil {
		t.Fatalf("%q: %v", rest, err)
	}
	return u.RequestURI()
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
	posts := 0
	for _, r := range results {
		if strings.Contains(r.body, `"duplicate":false`) {
			posts++
		}
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
	// example) stores its event.
	wantPosts := 0
	for _, c := range cmds {
		if strings.Contains(c, "-XPOST") {
			wantPosts++
		}
	}
	if posts != wantPosts || posts < 4 {
		t.Errorf("%d POSTs stored an event, want all %d of the section's (the tour's 4 and more)", posts, wantPosts)
	}
}
