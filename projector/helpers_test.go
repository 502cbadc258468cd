package projector

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"cellos-allinone/eventlog"
	"cellos-allinone/projection"
	"cellos-allinone/store"
	"cellos-allinone/testutil"
)

// rig is a projector over a real embedded JetStream and a real bbolt file.
type rig struct {
	t      *testing.T
	dir    string
	nc     *nats.Conn
	log    *eventlog.Stream
	st     *store.Store
	p      *Projector
	cancel context.CancelFunc
	done   chan error
}

func openLog(t *testing.T, nc *nats.Conn) *eventlog.Stream {
	t.Helper()
	l, err := eventlog.Open(testutil.Ctx(t, 10*time.Second), nc, eventlog.Config{Logger: testutil.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// startNATS starts an embedded JetStream server storing in a fresh data
// dir, opens the event log on it, and stores the first n events of a
// workload.
func startNATS(t *testing.T, n int) (dir string, nc *nats.Conn, l *eventlog.Stream) {
	t.Helper()
	dir = t.TempDir()
	_, nc = testutil.MustStartNATS(t, dir)
	l = openLog(t, nc)
	testutil.MustPublish(t, nc, testutil.Workload(n)...)
	return dir, nc, l
}

// startProjector opens the checkpoint in dir, runs a projector over nc
// until stop or the end of the test, and waits until its boot is done.
func startProjector(t *testing.T, dir string, nc *nats.Conn, cfg Config) *rig {
	t.Helper()
	r := launchProjector(t, dir, nc, cfg)
	r.waitReady()
	return r
}

// launchProjector is startProjector without the wait for the boot.
func launchProjector(t *testing.T, dir string, nc *nats.Conn, cfg Config) *rig {
	t.Helper()
	st, aside, err := store.Open(filepath.Join(dir, "checkpoint.db"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.StoreAside = aside
	return runProjector(t, dir, nc, st, cfg)
}

// checkpointAtEnd runs a projector over the stream until its boot is done
// and stops it: its final checkpoint is at the stream's last sequence.
func checkpointAtEnd(t *testing.T, dir string, nc *nats.Conn) {
	t.Helper()
	startProjector(t, dir, nc, Config{}).stop()
}

// runProjector runs a projector over nc with the checkpoint store st.
func runProjector(t *testing.T, dir string, nc *nats.Conn, st *store.Store, cfg Config) *rig {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testutil.Logger()
	}
	r := &rig{t: t, dir: dir, nc: nc, log: openLog(t, nc), st: st, done: make(chan error, 1)}
	r.p = New(r.log, st, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		r.log.Watch(ctx)
	}()
	go func() {
		err := r.p.Run(ctx)
		<-watched
		r.done <- err
	}()
	t.Cleanup(func() { r.stop() })
	return r
}

// stop ends Run (final checkpoint) and closes the checkpoint file.
func (r *rig) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil && !errors.Is(err, context.Canceled) {
			r.t.Errorf("Run() = %v", err)
		}
	case <-time.After(20 * time.Second):
		r.t.Fatal("projector did not stop within 20s")
	}
	r.st.Close()
}

// crash stops the projector without its final checkpoint: the checkpoint
// file is closed first, so whatever Run tries to write at the end fails.
func (r *rig) crash() {
	r.st.Close()
	r.cancel()
	r.cancel = nil
	select {
	case <-r.done:
	case <-time.After(20 * time.Second):
		r.t.Fatal("projector did not stop within 20s")
	}
}

func (r *rig) waitReady() {
	r.t.Helper()
	if err := r.p.WaitReady(testutil.Ctx(r.t, 30*time.Second)); err != nil {
		r.t.Fatalf("projector not ready: %v", err)
	}
}

// waitCursor waits until the projection's cursor reaches seq.
func (r *rig) waitCursor(seq uint64) {
	r.t.Helper()
	testutil.WaitFor(r.t, 30*time.Second, fmt.Sprintf("the projection's cursor to reach %d", seq), func() bool {
		var c uint64
		r.p.Read(func(p View) { c = p.Cursor() })
		return c >= seq
	})
}

// waitApplied waits until the fold has applied seq, committed or not.
func (r *rig) waitApplied(seq uint64) {
	r.t.Helper()
	testutil.WaitFor(r.t, 30*time.Second, fmt.Sprintf("the fold to apply %d", seq), func() bool {
		return r.p.lastSeen.Load() >= seq
	})
}

func (r *rig) dump() string {
	var d string
	r.p.Read(func(p View) { d = string(p.Dump()) })
	return d
}

// foldStream folds every message the stream holds now into a fresh
// projection: the reference the projector must equal.
func foldStream(t *testing.T, l *eventlog.Stream) *projection.Projection {
	t.Helper()
	p, err := FoldLog(testutil.Ctx(t, 60*time.Second), l, math.MaxUint64)
	if err != nil {
		t.Fatalf("fold of the stream: %v", err)
	}
	return p
}

var errStop = errors.New("stop")

// assertEqualsFold fails unless the projector serves exactly a fold of the
// whole retained stream, compared at the cursor it serves (a publish that
// was cancelled while awaiting its ack may still land after the fold).
func (r *rig) assertEqualsFold() {
	r.t.Helper()
	want := foldStream(r.t, r.log)
	r.waitCursor(want.Cursor())
	if cur := r.cursor(); cur > want.Cursor() {
		var err error
		if want, err = FoldLog(testutil.Ctx(r.t, 60*time.Second), r.log, cur); err != nil {
			r.t.Fatal(err)
		}
	}
	r.assertEquals(want, "a fold of the stream")
}

func (r *rig) cursor() uint64 {
	var c uint64
	if err := r.p.Read(func(v View) { c = v.Cursor() }); err != nil {
		r.t.Fatal(err)
	}
	return c
}

// assertEquals fails unless the projector, once at want's cursor, serves
// exactly want (what says what it is).
func (r *rig) assertEquals(want *projection.Projection, what string) {
	r.t.Helper()
	r.waitCursor(want.Cursor())
	var got projection.Entities
	var dump string
	var cursor uint64
	var counters projection.Counters
	err := r.p.Read(func(v View) {
		cursor, dump, counters = v.Cursor(), string(v.Dump()), v.Counters()
		got = v.Reader.(*store.View).Entities()
	})
	if err != nil {
		r.t.Fatal(err)
	}
	if dump != string(want.Dump()) {
		r.t.Fatalf("projection at cursor %d differs from %s (cursor %d):\n%s", cursor, what, want.Cursor(),
			strings.Join(projection.DiffEntities(want.Entities(), got, 5), "\n"))
	}
	if cursor == want.Cursor() && !counters.Equal(want.Counters()) {
		r.t.Fatalf("counters at cursor %d = %+v, want those of %s: %+v", cursor, counters, what, want.Counters())
	}
	// The state hash of the served state, as /v1/status?hash=1 computes
	// it, is the reference's at that cursor.
	served, err := r.p.HashState(testutil.Ctx(r.t, 30*time.Second))
	if err != nil {
		r.t.Fatalf("HashState: %v", err)
	}
	if served.Cursor == want.Cursor() {
		if h, _ := projection.Hash(want); served.StateHash != h {
			r.t.Fatalf("state hash at cursor %d = %+v, want that of %s: %+v", cursor, served.StateHash, what, h)
		}
	}
}
