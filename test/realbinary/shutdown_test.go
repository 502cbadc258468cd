package realbinary_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cellos-allinone/testutil"
)

// SIGTERM stops the binary cleanly within a few seconds, with a final
// checkpoint at the stream's end: the next start replays nothing.
func TestGracefulShutdown(t *testing.T) {
	requireLong(t)
	bin := binary(t)
	tmp := t.TempDir()
	dataDir := filepath.Join(tmp, "data")
	// No checkpoint by count or time before the SIGTERM: the one the
	// restart finds is the shutdown's.
	args := []string{"--checkpoint-events", "100000", "--checkpoint-interval", "10s"}

	srv := startServer(t, bin, dataDir, tmp, "first", args...)
	seqs := testutil.MustPublish(t, srv.connect(t), testutil.Workload(3000)...)
	last := seqs[len(seqs)-1]
	st := srv.waitQuiet(t, 30*time.Second)
	if st.Cursor != last {
		t.Fatalf("cursor %d, want %d", st.Cursor, last)
	}
	code, took := srv.terminate(t, 10*time.Second)
	log := srv.logTail()
	if code != 0 || !strings.Contains(log, "stopped cleanly") {
		t.Fatalf("after SIGTERM: exit %d in %s, want 0 and \"stopped cleanly\" in the log\n%s", code, took, log)
	}
	t.Logf("SIGTERM: exit 0 in %s (checkpoint before it at cursor %d, stream at #%d)", took.Round(time.Millisecond), st.Checkpoint.Cursor, last)

	srv = startServer(t, bin, dataDir, tmp, "second", args...)
	st = srv.waitQuiet(t, 30*time.Second)
	b := st.Boot
	t.Logf("restart: boot checkpointCursor %d replayed %d rebuild %q durationMs %d", b.CheckpointCursor, b.Replayed, b.Rebuild, b.DurationMs)
	if b.CheckpointCursor != last || b.Replayed != 0 || b.Rebuild != "" || st.Cursor != last {
		t.Fatalf("after a clean stop the restart's boot = %+v (cursor %d), want checkpointCursor %d and nothing replayed", b, st.Cursor, last)
	}
	if code, _ := srv.terminate(t, 10*time.Second); code != 0 {
		t.Fatalf("second SIGTERM: exit %d, want 0\n%s", code, srv.logTail())
	}
}
