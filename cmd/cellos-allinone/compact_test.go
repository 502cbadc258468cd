package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"cellos-allinone/app"
	"cellos-allinone/apptest"
	"cellos-allinone/testutil"
)

// inspected is what snapshot inspect -o json says of the file's pages.
type inspected struct {
	FileBytes, LiveBytes, FreeBytes, PageSize, LivePages, FreePages int64
}

func inspectJSON(t *testing.T, dir string) inspected {
	t.Helper()
	code, out := runCmd("snapshot", "inspect", "--data-dir", dir, "-o", "json")
	var in inspected
	if err := json.Unmarshal([]byte(out), &in); code != 0 || err != nil {
		t.Fatalf("inspect -o json = %d %q (%v)", code, out, err)
	}
	if in.PageSize <= 0 || in.LivePages <= 0 || in.LivePages*in.PageSize != in.LiveBytes || in.FreePages*in.PageSize != in.FreeBytes ||
		in.FileBytes < in.LiveBytes+in.FreeBytes {
		t.Fatalf("inspect -o json = %+v, want live and free bytes of their pages, within the file", in)
	}
	return in
}

// pagesLine is the line of snapshot inspect's text about the pages.
var pagesLine = regexp.MustCompile(`\npages       (\d+) bytes each: (\d+) live \((\d+) bytes\), (\d+) free \((\d+) bytes, (\d+)% of the pages(.*)\)\n`)

// snapshot inspect shows the state file's live and free pages and says
// when the default threshold is exceeded; the next start then compacts
// the file before its replay, and says so in /v1/status and /metrics.
func TestInspectFreePagesAndCompactionAtStart(t *testing.T) {
	dir := t.TempDir()
	a := apptest.Start(t, app.Config{DataDir: dir})
	seqs := a.Publish(testutil.Workload(300)...)
	a.WaitCursor(seqs[len(seqs)-1])
	a.Stop()

	code, out := runCmd("snapshot", "inspect", "--data-dir", dir)
	m := pagesLine.FindStringSubmatch(out)
	if code != 0 || m == nil || m[2] == "0" || m[7] != "" || !strings.Contains(out, "\nfile        ") {
		t.Fatalf("inspect = %d %q, want the file's size, its live and free pages, no compaction due", code, out)
	}
	fresh := inspectJSON(t, dir)
	if strconv.FormatInt(fresh.FreePages, 10) != m[4] || strconv.FormatInt(fresh.LiveBytes, 10) != m[3] {
		t.Fatalf("inspect's text %q and its JSON %+v disagree", m[0], fresh)
	}

	// 70 MiB of pages written and freed, as a big prune would leave them.
	path := filepath.Join(dir, app.CheckpointFile)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("junk"))
		if err != nil {
			return err
		}
		v := bytes.Repeat([]byte{'j'}, 4000) // a page each
		for i := range 70 * 256 {
			if err := b.Put(fmt.Appendf(nil, "%08d", i), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("junk")) })
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	code, out = runCmd("snapshot", "inspect", "--data-dir", dir)
	if m = pagesLine.FindStringSubmatch(out); code != 0 || m == nil || !strings.Contains(m[7], "the next start compacts it") {
		t.Fatalf("inspect of a file with 70 MiB free = %d %q, want a compaction said due", code, out)
	}
	bloated := inspectJSON(t, dir)
	// (The free list itself takes a page per 512 free pages.)
	if bloated.FreeBytes < 70<<20 || bloated.LiveBytes > fresh.LiveBytes+bloated.FreePages/512*bloated.PageSize+bloated.PageSize {
		t.Fatalf("inspect after 70 MiB freed = %+v, want them free and the live pages as before (%+v) and the free list's", bloated, fresh)
	}

	a = apptest.Start(t, app.Config{DataDir: dir})
	var st struct {
		Cursor    uint64 `json:"cursor"`
		StateFile struct {
			FileBytes      int64 `json:"fileBytes"`
			FreeBytes      int64 `json:"freeBytes"`
			Compactions    int   `json:"compactions"`
			LastCompaction *struct {
				Trigger     string `json:"trigger"`
				BytesBefore int64  `json:"bytesBefore"`
				BytesAfter  int64  `json:"bytesAfter"`
				DurationMs  int64  `json:"durationMs"`
				Error       string `json:"error"`
			} `json:"lastCompaction"`
		} `json:"stateFile"`
	}
	httpGet(t, a.URL()+"/v1/status", &st)
	c := st.StateFile.LastCompaction
	if st.StateFile.Compactions != 1 || c == nil || c.Trigger != "boot" || c.Error != "" || c.BytesBefore != bloated.FileBytes ||
		c.BytesAfter != st.StateFile.FileBytes || c.BytesAfter > bloated.FileBytes/4 || st.Cursor != seqs[len(seqs)-1] {
		t.Fatalf("/v1/status after a start on a bloated file: cursor %d, stateFile %+v, last compaction %+v; want one at boot that gave the free pages back",
			st.Cursor, st.StateFile, c)
	}
	t.Logf("compaction at start: %d bytes to %d in %d ms", c.BytesBefore, c.BytesAfter, c.DurationMs)
	metrics := httpGet(t, a.URL()+"/metrics", nil)
	for _, want := range []string{
		`cellos_state_file_compactions_total{result="done"} 1`,
		`cellos_state_file_compactions_total{result="failed"} 0`,
		fmt.Sprintf("cellos_state_file_bytes %g", float64(st.StateFile.FileBytes)),
		"cellos_state_file_compacting 0",
		"cellos_state_file_compacted_bytes_total ",
		"cellos_state_file_last_compaction_timestamp_seconds 1",
		"cellos_state_file_last_compaction_duration_seconds ",
		"cellos_state_file_live_bytes ",
		"cellos_state_file_free_bytes ",
	} {
		if !strings.Contains(metrics, "\n"+want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	a.Stop()
	if after := inspectJSON(t, dir); after.FileBytes != c.BytesAfter || after.FreeBytes > 1<<20 {
		t.Fatalf("inspect after the compaction = %+v, want the %d bytes /v1/status said and hardly a free page", after, c.BytesAfter)
	}
}

// httpGet GETs url, decodes a JSON answer into out (unless nil) and
// returns the body.
func httpGet(t *testing.T, url string, out any) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s = %d %q (%v)", url, resp.StatusCode, body, err)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
	}
	return string(body)
}
