package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// server is one `cellos-allinone serve` child process, reached only
// through its flags, ports, HTTP API and files.
type server struct {
	bin, dataDir, logPath string
	HTTP                  string // http://127.0.0.1:port
	NATS                  string // nats://127.0.0.1:port
	natsAddr              string
	cmd                   *exec.Cmd
	started               time.Time
	exited                chan struct{}
}

// children are the processes this command started, so that an
// interrupted run ends them (by PID) on its way out.
var children sync.Map // *server → struct{}

var httpc = &http.Client{Timeout: 10 * time.Second}

// launch starts bin serve on dataDir with free loopback ports, its output
// appended to logPath, and returns at once.
func launch(bin, dataDir, logPath string, extra []string) (*server, error) {
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	natsAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	args := append([]string{"serve", "--data-dir", dataDir, "--http-addr", httpAddr, "--nats-addr", natsAddr}, extra...)
	fmt.Fprintf(f, "\n=== %s %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Env = childEnv()
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = childAttr()
	s := &server{bin: bin, dataDir: dataDir, logPath: logPath, HTTP: "http://" + httpAddr,
		NATS: "nats://" + natsAddr, natsAddr: natsAddr, cmd: cmd, exited: make(chan struct{})}
	s.started = time.Now()
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	children.Store(s, struct{}{})
	go func() {
		_ = cmd.Wait()
		f.Close()
		children.Delete(s)
		close(s.exited)
	}()
	return s, nil
}

// freeAddr picks a free loopback port by binding :0 and closing.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
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

func (s *server) pid() int { return s.cmd.Process.Pid }

// bootTiming is how long a start took, from the process's start, to each
// sign of life, and its memory when it became ready.
type bootTiming struct {
	Healthz time.Duration `json:"healthz"` // GET /healthz first answered 200
	NATS    time.Duration `json:"nats"`    // the NATS port first sent its INFO
	Ready   time.Duration `json:"ready"`   // GET /readyz first answered 200
	HWMMiB  float64       `json:"hwmMiB"`  // VmHWM right after ready
	RSSMiB  float64       `json:"rssMiB"`  // VmRSS right after ready
}

var errPortTaken = errors.New("a port picked as free was taken")

// watchBoot polls /healthz, the NATS port and /readyz side by side every
// 5 ms until /readyz answers 200, the process exits or timeout passes.
func (s *server) watchBoot(ctx context.Context, timeout time.Duration) (bootTiming, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var bt bootTiming
	var wg sync.WaitGroup
	wg.Go(func() { bt.Healthz = s.pollUntil(ctx, func() bool { return s.get200("/healthz") }) })
	wg.Go(func() { bt.NATS = s.pollUntil(ctx, s.natsAnswers) })
	bt.Ready = s.pollUntil(ctx, func() bool { return s.get200("/readyz") })
	if bt.Ready > 0 {
		bt.HWMMiB, bt.RSSMiB = procMem(s.pid())
	}
	cancel()
	wg.Wait()
	switch {
	case bt.Ready > 0:
		return bt, nil
	case !s.running() && strings.Contains(s.logTail(), "address already in use"):
		return bt, errPortTaken
	case !s.running():
		return bt, fmt.Errorf("exited before it was ready (%v)\n%s", s.cmd.ProcessState, s.logTail())
	}
	return bt, fmt.Errorf("not ready within %s\n%s", timeout, s.logTail())
}

// pollUntil calls ok every 5 ms and returns the time since the start of
// the process when it first said yes; 0 if it never did.
func (s *server) pollUntil(ctx context.Context, ok func() bool) time.Duration {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if ok() {
			return time.Since(s.started)
		}
		if !s.running() {
			return 0
		}
		select {
		case <-ctx.Done():
			return 0
		case <-tick.C:
		}
	}
}

func (s *server) get200(path string) bool {
	resp, err := httpc.Get(s.HTTP + path)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// natsAnswers is true once the NATS port accepts and greets with INFO.
func (s *server) natsAnswers() bool {
	c, err := net.DialTimeout("tcp", s.natsAddr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "INFO ")
}

// start launches bin on dataDir and waits until it is ready; a port taken
// between picking and binding means another try with other ports.
func start(ctx context.Context, bin, dataDir, logPath string, timeout time.Duration, extra ...string) (*server, bootTiming, error) {
	for attempt := 1; ; attempt++ {
		s, err := launch(bin, dataDir, logPath, extra)
		if err != nil {
			return nil, bootTiming{}, err
		}
		bt, err := s.watchBoot(ctx, timeout)
		if err == nil {
			return s, bt, nil
		}
		s.kill()
		if !errors.Is(err, errPortTaken) || attempt == 5 {
			return nil, bt, fmt.Errorf("start %s on %s: %w", filepath.Base(bin), dataDir, err)
		}
	}
}

// kill sends SIGKILL (by PID) unless the process has exited, and waits
// until it is reaped.
func (s *server) kill() {
	if s.running() {
		_ = s.cmd.Process.Kill()
	}
	<-s.exited
}

// stop sends SIGTERM and waits for a clean exit (the final checkpoint is
// written then); after within it kills the process and says so.
func (s *server) stop(within time.Duration) error {
	if !s.running() {
		return fmt.Errorf("pid %d had exited already (%v)", s.pid(), s.cmd.ProcessState)
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		if code := s.cmd.ProcessState.ExitCode(); code != 0 {
			return fmt.Errorf("pid %d exited %d after SIGTERM\n%s", s.pid(), code, s.logTail())
		}
		return nil
	case <-time.After(within):
		s.kill()
		return fmt.Errorf("pid %d still running %s after SIGTERM; killed", s.pid(), within)
	}
}

// killChildren ends every process this command started and that still
// runs, by PID.
func killChildren() {
	children.Range(func(k, _ any) bool {
		k.(*server).kill()
		return true
	})
}

// logTail is the end of the process's output, for error messages.
func (s *server) logTail() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return fmt.Sprintf("--- %s (end) ---\n%s", s.logPath, b)
}

// procMem reads VmHWM (peak resident set) and VmRSS of pid in MiB.
func procMem(pid int) (hwm, rss float64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
		if err != nil {
			continue
		}
		switch name {
		case "VmHWM":
			hwm = kb / 1024
		case "VmRSS":
			rss = kb / 1024
		}
	}
	return hwm, rss
}
