package app_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cellos-allinone/app"
	"cellos-allinone/apptest"
	"cellos-allinone/projection"
	"cellos-allinone/testutil"
)

// The data dir on a small disk of its own (a tmpfs; JetStream's directory
// in it is bound to the ordinary disk, so that events are still stored):
// when the disk fills up, /readyz says why with 503 commit_failing, the
// read API answers from the last commit with its cursor, /v1/status and
// /metrics show the failure; once the disk has room again the program is
// ready, caught up, and serves exactly a fold of every acknowledged event.
func TestFullDataDirStopsTheFoldNotTheReads(t *testing.T) {
	dir := testutil.SmallDisk(t, "", "8m")
	js := filepath.Join(dir, "jetstream")
	if err := os.Mkdir(js, 0o700); err != nil {
		t.Fatal(err)
	}
	testutil.BindMount(t, t.TempDir(), js)
	a := apptest.Start(t, app.Config{DataDir: dir, CheckpointInterval: 50 * time.Millisecond})
	seqs := a.Publish(testutil.Workload(40)...)
	a.WaitCursor(seqs[len(seqs)-1])

	free := testutil.FillDisk(t, dir)
	big := strings.Repeat("x", 4000)
	var events []testutil.Event
	for i := range 200 {
		events = append(events, testutil.Cell(fmt.Sprintf("big-%03d", i), "summary", map[string]any{"blob": big}))
	}
	seqs = a.Publish(events...)
	last := seqs[len(seqs)-1]

	type apiError struct {
		Error struct {
			Code     string    `json:"code"`
			Message  string    `json:"message"`
			Since    time.Time `json:"since"`
			Attempts uint64    `json:"attempts"`
		} `json:"error"`
	}
	var ready apiError
	testutil.WaitFor(t, 30*time.Second, "/readyz to say the commit fails", func() bool {
		code, _, body := get(t, a, "/readyz")
		return code == 503 && json.Unmarshal(body, &ready) == nil && ready.Error.Code == "commit_failing"
	})
	if e := ready.Error; !strings.Contains(e.Message, "no space left") || e.Since.IsZero() || e.Attempts == 0 {
		t.Fatalf("/readyz error = %+v, want the reason, since when and the attempts", e)
	}
	if _, h, _ := get(t, a, "/readyz"); h.Get("Retry-After") == "" {
		t.Error("/readyz 503 commit_failing without Retry-After")
	}

	var st struct {
		Ready      bool   `json:"ready"`
		Cursor     uint64 `json:"cursor"`
		Checkpoint struct {
			Cursor  uint64 `json:"cursor"`
			Failing *struct {
				Since    time.Time `json:"since"`
				Attempts uint64    `json:"attempts"`
				Error    string    `json:"error"`
				Cursor   uint64    `json:"cursor"`
			} `json:"failing"`
		} `json:"checkpoint"`
	}
	if code := getJSON(t, a, "/v1/status", &st); code != 200 || !st.Ready || st.Checkpoint.Failing == nil ||
		st.Checkpoint.Cursor != st.Cursor || st.Checkpoint.Failing.Cursor <= st.Cursor || st.Cursor >= last {
		t.Fatalf("/v1/status while the disk is full = %d %+v (failing %+v), want the failure and the last commit served", code, st, st.Checkpoint.Failing)
	}
	committed := st.Cursor
	var cells struct {
		Cursor uint64            `json:"cursor"`
		Cells  []projection.Cell `json:"cells"`
	}
	if code := getJSON(t, a, "/v1/cells?limit=1000", &cells); code != 200 || cells.Cursor != committed {
		t.Fatalf("GET /v1/cells while the disk is full = %d at cursor %d, want 200 at the last commit %d", code, cells.Cursor, committed)
	}
	_, _, metrics := get(t, a, "/metrics")
	for _, want := range []string{"cellos_ready 0", "cellos_checkpoint_failing 1"} {
		if !strings.Contains(string(metrics), want+"\n") {
			t.Errorf("/metrics while the disk is full lacks %q", want)
		}
	}

	free()
	testutil.WaitFor(t, 40*time.Second, "/readyz 200 once the disk has room", func() bool {
		code, _, _ := get(t, a, "/readyz")
		return code == 200
	})
	a.WaitCursor(last)
	want := foldOf(t, a.Events)
	if got := dumpOf(a); got != string(want.Dump()) {
		t.Fatal("after the full disk the registry differs from a fold of the stream")
	}
	var after struct {
		Events     projection.Counters `json:"events"`
		Checkpoint struct {
			Failing   any    `json:"failing"`
			LastError string `json:"lastError"`
		} `json:"checkpoint"`
	}
	getJSON(t, a, "/v1/status", &after)
	if !after.Events.Equal(want.Counters()) || after.Checkpoint.Failing != nil || after.Checkpoint.LastError != "" {
		t.Fatalf("/v1/status after the disk has room: events %+v, checkpoint %+v; want the fold's counters %+v (each event once) and no failure",
			after.Events, after.Checkpoint, want.Counters())
	}
}
