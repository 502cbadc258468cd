package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"cellos-allinone/projection"
	"cellos-allinone/testutil"
)

func mustOpen(tb testing.TB, path string) *Store {
	tb.Helper()
	s, aside, err := Open(path)
	if err != nil {
		tb.Fatalf("Open(%q): %v", path, err)
	}
	if aside != "" {
		tb.Fatalf("Open(%q) moved a file aside: %s", path, aside)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// fold applies events with sequences from 1 to a fresh projection.
func fold(events []testutil.Event) *projection.Projection {
	p := projection.New()
	for i, ev := range events {
		p.Apply(projection.Message{Seq: uint64(i + 1), Time: time.Unix(1700000000, 0), Payload: ev.Payload})
	}
	return p
}

// checkpointFile is the content of a checkpoint file holding a fold of n
// workload events.
func checkpointFile(tb testing.TB, n int) []byte {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "cp.db")
	s := mustOpen(tb, path)
	if err := s.Save("e", fold(testutil.Workload(n)).TakeChanges(), time.Now()); err != nil {
		tb.Fatal(err)
	}
	s.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestSaveLoadRoundTrip(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "cp.db"))
	events := testutil.Workload(500)
	p := projection.New()
	// Checkpoint incrementally every 37 events: the stored state must be the
	// union of all change sets.
	for i, ev := range events {
		p.Apply(projection.Message{Seq: uint64(i + 1), Time: time.Unix(1700000000, 0), Payload: ev.Payload})
		if i%37 == 0 {
			if err := s.Save("epoch-1", p.TakeChanges(), time.Now()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Save("epoch-1", p.TakeChanges(), time.Now()); err != nil {
		t.Fatal(err)
	}
	cp, found, err := s.Info()
	if err != nil || !found {
		t.Fatalf("Info() = found %v, err %v; want found", found, err)
	}
	if cp.Epoch != "epoch-1" || cp.Meta.Cursor != 500 || cp.Schema != SchemaVersion {
		t.Fatalf("Info() = %+v, want epoch-1 cursor 500 schema %d", cp, SchemaVersion)
	}
	got, err := s.Load(cp)
	if err != nil {
		t.Fatal(err)
	}
	want := fold(events)
	if string(got.Dump()) != string(want.Dump()) {
		t.Fatal("restored projection differs from a fold from scratch")
	}
	if got.Counters() != want.Counters() || got.CursorID() != want.CursorID() {
		t.Fatalf("restored counters %+v id %q, want %+v %q", got.Counters(), got.CursorID(), want.Counters(), want.CursorID())
	}
}

func TestResetDropsEverything(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "cp.db"))
	p := fold(testutil.Workload(100))
	if err := s.Save("e1", p.TakeChanges(), time.Now()); err != nil {
		t.Fatal(err)
	}
	q := fold(testutil.Workload(5))
	q.MarkReset()
	if err := s.Save("e2", q.TakeChanges(), time.Now()); err != nil {
		t.Fatal(err)
	}
	cp, _, _ := s.Info()
	got, err := s.Load(cp)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Dump()) != string(q.Dump()) {
		t.Fatal("after a reset the store still holds entities of the old projection")
	}
}

func TestFailedSaveKeepsPreviousCheckpoint(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "cp.db"))
	p := fold(testutil.Workload(50))
	if err := s.Save("e1", p.TakeChanges(), time.Now()); err != nil {
		t.Fatal(err)
	}
	before, _, _ := s.Info()
	// An empty key makes bbolt refuse the put in the middle of the
	// transaction: an injected write failure after other records were put.
	bad := projection.Changes{
		Reset:      true,
		Meta:       projection.Meta{Cursor: 999},
		Formations: map[string][]byte{"f-new": []byte(`{}`), "": []byte(`{}`)},
	}
	if err := s.Save("e1", bad, time.Now()); err == nil {
		t.Fatal("Save with an empty key succeeded; want an error")
	}
	after, _, err := s.Info()
	if err != nil || after.Meta.Cursor != before.Meta.Cursor {
		t.Fatalf("after failed save cursor = %d (err %v), want %d", after.Meta.Cursor, err, before.Meta.Cursor)
	}
	got, err := s.Load(after)
	if err != nil || string(got.Dump()) != string(p.Dump()) {
		t.Fatalf("after a failed save the stored projection changed (err %v)", err)
	}
}

func TestOpenMovesUnreadableFilesAside(t *testing.T) {
	cases := map[string][]byte{
		"foreign":   []byte("this is not a bbolt file, it is a text file that someone put here\n"),
		"truncated": nil, // filled below from a real checkpoint
		"garbage":   []byte(strings.Repeat("\xde\xad\xbe\xef", 4096)),
	}
	{
		b := checkpointFile(t, 200)
		cases["truncated"] = b[:1000]
		// Truncated at a page boundary: bbolt opens it and then reads
		// past the end of the mapping (SIGBUS) unless guarded.
		cases["truncated-at-page"] = b[:4096]
		cases["truncated-half"] = b[:len(b)/2]
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cp.db")
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			s, aside, err := Open(path)
			if err != nil {
				t.Fatalf("Open(%s file) = %v, want a fresh store", name, err)
			}
			defer s.Close()
			if aside == "" {
				t.Fatalf("Open(%s file) moved nothing aside", name)
			}
			kept, err := os.ReadFile(aside)
			if err != nil || string(kept) != string(content) {
				t.Fatalf("aside file %s does not hold the original bytes (err %v)", aside, err)
			}
			if _, found, err := s.Info(); found || err != nil {
				t.Fatalf("fresh store Info() = found %v err %v, want empty", found, err)
			}
		})
	}
}

func TestOpenZeroLengthFileIsEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cp.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s, aside, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, found, err := s.Info(); found || err != nil {
		t.Fatalf("zero-length file: Info() = found %v err %v (aside %q), want no checkpoint", found, err, aside)
	}
}

func TestOpenLockedFileIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cp.db")
	mustOpen(t, path)
	start := time.Now()
	_, aside, err := Open(path)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	if aside != "" {
		t.Fatalf("a locked file was moved aside to %s", aside)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Open on a locked file took %s", d)
	}
}

func TestInfoReportsOtherSchemas(t *testing.T) {
	for _, schema := range []uint64{0, SchemaVersion + 1} {
		path := filepath.Join(t.TempDir(), "cp.db")
		s := mustOpen(t, path)
		if err := s.Save("e", fold(testutil.Workload(10)).TakeChanges(), time.Now()); err != nil {
			t.Fatal(err)
		}
		err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySchema, be64(schema)) })
		if err != nil {
			t.Fatal(err)
		}
		cp, found, err := s.Info()
		if err != nil || !found || cp.Schema != schema {
			t.Fatalf("Info() with schema %d = %+v found %v err %v", schema, cp, found, err)
		}
	}
}

func TestQuarantineKeepsTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cp.db")
	s := mustOpen(t, path)
	if err := s.Save("e", fold(testutil.Workload(10)).TakeChanges(), time.Now()); err != nil {
		t.Fatal(err)
	}
	aside, err := s.Quarantine()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(aside); err != nil {
		t.Fatalf("quarantined file %s: %v", aside, err)
	}
	if _, found, _ := s.Info(); found {
		t.Fatal("after Quarantine the store still has a checkpoint")
	}
}
