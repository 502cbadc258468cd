package app_test

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"cellos-allinone/app"
	"cellos-allinone/eventlog"
	"cellos-allinone/projector"
	"cellos-allinone/store"
	"cellos-allinone/testutil"
	"cellos-allinone/web"
)

// Until the boot replay is done the read API answers 503 not_ready, while
// health and status keep answering.
func TestReadAPIWaitsForReplay(t *testing.T) {
	dir := t.TempDir()
	_, nc := testutil.MustStartNATS(t, dir)
	l, err := eventlog.Open(context.Background(), nc, eventlog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	testutil.MustPublish(t, nc, testutil.Workload(10)...)
	st, _, err := store.Open(filepath.Join(dir, app.CheckpointFile))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// A projector that has not run its boot yet: the state of every server
	// between binding HTTP and the end of replay.
	p := projector.New(l, st, projector.Config{})
	srv := web.New(web.Config{Addr: "127.0.0.1:0"}, p)
	if err := srv.Open(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close(testutil.Ctx(t, 5*time.Second))
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + srv.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	for _, path := range []string{"/v1/formations", "/v1/formations/f-00000", "/v1/cells", "/v1/cells/x", "/v1/summary", "/readyz"} {
		if code, _ := get(path); code != 503 {
			t.Errorf("GET %s before replay = %d, want 503", path, code)
		}
	}
	if _, ra := get("/v1/formations"); ra == "" {
		t.Error("503 not_ready without Retry-After")
	}
	for _, path := range []string{"/healthz", "/v1/status"} {
		if code, _ := get(path); code != 200 {
			t.Errorf("GET %s before replay = %d, want 200", path, code)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	if err := p.WaitReady(testutil.Ctx(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if code, _ := get("/v1/formations"); code != 200 {
		t.Errorf("GET /v1/formations after replay = %d, want 200", code)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestRefusesNonLoopbackListeners(t *testing.T) {
	for _, cfg := range []app.Config{
		{HTTPAddr: "0.0.0.0:8080"},
		{HTTPAddr: ":8080"},
		{HTTPAddr: "192.0.2.1:8080"},
		{NATSAddr: "0.0.0.0:4222"},
		{HTTPAddr: "not-an-address"},
		{NATSMonitorAddr: "0.0.0.0:8222"},
		{NATSMonitorAddr: "8222"},
		// External NATS: there is no embedded server to monitor.
		{NATSURL: "nats://127.0.0.1:4222", NATSMonitorAddr: "127.0.0.1:8222"},
	} {
		if err := cfg.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want a refusal", cfg)
		}
	}
	for _, cfg := range []app.Config{{}, {HTTPAddr: "localhost:1"}, {HTTPAddr: "[::1]:8080"}, {NATSURL: "nats://10.0.0.1:4222", NATSAddr: "0.0.0.0:1"}, {NATSMonitorAddr: "127.0.0.1:8222"}} {
		if err := cfg.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v, want ok", cfg, err)
		}
	}
}
