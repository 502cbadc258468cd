package projector

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"cellos-allinone/testutil"
)

// A projector that falls behind says so: a warning once the oldest event
// not yet applied has waited LagWarnAfter, lagSeconds in its status and
// metrics while behind, and one line when it has caught up.
func TestFallingBehindIsLoggedAndReported(t *testing.T) {
	dir, nc, _ := startNATS(t, 0)
	var logs testutil.Buffer
	release := make(chan struct{})
	var once sync.Once
	stalled := make(chan struct{})
	// The first event stalls the projector until release: the cursor
	// stands still while the burst behind it waits.
	cfg := Config{
		Logger:       slog.New(slog.NewTextHandler(&logs, nil)),
		LagWarnAfter: 2 * time.Second,
		beforeApply: func() {
			once.Do(func() { close(stalled) })
			<-release
		},
	}
	r := startProjector(t, dir, nc, cfg)
	testutil.MustPublish(t, nc, testutil.Workload(500)...)
	<-stalled
	testutil.WaitFor(t, 15*time.Second, "a warning that the projector falls behind", func() bool {
		return strings.Contains(logs.String(), "projector falling behind")
	})
	st, err := r.p.Status(testutil.Ctx(t, 5*time.Second), "test")
	if err != nil {
		t.Fatal(err)
	}
	if st.Lag != 500 || st.LagSeconds < 2 {
		t.Fatalf("status while stalled: lag %d, lagSeconds %.2f; want 500 events waiting for 2s or more", st.Lag, st.LagSeconds)
	}
	if _, seconds, _ := r.p.lag.get(); seconds < 2 {
		t.Fatalf("cellos_projection_lag_seconds while stalled = %.2f, want 2 or more", seconds)
	}
	close(release)
	testutil.WaitFor(t, 15*time.Second, "a line that the projector caught up", func() bool {
		return strings.Contains(logs.String(), "projector caught up")
	})
	st, err = r.p.Status(testutil.Ctx(t, 5*time.Second), "test")
	if err != nil || st.Lag != 0 || st.LagSeconds != 0 {
		t.Fatalf("status after catching up: lag %d, lagSeconds %.2f (err %v); want 0 and 0", st.Lag, st.LagSeconds, err)
	}
}
