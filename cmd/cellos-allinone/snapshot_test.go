package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"cellos-allinone/app"
	"cellos-allinone/apptest"
	"cellos-allinone/testutil"
)

func runCmd(args ...string) (int, string) {
	var out bytes.Buffer
	code := run(args, &out, &out)
	return code, out.String()
}

func TestSnapshotCommands(t *testing.T) {
	dir := t.TempDir()
	a := apptest.Start(t, app.Config{DataDir: dir})
	// Fold v3 as well: both subject forms, a cell that inherits its
	// formation's tenant, two events rejected.
	tenantForm := func(tenant string, ev testutil.Event) testutil.Event {
		ev.Subject = strings.Replace(ev.Subject, "cellos.events.", "cellos.events."+tenant+".", 1)
		return ev
	}
	events := append(testutil.Workload(1495),
		testutil.Formation("xf", "created", map[string]any{"tenantId": "acme"}),
		testutil.Cell("x1", "admitted", map[string]any{"formationId": "xf"}),
		tenantForm("acme", testutil.Cell("x2", "admitted", nil)),
		tenantForm("other", testutil.Cell("x2", "started", nil)),
		tenantForm("acme", testutil.Cell("x3", "admitted", map[string]any{"tenantId": "other"})))
	seqs := a.Publish(events...)
	a.WaitCursor(seqs[len(seqs)-1])

	if code, out := runCmd("snapshot", "verify", "--server", a.URL(), "--nats-url", a.NATSURL()); code != 0 || !strings.Contains(out, "ok:") {
		t.Fatalf("verify of the running server = %d %q, want 0 ok", code, out)
	}
	if code, out := runCmd("snapshot", "inspect", "--data-dir", dir); code != 1 || !strings.Contains(out, "in use by a running server") {
		t.Fatalf("inspect while running = %d %q, want 1 and a clear message", code, out)
	}
	a.Stop()

	code, out := runCmd("snapshot", "inspect", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "cursor      1500") || !strings.Contains(out, "cells") ||
		!strings.Contains(out, "rejected 2\n") || !strings.Contains(out, "untenanted  tenant-") || !strings.Contains(out, "acme 2") {
		t.Fatalf("inspect = %d %q, want cursor 1500, 2 rejected, untenanted events of the workload's tenants and acme", code, out)
	}
	if code, out := runCmd("snapshot", "verify", "--data-dir", dir); code != 0 || !strings.Contains(out, "ok:") || !strings.Contains(out, "indexes, cell counts") {
		t.Fatalf("offline verify = %d %q, want 0 ok with the derived data checked", code, out)
	}

	// Lose one cell from the checkpoint: verify must find exactly it.
	db, err := bolt.Open(filepath.Join(dir, app.CheckpointFile), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("cells")).Delete([]byte("f-00002-c05"))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	code, out = runCmd("snapshot", "verify", "--data-dir", dir)
	if code != 1 || !strings.Contains(out, "cell f-00002-c05") || !strings.Contains(out, "differs") ||
		!strings.Contains(out, "belongs to no record") {
		t.Fatalf("verify of a damaged checkpoint = %d %q, want 1 naming cell f-00002-c05 and its orphaned index keys", code, out)
	}

	if code, out := runCmd("snapshot", "rebuild", "--data-dir", dir); code != 0 || !strings.Contains(out, "rebuilt from 1500 events") {
		t.Fatalf("rebuild = %d %q, want 0 and 1500 events", code, out)
	}
	if code, out := runCmd("snapshot", "verify", "--data-dir", dir); code != 0 {
		t.Fatalf("verify after rebuild = %d %q, want 0", code, out)
	}

	// Every record intact, one index key lost: the lists would miss a
	// cell, and verify says so. So it does of counters that disagree with
	// the stream's events.
	if db, err = bolt.Open(filepath.Join(dir, app.CheckpointFile), 0o600, &bolt.Options{Timeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		ix := tx.Bucket([]byte("ix-cell-tenant"))
		k, _ := ix.Cursor().Last()
		if err := ix.Delete(append([]byte(nil), k...)); err != nil {
			return err
		}
		// The position changed as a writer would have written it: sealed
		// again (store/seal.go), so that it reads, and says other counts.
		meta := tx.Bucket([]byte("meta"))
		rec := meta.Get([]byte("position"))
		pos := strings.Replace(string(rec[:len(rec)-4]), `"rejected":2`, `"rejected":3`, 1)
		return meta.Put([]byte("position"), resealed([]byte("position"), []byte(pos)))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if code, out := runCmd("snapshot", "verify", "--data-dir", dir); code != 1 || !strings.Contains(out, "ix-cell-tenant") || !strings.Contains(out, "missing") ||
		!strings.Contains(out, "event counters") || !strings.Contains(out, "Rejected:3") {
		t.Fatalf("verify with an index key lost and a counter changed = %d %q, want 1 naming the index and the counters", code, out)
	}
	if code, _ := runCmd("snapshot"); code != 2 {
		t.Fatalf("snapshot without subcommand = %d, want 2", code)
	}
}

// verify on a box whose byte-capped stream expired most of its history
// (docs/design.md §3, retention): it passes, proving the entities born in
// the retained window and keeping those from before it by the retention
// rule — also the live ones whose events all expired — and it still finds
// a cell the window proves lost from the checkpoint.
func TestSnapshotVerifyAfterExpiry(t *testing.T) {
	dir := t.TempDir()
	a := apptest.Start(t, app.Config{DataDir: dir, MaxBytes: 256 << 10})
	// Live from the start: these stay, however old.
	a.Publish(testutil.Formation("keep", "running", nil), testutil.Cell("keep-c", "started", map[string]any{"formationId": "keep"}))
	events := testutil.Workload(3000)
	seqs := a.Publish(events...)
	a.WaitCursor(seqs[len(seqs)-1])
	st, err := a.Events.State(testutil.Ctx(t, 5*time.Second))
	if err != nil || st.FirstSeq < 1000 {
		t.Fatalf("stream state %+v, %v: want the byte cap to have expired most of it", st, err)
	}
	if code, out := runCmd("snapshot", "verify", "--server", a.URL(), "--nats-url", a.NATSURL()); code != 0 || !strings.Contains(out, "ok:") || !strings.Contains(out, "expired") {
		t.Fatalf("verify of the running server = %d %q, want 0 ok saying events expired", code, out)
	}
	code, out := runCmd("snapshot", "hash", "--server", a.URL(), "--fold=true", "--nats-url", a.NATSURL())
	if code != 0 || !strings.Contains(out, "not compared: events 1..") || !strings.Contains(out, fmt.Sprintf("the state folded %d events where", len(seqs)+2)) {
		t.Fatalf("hash of the running server after expiry = %d %q, want 0, not compared, the events expired", code, out)
	}
	a.Stop()

	code, out = runCmd("snapshot", "verify", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "ok:") || !strings.Contains(out, "equal a fold of it") || !strings.Contains(out, "kept by the retention rule") {
		t.Fatalf("offline verify after expiry = %d %q, want 0 ok by the retention rule", code, out)
	}
	t.Logf("verify: %s", out)
	// The state folded events that expired since: a fold of the retained
	// ones cannot equal it, and hash says so instead of a difference.
	code, out = runCmd("snapshot", "hash", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "not compared: events 1..") || !strings.Contains(out, "snapshot verify --data-dir") ||
		!strings.Contains(out, fmt.Sprintf("the state folded %d events where", len(seqs)+2)) {
		t.Fatalf("hash after expiry = %d %q, want 0, not compared, the events expired and a pointer to verify", code, out)
	}
	if code, out := runCmd("snapshot", "inspect", "--data-dir", dir); code != 0 || !strings.Contains(out, "pruned      ") {
		t.Fatalf("inspect = %d %q, want what was pruned", code, out)
	}

	// The last cell of the workload was born in the retained window.
	var last string
	for _, ev := range events {
		if strings.HasPrefix(ev.Subject, "cellos.events.cell.") {
			last = strings.Split(ev.Subject, ".")[3]
		}
	}
	db, err := bolt.Open(filepath.Join(dir, app.CheckpointFile), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket([]byte("cells")).Get([]byte("keep-c")) == nil {
			t.Errorf("the live cell keep-c, all of whose events expired, is not held")
		}
		return tx.Bucket([]byte("cells")).Delete([]byte(last))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	code, out = runCmd("snapshot", "verify", "--data-dir", dir)
	if want := "cell " + last + ": a fold of the retained window holds it"; code != 1 || !strings.Contains(out, want) {
		t.Fatalf("verify of a checkpoint that lost %s = %d %q, want 1 and %q", last, code, out, want)
	}

	// Rebuilt from the retained events, the state is their fold: the
	// hash compares again, and is equal.
	if code, out := runCmd("snapshot", "rebuild", "--data-dir", dir); code != 0 {
		t.Fatalf("rebuild = %d %q", code, out)
	}
	if code, out := runCmd("snapshot", "hash", "--data-dir", dir); code != 0 || !strings.Contains(out, "equal: ") || !strings.Contains(out, "expired") {
		t.Fatalf("hash of a state rebuilt after expiry = %d %q, want 0 and equal", code, out)
	}
}

// resealed is val with the seal the store gives a value under key
// (store/seal.go): CRC-32C of key and value, the key's length mixed in.
func resealed(key, val []byte) []byte {
	tab := crc32.MakeTable(crc32.Castagnoli)
	c := crc32.Update(crc32.Update(0, tab, key), tab, val)
	return binary.BigEndian.AppendUint32(append([]byte(nil), val...), c^uint32(len(key))*0x9e3779b1)
}

// The diagnostics never change a data dir: a checkpoint whose key table
// does not read is an error of inspect, verify and hash, and stays as it
// was, where it was — no file moved aside, no empty one made (only a
// start, or snapshot rebuild, replaces it). While a server runs on it,
// they say so (bbolt's shared lock against the server's exclusive one).
func TestDiagnosticsNeverChangeTheDataDir(t *testing.T) {
	dir := t.TempDir()
	a := apptest.Start(t, app.Config{DataDir: dir})
	seqs := a.Publish(testutil.Workload(200)...)
	a.WaitCursor(seqs[len(seqs)-1])
	for _, cmd := range [][]string{{"inspect"}, {"verify"}, {"hash", "--fold", "false"}} {
		args := append([]string{"snapshot", cmd[0], "--data-dir", dir}, cmd[1:]...)
		if code, out := runCmd(args...); code != 1 || !strings.Contains(out, "in use by a running server") {
			t.Fatalf("%q while the server runs = %d %q, want 1 and that it is in use", args, code, out)
		}
	}
	a.Stop()

	path := filepath.Join(dir, app.CheckpointFile)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("keys")).Put([]byte{0, 0, 0, 1}, []byte("not a sealed key name"))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	listing := func() string {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return strings.Join(names, " ")
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	files := listing()
	for _, cmd := range [][]string{{"inspect"}, {"verify"}, {"hash", "--fold", "false"}, {"hash"}} {
		args := append([]string{"snapshot", cmd[0], "--data-dir", dir}, cmd[1:]...)
		code, out := runCmd(args...)
		if code != 1 || !strings.Contains(out, "key table") || !strings.Contains(out, "next start") {
			t.Fatalf("%q of a checkpoint whose key table does not read = %d %q, want 1 naming the key table and what the next start does", args, code, out)
		}
		after, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(before, after) || listing() != files {
			t.Fatalf("%q changed the data dir: %s, was %s (checkpoint unchanged: %v, err %v)", args, listing(), files, bytes.Equal(before, after), err)
		}
	}
}
