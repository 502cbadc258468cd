package app_test

import (
	"testing"
	"time"

	"cellos-allinone/app"
	"cellos-allinone/apptest"
	"cellos-allinone/testutil"
)

type bootStatus struct {
	Cursor uint64 `json:"cursor"`
	Boot   struct {
		CheckpointCursor uint64 `json:"checkpointCursor"`
		ReplayFrom       uint64 `json:"replayFrom"`
		Replayed         uint64 `json:"replayed"`
		Rebuild          string `json:"rebuild"`
	} `json:"boot"`
}

// publish → project → clean restart: nothing to replay; crash → restart:
// only the events after the last checkpoint are replayed, and the state
// equals a fold from scratch.
func TestRestartReplaysOnlyAfterCheckpoint(t *testing.T) {
	dir := t.TempDir()
	cfg := app.Config{DataDir: dir, CheckpointEvents: 50, CheckpointInterval: 10 * time.Second}
	a := apptest.Start(t, cfg)
	events := testutil.Workload(400)
	seqs := a.Publish(events[:120]...)
	a.WaitCursor(seqs[len(seqs)-1])
	a.Stop()

	a = apptest.Start(t, cfg)
	var st bootStatus
	getJSON(t, a, "/v1/status", &st)
	if st.Boot.CheckpointCursor != 120 || st.Boot.Replayed != 0 || st.Boot.Rebuild != "" || st.Cursor != 120 {
		t.Fatalf("after a clean restart boot = %+v cursor %d, want checkpoint 120 and nothing replayed", st.Boot, st.Cursor)
	}

	seqs = a.Publish(events[120:]...)
	a.WaitCursor(seqs[len(seqs)-1])
	a.Crash()

	a = apptest.Start(t, cfg)
	getJSON(t, a, "/v1/status", &st)
	// Checkpoints were written every 50 events: at most 49 are replayed.
	if st.Boot.Rebuild != "" || st.Boot.CheckpointCursor < 351 || st.Boot.CheckpointCursor >= 400 ||
		st.Boot.Replayed != 400-st.Boot.CheckpointCursor || st.Boot.ReplayFrom != st.Boot.CheckpointCursor+1 {
		t.Fatalf("after a crash boot = %+v, want the last count-triggered checkpoint (351..399) and only the rest replayed", st.Boot)
	}
	if st.Cursor != 400 {
		t.Fatalf("cursor %d after replay, want 400", st.Cursor)
	}
	if dumpOf(a) != string(foldOf(t, a.Events).Dump()) {
		t.Fatal("after crash and restart the projection differs from a fold of the stream")
	}
}
