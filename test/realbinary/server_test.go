package realbinary_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"cellos-allinone/testutil"
)

// server is one `cellos-allinone serve` child process.
type server struct {
	cmd     *exec.Cmd
	hc      *http.Client // httpc, or one that trusts the server's certificate
	HTTP    string       // http://127.0.0.1:port (https:// with TLS)
	NATS    string       // nats://127.0.0.1:port
	logPath string
	exited  chan struct{} // closed once the process has exited and been reaped
	// adminToken is sent to /v1/status when the server runs with an auth
	// file.
	adminToken string
}

var (
	errPortTaken = errors.New("a port picked as free was taken")
	httpc        = &http.Client{Timeout: 5 * time.Second}
)

// startServer runs serve on dataDir with free loopback ports, its output
// in <logDir>/<name>.log, and waits until it is ready. A port taken
// between picking and binding means another try with new ports. The
// process is killed by PID when the test ends, whatever happened.
func startServer(t *testing.T, bin, dataDir, logDir, name string, args ...string) *server {
	t.Helper()
	return startServerWith(t, nil, bin, dataDir, logDir, name, args...)
}

// startServerWith is startServer for a server with --tls-cert: its API is
// reached over HTTPS trusting roots.
func startServerWith(t *testing.T, roots *x509.CertPool, bin, dataDir, logDir, name string, args ...string) *server {
	t.Helper()
	for attempt := 1; ; attempt++ {
		logPath := filepath.Join(logDir, fmt.Sprintf("%s.log", name))
		if attempt > 1 {
			logPath = filepath.Join(logDir, fmt.Sprintf("%s-try%d.log", name, attempt))
		}
		s, err := launch(t, bin, dataDir, logPath, args)
		if err == nil && roots != nil {
			s.HTTP = "https://" + strings.TrimPrefix(s.HTTP, "http://")
			s.hc = &http.Client{Timeout: httpc.Timeout, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
		}
		if err == nil {
			if err = s.waitReady(90 * time.Second); err != nil {
				s.kill(t)
			}
		}
		if err == nil {
			return s
		}
		if errors.Is(err, errPortTaken) && attempt < 5 {
			t.Logf("%s: %v; trying again with other ports", name, err)
			continue
		}
		tail := ""
		if s != nil {
			tail = s.logTail()
		}
		t.Fatalf("start %s: %v\n%s", name, err, tail)
	}
}

func launch(t *testing.T, bin, dataDir, logPath string, args []string) (*server, error) {
	httpAddr, natsAddr := freeAddr(t), freeAddr(t)
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	argv := append([]string{"serve", "--data-dir", dataDir, "--http-addr", httpAddr, "--nats-addr", natsAddr}, args...)
	cmd := exec.Command(bin, argv...)
	cmd.Env = childEnv()
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	s := &server{cmd: cmd, hc: httpc, HTTP: "http://" + httpAddr, NATS: "nats://" + natsAddr, logPath: logPath, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(s.exited)
	}()
	t.Cleanup(func() { s.kill(t) })
	return s, nil
}

// freeAddr picks a free loopback port by binding :0 and closing.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// childEnv is this process's environment without CELLOS_* variables,
// which the binary would read as flags.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CELLOS_") {
			env = append(env, kv)
		}
	}
	return env
}

func (s *server) running() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// waitReady polls /readyz until 200, the process exits or d passes.
func (s *server) waitReady(d time.Duration) error {
	ready := false
	if !testutil.Poll(d, 20*time.Millisecond, func() bool {
		if !s.running() {
			return true
		}
		if resp, err := s.hc.Get(s.HTTP + "/readyz"); err == nil {
			resp.Body.Close()
			ready = resp.StatusCode == http.StatusOK
		}
		return ready
	}) {
		return fmt.Errorf("not ready within %s", d)
	}
	switch {
	case ready:
		return nil
	case strings.Contains(s.logTail(), "address already in use"):
		return errPortTaken
	}
	return fmt.Errorf("exited before it was ready: %v", s.cmd.ProcessState)
}

