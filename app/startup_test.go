package app_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cellos-allinone/app"
	"cellos-allinone/apptest"
	"cellos-allinone/testutil"
)

// A checkpoint file the process may not open (created under sudo, a
// read-only mount) is not corruption: the server stops with an error
// naming the file and the cause, and nothing is moved or deleted.
func TestUnreadableCheckpointStopsTheServer(t *testing.T) {
	dir := t.TempDir()
	apptest.Start(t, app.Config{DataDir: dir}).Stop()
	cp := filepath.Join(dir, app.CheckpointFile)
	before, err := os.ReadFile(cp)
	if err != nil {
		t.Fatal(err)
	}
	cause := denyAccess(t, dir, cp)

	a, err := app.Start(context.Background(), app.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", NATSAddr: "127.0.0.1:0"})
	if err == nil {
		a.Close(testutil.Ctx(t, 20*time.Second))
		t.Fatalf("Start with %s = nil error, want it to stop", cause)
	}
	if msg := err.Error(); !strings.Contains(msg, cp) || !strings.Contains(msg, cause) {
		t.Fatalf("Start with %s: error %q, want it to name %s and say %q", cause, msg, cp, cause)
	}
	allowAccess(t, dir, cp)
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".bad-") {
			t.Errorf("%s was moved aside as %s", app.CheckpointFile, e.Name())
		}
	}
	after, err := os.ReadFile(cp)
	if err != nil || string(after) != string(before) {
		t.Fatalf("%s changed (err %v)", cp, err)
	}
}

// denyAccess makes cp unopenable for writing and returns the error text
// the open then fails with: as root (who may open anything) by mounting
// dir read-only, otherwise by taking every permission away.
func denyAccess(t *testing.T, dir, cp string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if err := os.Chmod(cp, 0); err != nil {
			t.Fatal(err)
		}
		return "permission denied"
	}
	for _, args := range [][]string{{"--bind", dir, dir}, {"-o", "remount,bind,ro", dir}} {
		if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
			t.Skipf("cannot mount %s read-only: %v %s", dir, err, out)
		}
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	return "read-only file system"
}

func allowAccess(t *testing.T, dir, cp string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if err := os.Chmod(cp, 0o600); err != nil {
			t.Fatal(err)
		}
		return
	}
	if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
		t.Fatalf("umount %s: %v %s", dir, err, out)
	}
}

// A busy HTTP or NATS port is found before anything with side effects:
// no data dir, no JetStream store, no checkpoint file is created.
func TestBusyPortCreatesNothing(t *testing.T) {
	for _, which := range []string{"http", "nats", "nats-monitor"} {
		t.Run(which, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			dir := filepath.Join(t.TempDir(), "data")
			cfg := app.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", NATSAddr: "127.0.0.1:0"}
			switch which {
			case "http":
				cfg.HTTPAddr = l.Addr().String()
			case "nats":
				cfg.NATSAddr = l.Addr().String()
			default:
				cfg.NATSMonitorAddr = l.Addr().String()
			}
			a, err := app.Start(context.Background(), cfg)
			if err == nil {
				a.Close(testutil.Ctx(t, 20*time.Second))
				t.Fatalf("Start on the busy %s port = nil error", which)
			}
			if !strings.Contains(err.Error(), l.Addr().String()) {
				t.Errorf("error %q does not name the busy address %s", err, l.Addr())
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				entries, _ := os.ReadDir(dir)
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				t.Fatalf("busy %s port: the data dir was created before the bind failed (holds %v)", which, names)
			}
		})
	}
}
