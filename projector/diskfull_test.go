package projector

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cellos-allinone/store"
	"cellos-allinone/testutil"
)

// mountSmallTmpfs mounts a tmpfs of size bytes on a fresh directory: a
// real full disk for the checkpoint file only (JetStream stays elsewhere).
func mountSmallTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// TestFullDiskWhileCheckpointing mounts a tmpfs on the host, which a test
// run should not do unasked: it runs only with CELLOS_FULLDISK=1 or in CI.
func TestFullDiskWhileCheckpointing(t *testing.T) {
	if os.Getenv("CELLOS_FULLDISK") != "1" && os.Getenv("CI") != "true" {
		t.Skip("mounts a tmpfs on this host (as root): run with CELLOS_FULLDISK=1 (CI=true runs it too)")
	}
	cpDir := mountSmallTmpfs(t, "256k")
	dir, nc, _ := startNATS(t, 0)
	st, _, err := store.Open(filepath.Join(cpDir, "checkpoint.db"))
	if err != nil {
		t.Fatal(err)
	}
	r := runProjector(t, dir, nc, st, Config{CheckpointEvents: 20, CheckpointInterval: 10 * time.Second})
	r.waitReady()

	// A first checkpoint that fits.
	testutil.MustPublish(t, nc, testutil.Workload(40)...)
	r.waitCursor(40)
	if err := r.p.Checkpoint(); err != nil {
		t.Fatalf("first checkpoint: %v", err)
	}

	// Then events with big payloads until the disk is full.
	big := strings.Repeat("x", 4000)
	var events []testutil.Event
	for i := range 200 {
		events = append(events, testutil.Cell(fmt.Sprintf("big-%03d", i), "summary", map[string]any{"blob": big}))
	}
	testutil.MustPublish(t, nc, events...)
	r.waitCursor(240)
	err = r.p.Checkpoint()
	if err == nil {
		t.Fatal("checkpoint of ~800 KB on a 256 KB disk succeeded")
	}
	t.Logf("checkpoint on a full disk: %v", err)
	status, serr := r.p.Status(testutil.Ctx(t, 5*time.Second), "test")
	if serr != nil {
		t.Fatal(serr)
	}
	good := status.Checkpoint.Cursor
	if status.Checkpoint.Failures == 0 || !strings.Contains(status.Checkpoint.LastError, "no space left") || good < 40 || good >= 240 {
		t.Fatalf("status.checkpoint = %+v, want failures, the error, and the cursor of the last good checkpoint", status.Checkpoint)
	}
	// Failed writes are retried per batch of events, not per event.
	if status.Checkpoint.Failures > 200/20+2 {
		t.Fatalf("%d failed checkpoint writes for 200 events at one per 20, want about 10", status.Checkpoint.Failures)
	}
	// The projector keeps projecting.
	testutil.MustPublish(t, nc, testutil.Workload(45)[40:]...)
	r.waitCursor(245)

	// The previous checkpoint is intact: a restart starts from it. (Run's
	// final checkpoint fails too, and says so.)
	r.cancel()
	r.cancel = nil
	if err := <-r.done; err == nil || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("Run() = %v, want the failed final checkpoint", err)
	}
	st.Close()
	st2, aside, err := store.Open(filepath.Join(cpDir, "checkpoint.db"))
	if err != nil || aside != "" {
		t.Fatalf("reopen after full disk: %v (aside %q)", err, aside)
	}
	defer st2.Close()
	cp, found, err := st2.Info()
	if err != nil || !found || cp.Meta.Cursor != good {
		t.Fatalf("checkpoint after full disk = %+v found %v err %v, want the intact one at %d", cp.Meta, found, err, good)
	}
	if err := st2.View(func(v *store.View) error { _ = v.Dump(); return nil }); err != nil {
		t.Fatalf("intact checkpoint does not read: %v", err)
	}
}
