package app_test

import (
	"testing"

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
// only the events after the last commit are replayed, nothing that was
// served is replayed or lost, and the state equals a fold from scratch.
func TestRestartReplaysOnlyAfterCheckpoint(t *testing.T) {
	dir := t.TempDir()
	cfg := app.Config{DataDir: dir}
	a := apptest.Start(t, cfg)
	events := testutil.Workload(4000)
	seqs := a.Publish(events[:120]...)
	a.WaitCursor(seqs[len(seqs)-1])
	a.Stop()

	a = apptest.Start(t, cfg)
	var st bootStatus
	getJSON(t, a, "/v1/status", &st)
	if st.Boot.CheckpointCursor != 120 || st.Boot.Replayed != 0 || st.Boot.Rebuild != "" || st.Cursor != 120 {
		t.Fatalf("after a clean restart boot = %+v cursor %d, want checkpoint 120 and nothing replayed", st.Boot, st.Cursor)
	}

	// Crash while the fold is busy: what was served had been committed
	// (reads come from committed state), so the checkpoint holds at least
	// that much; whatever came after is replayed, once.
	a.Publish(events[120:]...)
	served := a.Cursor()
	a.Crash()

	a = apptest.Start(t, cfg)
	getJSON(t, a, "/v1/status", &st)
	cp := st.Boot.CheckpointCursor
	if st.Boot.Rebuild != "" || cp < served || cp < 120 || cp > 4000 ||
		st.Boot.Replayed != 4000-cp || st.Boot.ReplayFrom != cp+1 {
		t.Fatalf("after a crash boot = %+v, want a checkpoint at or after the served cursor %d and only the rest replayed", st.Boot, served)
	}
	t.Logf("crash at served cursor %d: checkpoint %d, replayed %d", served, cp, st.Boot.Replayed)
	a.WaitCursor(4000)
	if dumpOf(a) != string(foldOf(t, a.Events).Dump()) {
		t.Fatal("after crash and restart the projection differs from a fold of the stream")
	}
}
