package projector

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	bolt "go.etcd.io/bbolt"

	"cellos-allinone/eventlog"
	"cellos-allinone/projection"
	"cellos-allinone/store"
	"cellos-allinone/testutil"
)

// Each boot case of DESIGN.md §4: the projector must start, report what it
// did in Boot, and end up equal to a fold of the stream.

func TestBootNoCheckpoint(t *testing.T) {
	dir, nc, _ := startNATS(t)
	testutil.MustPublish(t, nc, testutil.Workload(300)...)
	r := startProjector(t, dir, nc, Config{})
	r.waitReady()
	b := r.p.BootInfo()
	if b.Rebuild != "" || b.CheckpointCursor != 0 || b.ReplayFrom != 1 || b.ReplayTo != 300 || b.Replayed != 300 {
		t.Fatalf("BootInfo() = %+v, want no rebuild, replay 1..300, 300 replayed", b)
	}
	r.assertEqualsFold()
}

func TestBootFromCheckpointReplaysOnlyTheRest(t *testing.T) {
	dir, nc, _ := startNATS(t)
	testutil.MustPublish(t, nc, testutil.Workload(200)...)
	r := startProjector(t, dir, nc, Config{})
	r.waitReady()
	r.stop()
	testutil.MustPublish(t, nc, testutil.Workload(250)[200:]...)
	r = startProjector(t, dir, nc, Config{})
	r.waitReady()
	b := r.p.BootInfo()
	if b.Rebuild != "" || b.CheckpointCursor != 200 || b.ReplayFrom != 201 || b.Replayed != 50 {
		t.Fatalf("BootInfo() = %+v, want checkpoint 200, replay from 201, 50 replayed", b)
	}
	r.assertEqualsFold()
}

func TestBootOtherEpochRebuilds(t *testing.T) {
	dir, nc, l := startNATS(t)
	testutil.MustPublish(t, nc, testutil.Workload(100)...)
	r := startProjector(t, dir, nc, Config{})
	r.waitReady()
	r.stop()
	// The stream is deleted and created again: a new incarnation.
	if err := l.JetStream().DeleteStream(testutil.Ctx(t, 5*time.Second), eventlog.StreamName); err != nil {
		t.Fatal(err)
	}
	openLog(t, nc)
	testutil.MustPublish(t, nc, testutil.Workload(130)[100:]...)
	r = startProjector(t, dir, nc, Config{})
	r.waitReady()
	b := r.p.BootInfo()
	if !strings.HasPrefix(b.Rebuild, RebuildEpoch) || b.CheckpointCursor != 0 || b.Replayed != 30 {
		t.Fatalf("BootInfo() = %+v, want rebuild %s with 30 replayed", b, RebuildEpoch)
	}
	r.assertEqualsFold()
}

