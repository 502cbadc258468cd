//go:build linux

package embed_test

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	natsembed "cellos-allinone/embed"
	"cellos-allinone/test/lazyfs"
	"cellos-allinone/testutil"
)

// powerCutRun starts a server with SyncAlways on a lazyfs mount of backing,
// creates stream S (a small MaxBytes, so that its blocks are 32 kB and
// roll over every ~60 messages), calls SyncStream if sync, publishes n
// messages synchronously, cuts the power with the server still running,
// and then reports how many of the n acknowledged messages a server
// started on what survived still holds, and the stream's creation time
// before and after.
func powerCutRun(t *testing.T, sync func(srv *natsembed.Server, dir string), settle func(srv *natsembed.Server, dir string), n int) (kept, blocks int, createdBefore, createdAfter time.Time) {
	t.Helper()
	backing := t.TempDir()
	ctx := testutil.Ctx(t, 30*time.Second)
	m := lazyfs.Mount(t, backing)
	func() {
		srv, err := natsembed.Start(natsembed.Options{DataDir: m.Dir(), Addr: "127.0.0.1:0", SyncAlways: true})
		if err != nil {
			t.Fatal(err)
		}
		// Shutdown after the cut: the server's files then fail, as after
		// a power cut; the process just goes on.
		defer srv.Shutdown()
		nc, err := srv.Connect()
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, Storage: jetstream.FileStorage, MaxBytes: 120_000})
		if err != nil {
			t.Fatal(err)
		}
		createdBefore = s.CachedInfo().Created
		sync(srv, m.Dir())
		payload := []byte(strings.Repeat("x", 400))
		for i := range n {
			if _, err := js.Publish(ctx, fmt.Sprintf("s.%d", i), payload); err != nil {
				t.Fatal(err)
			}
		}
		settle(srv, m.Dir())
		if _, err := m.Cut(lazyfs.Whole, nil); err != nil {
			t.Fatal(err)
		}
	}()

	blocks = len(msgBlocks(t, backing))
	// Reading what survived: no SyncAlways needed.
	srv, nc := testutil.MustStartNATS(t, backing)
	defer srv.Shutdown()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, "S")
	if err != nil {
		return 0, blocks, createdBefore, time.Time{} // the stream itself was lost
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return int(info.State.Msgs), blocks, createdBefore, info.Created
}

// msgBlocks lists stream S's message blocks under the data dir dir.
func msgBlocks(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "jetstream", "*", "streams", "S", "msgs", "*.blk"))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// syncTree fsyncs every file and directory under dir: what SyncStream
// does at the creation, without its watch of new blocks.
func syncTree(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Sync()
	})
	if err != nil {
		t.Fatal(err)
	}
}

// With SyncStream, a power cut loses neither the stream nor any message
// acknowledged under SyncAlways, although the messages span several
// blocks whose names nats-server itself never fsyncs.
func TestSyncStreamSurvivesAPowerCut(t *testing.T) {
	const n = 200 // ~90 KB: three blocks of 32 kB, below MaxBytes
	var before0 int
	kept, blocks, before, after := powerCutRun(t, func(srv *natsembed.Server, dir string) {
		if err := srv.SyncStream("S"); err != nil {
			t.Fatal(err)
		}
		before0 = len(msgBlocks(t, dir))
	}, func(srv *natsembed.Server, dir string) {
		// The watch fsyncs the directory just after a block appears,
		// while nats-server already acknowledges messages in it: a cut
		// in between still loses them (docs/durability.md). Here the cut
		// comes once the watch has caught up.
		created := uint64(len(msgBlocks(t, dir)) - before0)
		testutil.WaitFor(t, 10*time.Second, fmt.Sprintf("the watch to fsync the names of %d new blocks", created),
			func() bool { return srv.BlocksSynced("S") >= created })
	}, n)
	if blocks < 3 {
		t.Fatalf("%d message blocks after the cut, want several: the test no longer rolls blocks over", blocks)
	}
	if !after.Equal(before) {
		t.Fatalf("after the cut the stream was created %v, before it %v: the stream's creation was lost", after, before)
	}
	if kept != n {
		t.Fatalf("after the cut the stream holds %d of %d acknowledged messages", kept, n)
	}
}

// What SyncStream is for: without it nats-server v2.15 loses, with
// SyncAlways, the stream itself (its directory's name is never fsynced)
// and, once that is synced, every block created after (a new block's name
// is never fsynced either). When one of these starts keeping everything,
// nats-server has fixed it: revisit SyncStream and docs/durability.md.
func TestWithoutSyncStreamAPowerCutLoses(t *testing.T) {
	const n = 200
	t.Run("the stream", func(t *testing.T) {
		kept, _, before, after := powerCutRun(t, func(*natsembed.Server, string) {}, func(*natsembed.Server, string) {}, n)
		t.Logf("%d of %d acknowledged messages kept; stream created %v, after the cut %v", kept, n, before, after)
		if after.Equal(before) {
			t.Errorf("the stream survived the cut without SyncStream")
		}
	})
	t.Run("new blocks", func(t *testing.T) {
		kept, blocks, before, after := powerCutRun(t, func(_ *natsembed.Server, dir string) { syncTree(t, dir) }, func(*natsembed.Server, string) {}, n)
		t.Logf("%d of %d acknowledged messages kept in %d block(s); stream created %v, after the cut %v", kept, n, blocks, before, after)
		if !after.Equal(before) {
			t.Fatalf("the stream's creation was lost although every file and directory was fsynced after it")
		}
		if kept == n {
			t.Errorf("all %d messages survived without the watch of new blocks", n)
		}
	})
}