// kill sends SIGKILL to the process (by PID) unless it has exited, and
// waits until it is reaped.
func (s *server) kill(t *testing.T) {
	if s.running() {
		_ = s.cmd.Process.Kill()
	}
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		t.Errorf("pid %d not gone 10s after SIGKILL", s.cmd.Process.Pid)
	}
}

// terminate sends SIGTERM and returns the exit code and how long the
// process took to exit; it fails the test if that is more than within.
func (s *server) terminate(t *testing.T, within time.Duration) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM pid %d: %v", s.cmd.Process.Pid, err)
	}
	select {
	case <-s.exited:
		return s.cmd.ProcessState.ExitCode(), time.Since(start)
	case <-time.After(within):
		t.Fatalf("pid %d still running %s after SIGTERM\n%s", s.cmd.Process.Pid, within, s.logTail())
		return -1, 0
	}
}

// logTail is the end of the process's output, for failure messages.
func (s *server) logTail() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return fmt.Sprintf("--- %s (end) ---\n%s", filepath.Base(s.logPath), b)
}

func (s *server) connect(t *testing.T) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.NATS, nats.Name("crashloop test"), nats.Timeout(5*time.Second),
		// Once the server is gone, a publish fails at once instead of
		// waiting in the reconnect buffer for an ack that cannot come.
		nats.ReconnectBufSize(-1),
		// Write errors after the server was killed are expected: the
		// publishes they concern fail and are not counted as acked.
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatalf("connect to %s: %v", s.NATS, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// status is the part of GET /v1/status the tests look at.
type status struct {
	Ready  bool   `json:"ready"`
	Cursor uint64 `json:"cursor"`
	Epoch  string `json:"epoch"`
	Lag    uint64 `json:"lag"`
	Stream struct {
		FirstSeq uint64 `json:"firstSeq"`
		LastSeq  uint64 `json:"lastSeq"`
	} `json:"stream"`
	Boot struct {
		CheckpointCursor uint64 `json:"checkpointCursor"`
		ReplayFrom       uint64 `json:"replayFrom"`
		ReplayTo         uint64 `json:"replayTo"`
		Replayed         uint64 `json:"replayed"`
		DurationMs       int64  `json:"durationMs"`
		Rebuild          string `json:"rebuild"`
	} `json:"boot"`
	Checkpoint struct {
		Cursor uint64     `json:"cursor"`
		At     *time.Time `json:"at"`
	} `json:"checkpoint"`
	Events struct {
		Applied   uint64 `json:"applied"`
		Ignored   uint64 `json:"ignored"`
		Malformed uint64 `json:"malformed"`
		Rejected  uint64 `json:"rejected"`
	} `json:"events"`
	Gaps []json.RawMessage `json:"gaps"`
}

func (s *server) status() (status, error) {
	var st status
	req, err := http.NewRequest(http.MethodGet, s.HTTP+"/v1/status", nil)
	if err != nil {
		return st, err
	}
	if s.adminToken != "" {
		req.Header.Set("Authorization", "Bearer "+s.adminToken)
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /v1/status: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// waitQuiet polls /v1/status until the projection has applied the whole
// stream (cursor = stream last sequence, lag 0). Call it only when nobody
// publishes.
func (s *server) waitQuiet(t *testing.T, d time.Duration) status {
	t.Helper()
	var (
		st  status
		err error
	)
	if !testutil.Poll(d, 20*time.Millisecond, func() bool {
		st, err = s.status()
		return err == nil && st.Ready && st.Cursor == st.Stream.LastSeq && st.Lag == 0
	}) {
		t.Fatalf("status not quiet within %s: %+v (err %v)\n%s", d, st, err, s.logTail())
	}
	return st
}

// tool runs a one-shot subcommand of the binary, bounded by d, and returns
// its exit code and combined output.
func tool(t *testing.T, bin string, d time.Duration, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = childEnv()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String()
	case errors.As(err, &ee) && ctx.Err() == nil:
		return ee.ExitCode(), out.String()
	}
	t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out.String())
	return -1, ""
}
