package app_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"cellos-allinone/app"
	"cellos-allinone/apptest"
	"cellos-allinone/eventlog"
	"cellos-allinone/testutil"
)

// TestNATSMonitor: --nats-monitor-addr serves nats-server's own
// monitoring endpoints, which see the event stream; without it none is
// served.
func TestNATSMonitor(t *testing.T) {
	if u := apptest.Start(t, app.Config{}).NATSMonitorURL(); u != "" {
		t.Errorf("NATSMonitorURL without --nats-monitor-addr = %q, want none", u)
	}

	a := apptest.Start(t, app.Config{NATSMonitorAddr: "127.0.0.1:0"})
	a.Publish(testutil.Workload(5)...)
	base := a.NATSMonitorURL()
	if base == "" {
		t.Fatal("NATSMonitorURL is empty with --nats-monitor-addr 127.0.0.1:0")
	}
	get := func(path string, v any) {
		t.Helper()
		req, _ := http.NewRequestWithContext(testutil.Ctx(t, 10*time.Second), "GET", base+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s = %d, want 200", path, resp.StatusCode)
		}
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	var varz struct {
		ServerName string `json:"server_name"`
	}
	get("/varz", &varz)
	if varz.ServerName != "cellos-allinone" {
		t.Errorf("/varz server_name = %q, want the embedded server's", varz.ServerName)
	}
	var jsz struct {
		Streams  int    `json:"streams"`
		Messages uint64 `json:"messages"`
	}
	get("/jsz", &jsz)
	if jsz.Streams != 1 || jsz.Messages != 5 {
		t.Errorf("/jsz = %+v, want the one stream %s with 5 messages", jsz, eventlog.StreamName)
	}
}