// writeCheckpoint stores p as the checkpoint in dir for the stream's epoch.
func writeCheckpoint(t *testing.T, dir, epoch string, p *projection.Projection) {
	t.Helper()
	st, _, err := store.Open(filepath.Join(dir, "checkpoint.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Save(epoch, p.TakeChanges(), time.Now()); err != nil {
		t.Fatal(err)
	}
}

func foldEvents(events []testutil.Event) *projection.Projection {
	p := projection.New()
	for i, ev := range events {
		p.Apply(projection.Message{Seq: uint64(i + 1), Time: time.Now(), Payload: ev.Payload})
	}
	return p
}

func TestBootCursorBeyondStreamRebuilds(t *testing.T) {
	dir, nc, l := startNATS(t)
	events := testutil.Workload(80)
	testutil.MustPublish(t, nc, events...)
	// The checkpoint saw 120 events; the stream lost its unflushed tail.
	p := foldEvents(testutil.Workload(120))
	writeCheckpoint(t, dir, l.Epoch(), p)
	r := startProjector(t, dir, nc, Config{})
	r.waitReady()
	if b := r.p.BootInfo(); !strings.HasPrefix(b.Rebuild, RebuildBeyond) || b.Replayed != 80 {
		t.Fatalf("BootInfo() = %+v, want rebuild %s, 80 replayed", b, RebuildBeyond)
	}
	r.assertEqualsFold()
}

func TestBootDifferentMessageAtCursorRebuilds(t *testing.T) {
	dir, nc, l := startNATS(t)
	testutil.MustPublish(t, nc, testutil.Workload(60)...)
	// Same sequences, other events (new ids): after a power cut JetStream
	// handed the lost sequence numbers to new events.
	other := foldEvents(testutil.Workload(40))
	writeCheckpoint(t, dir, l.Epoch(), other)
	r := startProjector(t, dir, nc, Config{})
	r.waitReady()
	if b := r.p.BootInfo(); !strings.HasPrefix(b.Rebuild, RebuildMsgMismatch) || b.Replayed != 60 {
		t.Fatalf("BootInfo() = %+v, want rebuild %s, 60 replayed", b, RebuildMsgMismatch)
	}
	r.assertEqualsFold()
}

func TestBootExpiredGapContinuesFromFirstSequence(t *testing.T) {
	dir, nc, l := startNATS(t)
	testutil.MustPublish(t, nc, testutil.Workload(50)...)
	r := startProjector(t, dir, nc, Config{})
	r.waitReady()
	r.stop()
	before := foldStream(t, l)
	testutil.MustPublish(t, nc, testutil.Workload(100)[50:]...)
	// 51..80 expire before the projector sees them.
	if err := l.Handle().Purge(testutil.Ctx(t, 5*time.Second), jetstream.WithPurgeSequence(81)); err != nil {
		t.Fatal(err)
	}
	r = startProjector(t, dir, nc, Config{})
	r.waitReady()
	b := r.p.BootInfo()
	if b.Rebuild != "" || b.CheckpointCursor != 50 || b.Replayed != 20 {
		t.Fatalf("BootInfo() = %+v, want checkpoint 50 kept and 20 replayed", b)
	}
	st, err := r.p.Status(testutil.Ctx(t, 5*time.Second), "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Gaps) != 1 || st.Gaps[0] != (projection.Gap{From: 51, To: 80}) {
		t.Fatalf("Status().Gaps = %+v, want [{51 80}]", st.Gaps)
	}
	if st.Cursor != 100 || st.Events.Applied+st.Events.Ignored+st.Events.Malformed != 70 {
		t.Fatalf("Status() cursor %d events %+v, want cursor 100 and 70 events counted", st.Cursor, st.Events)
	}
	// The projection is the checkpointed state (1..50) plus 81..100.
	want := before
	ctx := testutil.Ctx(t, 10*time.Second)
	err = l.Follow(ctx, l.Current(), 81, func(d eventlog.Delivery) error {
		want.Apply(projection.Message{Seq: d.Seq, Time: d.Time, Payload: d.Payload})
		if d.Seq == 100 {
			return errStop
		}
		return nil
	})
	if err != errStop {
		t.Fatal(err)
	}
	r.waitCursor(100)
	if r.dump() != string(want.Dump()) {
		t.Fatal("projection differs from the checkpointed state plus the retained events")
	}
}

func TestBootAllExpiredAfterCursor(t *testing.T) {
	dir, nc, l := startNATS(t)
	testutil.MustPublish(t, nc, testutil.Workload(30)...)
	r := startProjector(t, dir, nc, Config{})
	r.waitReady()
	r.stop()
	testutil.MustPublish(t, nc, testutil.Workload(40)[30:]...)
	if err := l.Handle().Purge(testutil.Ctx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	r = startProjector(t, dir, nc, Config{})
	r.waitReady()
	st, err := r.p.Status(testutil.Ctx(t, 5*time.Second), "test")
	if err != nil {
		t.Fatal(err)
	}
	if st.Cursor != 40 || st.Lag != 0 || len(st.Gaps) != 1 || st.Gaps[0] != (projection.Gap{From: 31, To: 40}) {
		t.Fatalf("Status() = cursor %d lag %d gaps %+v, want cursor 40, lag 0, gap 31..40", st.Cursor, st.Lag, st.Gaps)
	}
}

func TestBootCorruptFileRebuilds(t *testing.T) {
	dir, nc, _ := startNATS(t)
	testutil.MustPublish(t, nc, testutil.Workload(40)...)
	path := filepath.Join(dir, "checkpoint.db")
	if err := os.WriteFile(path, []byte("garbage, not bbolt\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := startProjector(t, dir, nc, Config{})
	r.waitReady()
	b := r.p.BootInfo()
	if !strings.HasPrefix(b.Rebuild, RebuildUnreadable) || b.Replayed != 40 {
		t.Fatalf("BootInfo() = %+v, want rebuild %s", b, RebuildUnreadable)
	}
	r.assertEqualsFold()
	if m, _ := filepath.Glob(path + ".bad-*"); len(m) != 1 {
		t.Fatalf("corrupt file kept aside: %v, want one", m)
	}
}

func TestBootUndecodableRecordRebuilds(t *testing.T) {
	dir, nc, _ := startNATS(t)
	testutil.MustPublish(t, nc, testutil.Workload(40)...)
	r := startProjector(t, dir, nc, Config{})
	r.waitReady()
	r.stop()
	mutateBolt(t, filepath.Join(dir, "checkpoint.db"), func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("cells")).Put([]byte("f-00000-c00"), []byte("{not json"))
	})
	r = startProjector(t, dir, nc, Config{})
	r.waitReady()
	if b := r.p.BootInfo(); !strings.HasPrefix(b.Rebuild, RebuildUnreadable) || b.Replayed != 40 {
		t.Fatalf("BootInfo() = %+v, want rebuild %s", b, RebuildUnreadable)
	}
	r.assertEqualsFold()
}

func TestBootOtherSchema(t *testing.T) {
	for _, tc := range []struct {
		schema uint64
		reason string
		aside  int
	}{
		{store.SchemaVersion - 1, RebuildOldSchema, 0}, // fold v1: cells without an outcome
		{store.SchemaVersion + 1, RebuildNewSchema, 1},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			dir := t.TempDir()
			_, nc := testutil.MustStartNATS(t, dir)
			openLog(t, nc)
			testutil.MustPublish(t, nc, testutil.Workload(25)...)
			r := startProjector(t, dir, nc, Config{})
			r.waitReady()
			r.stop()
			path := filepath.Join(dir, "checkpoint.db")
			mutateBolt(t, path, func(tx *bolt.Tx) error {
				b := make([]byte, 8)
				b[7] = byte(tc.schema)
				return tx.Bucket([]byte("meta")).Put([]byte("schema"), b)
			})
			r = startProjector(t, dir, nc, Config{})
			r.waitReady()
			if b := r.p.BootInfo(); !strings.HasPrefix(b.Rebuild, tc.reason) || b.Replayed != 25 {
				t.Fatalf("BootInfo() = %+v, want rebuild %s", b, tc.reason)
			}
			r.assertEqualsFold()
			if m, _ := filepath.Glob(path + ".bad-*"); len(m) != tc.aside {
				t.Fatalf("files kept aside: %v, want %d", m, tc.aside)
			}
		})
	}
}

func mutateBolt(t *testing.T, path string, fn func(*bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}
