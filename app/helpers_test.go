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

func getJSON(t *testing.T, a *apptest.App, path string, into any) int {
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
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("GET %s: Content-Type %q, want application/json", path, ct)
	}
	if into != nil {
		if err := json.Unmarshal(body, into); err != nil {
			t.Fatalf("GET %s: body %s: %v", path, body, err)
		}
	}
	return resp.StatusCode
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
