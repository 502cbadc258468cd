package realbinary_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"cellos-allinone/testutil"
)

// nobody is the unprivileged user the server runs as when the test is root.
const nobody = 65534

// A checkpoint.db created once under sudo (owned by root, mode 0600) in a
// data dir the server owns: the server must stop with an error naming the
// file and the cause — not move it aside and replay the whole log.
func TestCheckpointOwnedByAnotherUserStopsTheServer(t *testing.T) {
	requireLong(t)
	bin := binary(t)
	root, err := os.MkdirTemp("", "cellos-perm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	dataDir := filepath.Join(root, "data")
	if err := os.Mkdir(dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	asRoot := os.Geteuid() == 0
	if asRoot {
		// The server runs as nobody: it must reach its binary and own its
		// data dir, like a service user.
		for _, d := range []string{root, filepath.Dir(bin)} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chown(dataDir, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	// A first run creates the data dir's files as the service user.
	if code, out := runServe(t, bin, dataDir, asRoot, 30*time.Second, "--checkpoint-interval", "100ms"); code != 0 {
		t.Fatalf("first run: exit %d\n%s", code, out)
	}
	cp := filepath.Join(dataDir, "checkpoint.db")
	before, err := os.ReadFile(cp)
	if err != nil {
		t.Fatal(err)
	}
	// "sudo touched it": root owns it now, 0600.
	if asRoot {
		err = os.Chown(cp, 0, 0)
	} else {
		err = os.Chmod(cp, 0)
	}
	if err != nil {
		t.Fatal(err)
	}

	code, out := runServe(t, bin, dataDir, asRoot, 30*time.Second)
	if code == 0 || !strings.Contains(out, cp) || !strings.Contains(out, "permission denied") {
		t.Fatalf("serve with a checkpoint it may not open: exit %d, want non-zero with %s and \"permission denied\" in the output\n%s", code, cp, out)
	}
	t.Logf("exit %d: %s", code, strings.TrimSpace(out))
	entries, _ := os.ReadDir(dataDir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".bad-") {
			t.Errorf("the checkpoint was moved aside as %s", e.Name())
		}
	}
	if !asRoot {
		_ = os.Chmod(cp, 0o600)
	}
	if after, err := os.ReadFile(cp); err != nil || !bytes.Equal(after, before) {
		t.Errorf("checkpoint.db changed or is gone (err %v)", err)
	}
}

// runServe runs serve on dataDir (as nobody when asNobody) until it exits
// or is ready; a ready server gets SIGTERM. It returns the exit code and
// the output.
func runServe(t *testing.T, bin, dataDir string, asNobody bool, d time.Duration, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	httpAddr := freeAddr(t)
	argv := append([]string{"serve", "--data-dir", dataDir, "--http-addr", httpAddr, "--nats-addr", freeAddr(t)}, args...)
	cmd := exec.CommandContext(ctx, bin, argv...)
	cmd.Env = childEnv()
	if asNobody {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	}
	var out testutil.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	ready := func() bool {
		resp, err := httpc.Get("http://" + httpAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}
	for {
		select {
		case <-exited:
			return cmd.ProcessState.ExitCode(), out.String()
		case <-time.After(20 * time.Millisecond): // polling readiness
		}
		if ready() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			<-exited
			return cmd.ProcessState.ExitCode(), out.String()
		}
	}
}
