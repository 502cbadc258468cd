package app_test

import (
	"encoding/json"
	"io"
	"math"
	"net/http"
	"testing"
	"time"

	"cellos-allinone/apptest"
	"cellos-allinone/eventlog"
	"cellos-allinone/projection"
	"cellos-allinone/projector"
	"cellos-allinone/testutil"
)

// get sends GET path to the app and returns the answer's status, header
// and body.
func get(t *testing.T, a *apptest.App, path string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.Get(a.URL() + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

// getJSON sends GET path to the app, checks that the answer is JSON and
// decodes it into into (unless nil); it returns the status.
func getJSON(t *testing.T, a *apptest.App, path string, into any) int {
	t.Helper()
	status, header, body := get(t, a, path)
	if ct := header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("GET %s: Content-Type %q, want application/json", path, ct)
	}
	if into != nil {
		if err := json.Unmarshal(body, into); err != nil {
			t.Fatalf("GET %s: body %s: %v", path, body, err)
		}
	}
	return status
}

// foldOf folds the whole retained stream from scratch.
func foldOf(t *testing.T, l *eventlog.Stream) *projection.Projection {
	t.Helper()
	p, err := projector.FoldLog(testutil.Ctx(t, 60*time.Second), l, math.MaxUint64)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func dumpOf(a *apptest.App) string {
	var d string
	a.Proj.Read(func(p projector.View) { d = string(p.Dump()) })
	return d
}
