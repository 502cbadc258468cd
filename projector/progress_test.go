package projector

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"cellos-allinone/testutil"
)

// A long replay logs progress lines with done, total, rate and ETA, and
// the end of the replay.
func TestReplayLogsProgress(t *testing.T) {
	dir, nc, _ := startNATS(t, 10000)
	var logs testutil.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	r := startProjector(t, dir, nc, Config{ProgressInterval: time.Millisecond, Logger: log})
	r.stop()
	out := logs.String()
	var progress []string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "msg=replaying") {
			progress = append(progress, line)
		}
	}
	if len(progress) == 0 {
		t.Fatalf("no progress line during a replay of 10000 events:\n%s", out)
	}
	for _, key := range []string{"done=", "total=10000", "rate_per_s=", "eta="} {
		if !strings.Contains(progress[0], key) {
			t.Errorf("progress line %q lacks %q", progress[0], key)
		}
	}
	if !strings.Contains(out, `msg="replay complete; serving" replayed=10000`) {
		t.Errorf("no replay-complete line with the count:\n%.2000s", out)
	}
}
