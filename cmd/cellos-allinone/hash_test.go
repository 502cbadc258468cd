package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"cellos-allinone/app"
	"cellos-allinone/apptest"
	"cellos-allinone/testutil"
)

// hashJSON runs snapshot hash with args and -o json.
func hashJSON(t *testing.T, args ...string) (int, hashReport, string) {
	t.Helper()
	code, out := runCmd(append(append([]string{"snapshot", "hash"}, args...), "-o", "json")...)
	var rep hashReport
	if code == 0 || code == 1 {
		if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &rep); err != nil {
			t.Fatalf("snapshot hash %q -o json = %d %q: %v", args, code, out, err)
		}
	}
	return code, rep, out
}

// snapshot hash against a running server and on its stopped data dir:
// the server's hash is a fold's; the state file's is the same; a fold up
// to one cursor is the same whether the stream is read through the
// running server's NATS or from the stopped data dir; and a record of the
// state file changed into another believable one (sealed again) is a
// difference, named, exit 1.
func TestSnapshotHash(t *testing.T) {
	dir := t.TempDir()
	a := apptest.Start(t, app.Config{DataDir: dir})
	seqs := a.Publish(testutil.Workload(1200)...)
	a.WaitCursor(seqs[len(seqs)-1])

	code, served, out := hashJSON(t, "--server", a.URL(), "--fold", "true", "--nats-url", a.NATSURL())
	if code != 0 || !served.Compared || !served.Equal || served.State.Cursor != 1200 || served.State.Value != served.Fold.Value ||
		served.State.Cells == 0 || served.State.Version != "cellos-state-hash/v1" || served.State.Events != 1200 || served.Fold.Events != 1200 {
		t.Fatalf("hash of the running server with a fold = %d %s, want 0 and equal at cursor 1200", code, out)
	}
	if code, out := runCmd("snapshot", "hash", "--server", a.URL()); code != 0 || !strings.Contains(out, served.State.Value) || strings.Contains(out, "\nfold ") {
		t.Fatalf("hash of the running server = %d %q, want 0 and its value, no fold", code, out)
	}
	code, at700, out := hashJSON(t, "--server", a.URL(), "--nats-url", a.NATSURL(), "--at", "700")
	if code != 0 || at700.Compared || at700.Fold.Cursor != 700 || at700.Fold.Value == served.State.Value || !strings.Contains(at700.Note, "at cursor 1200, the fold at 700") {
		t.Fatalf("--at 700 through the server = %d %s, want 0, a fold at 700, not compared with the state at 1200", code, out)
	}
	a.Stop()

	code, out = runCmd("snapshot", "hash", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, served.State.Value) || !strings.Contains(out, "equal: the state is what a rebuild") {
		t.Fatalf("hash of the data dir = %d %q, want 0, equal, value %s", code, out, served.State.Value)
	}
	if code, rep, out := hashJSON(t, "--data-dir", dir, "--at", "700"); code != 0 || rep.Fold.Value != at700.Fold.Value || rep.State.Value != served.State.Value || rep.Compared {
		t.Fatalf("--at 700 on the data dir = %d %s, want the fold %s of the server's stream at 700 and the state's own hash", code, out, at700.Fold.Value)
	}
	if code, out := runCmd("snapshot", "hash", "--data-dir", dir, "--at", "5000"); code != 1 || !strings.Contains(out, "the stream ends at #1200") {
		t.Fatalf("--at beyond the stream = %d %q, want 1 saying where it ends", code, out)
	}
	for _, bad := range [][]string{{"--at", "x"}, {"--at", "0"}, {"--fold", "maybe"}, {"--fold", "false", "--at", "5"}} {
		if code, out := runCmd(append([]string{"snapshot", "hash", "--data-dir", dir}, bad...)...); code != 2 {
			t.Errorf("snapshot hash %q = %d %q, want a usage error", bad, code, out)
		}
	}

	// A cell that failed made to read completed: the record sealed again
	// as the store seals it (store/seal.go), so that it reads as a record
	// of a state nothing checks against the log.
	const id = "f-00002-c05"
	db, err := bolt.Open(filepath.Join(dir, app.CheckpointFile), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		cells := tx.Bucket([]byte("cells"))
		rec := cells.Get([]byte(id))
		body := append([]byte(nil), rec[:len(rec)-4]...)
		body[1] = (body[1] + 1) % 5 // the state: another one of the five
		return cells.Put([]byte(id), resealed([]byte(id), body))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	code, rep, out := hashJSON(t, "--data-dir", dir)
	if code != 1 || !rep.Compared || rep.Equal || rep.State.Value == served.State.Value || rep.Fold.Value != served.State.Value ||
		rep.Difference != "cell "+id+": differs from a fold of the log" {
		t.Fatalf("hash of a changed state = %d %s, want 1 naming cell %s", code, out, id)
	}
	if code, out := runCmd("snapshot", "hash", "--data-dir", dir); code != 1 || !strings.Contains(out, "DIFFERENT: cell "+id) || !strings.Contains(out, "snapshot verify") {
		t.Fatalf("hash of a changed state = %d %q, want 1, the cell and a pointer to verify", code, out)
	}
	if code, out := runCmd("snapshot", "hash", "--data-dir", dir, "--fold=false"); code != 0 || strings.Contains(out, "\nfold ") {
		t.Fatalf("--fold=false = %d %q, want 0 and the state's hash alone", code, out)
	}
}
