package web_test

// The harness of the browser tests (browser_test.go): Chromium, the whole
// program, a producer that publishes into NATS as a supervisor does, and a
// TCP proxy that can cut the line.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"cellos-allinone/app"
	"cellos-allinone/apptest"
	"cellos-allinone/demo"
	"cellos-allinone/testutil"
)

const chromiumHint = "install Chromium to run them: apt-get install -y chromium (or bash .ci/install-chromium)"

// findChromium finds the browser. Without one the browser tests skip, except
// in CI (CI=true), where a missing browser is a failure.
func findChromium(t *testing.T) string {
	t.Helper()
	names := []string{"chromium", "chromium-browser", "google-chrome-stable", "google-chrome"}
	if p := os.Getenv("CELLOS_CHROMIUM"); p != "" {
		names = []string{p}
	}
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("Chromium not found and CI=true, so the browser tests cannot run; %s", chromiumHint)
	}
	t.Skipf("Chromium not found; skipping the browser tests; %s", chromiumHint)
	return ""
}

// newBrowser starts a headless Chromium with a fresh profile and returns the
// context of its first tab. Uncaught page exceptions and CSP violations
// fail the test.
func newBrowser(t *testing.T, width, height int) context.Context {
	t.Helper()
	path := findChromium(t)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		// This machine's network is closed: without these, Chromium's own
		// background connections are refused and slow it down.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// A background tab must keep its timers: the page's reconnect
		// backoff is what some tests watch.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	)
	ctx, cancel := chromedp.NewContext(actx)
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("start Chromium (%s): %v", path, err)
	}
	var (
		mu         sync.Mutex
		exceptions []string
	)
	msgs := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range msgs {
			if err != nil {
				return
			}
			// Uncaught exceptions, and anything the page's CSP refused
			// (which the browser only logs).
			if m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
				mu.Lock()
				exceptions = append(exceptions, m.String())
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, e := range exceptions {
			t.Errorf("page error (uncaught exception or CSP violation): %s", e)
		}
	})
	return ctx
}

// pageDo runs browser actions; a failure ends the test.
func pageDo(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

// pageEval evaluates a JavaScript expression (promises are awaited).
func pageEval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// pageWait polls a JavaScript predicate until it is truthy or the timeout
// passes; then it reports what the page looked like. A poll cut short by
// a navigation (its JavaScript context went away, or the target navigated:
// signing in reloads the page) starts again in the new page.
func pageWait(t *testing.T, ctx context.Context, what, js string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for left := timeout; left > 0; left = time.Until(deadline) {
		_, err = chromedp.Run(ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingTimeout(left), chromedp.WithPollingInterval(20*time.Millisecond)))
		if err == nil || !(strings.Contains(err.Error(), "context") || strings.Contains(err.Error(), "navigated")) {
			break
		}
	}
	if err != nil {
		state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(window.__cellos && __cellos.state())`))
		conn, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('conn')?.textContent`))
		t.Fatalf("%s: not within %v (%v); page state %s, header %q", what, timeout, err, state, conn)
	}
}

// startProgram runs the program on dir; httpAddr "" picks a free port.
// These tests are about the page, not durability: fsync on an interval
// keeps bulk publishing fast on a busy machine.
func startProgram(t *testing.T, dir, httpAddr string) *apptest.App {
	t.Helper()
	return apptest.Start(t, app.Config{DataDir: dir, HTTPAddr: httpAddr, Sync: app.SyncPolicyInterval})
}

// producer makes CloudEvents of the v1 contract and publishes them into
// the stream as a supervisor does.
type producer struct {
	t *testing.T
	a *apptest.App
	n int
}

func newProducer(t *testing.T, a *apptest.App) *producer {
	return &producer{t: t, a: a}
}

// event builds one CloudEvent of the v1 contract with its subject.
func (p *producer) event(entity, id, phase string, data map[string]any) testutil.Event {
	p.n++
	if data == nil {
		data = map[string]any{}
	}
	data[entity+"Id"] = id
	family := "lifecycle"
	if phase == "summary" {
		family = "compliance"
	}
	b, err := json.Marshal(map[string]any{
		"specversion": "1.0", "id": fmt.Sprintf("t-%d-%d", time.Now().UnixNano(), p.n),
		"source": "/browser-test", "type": fmt.Sprintf("dev.cellos.events.%s.%s.v1.%s", entity, family, phase),
		"time": time.Now().UTC().Format(time.RFC3339Nano), "datacontenttype": "application/json", "data": data,
	})
	if err != nil {
		p.t.Fatal(err)
	}
	return testutil.Event{Subject: fmt.Sprintf("cellos.events.%s.%s.%s", entity, id, phase), Payload: b}
}

// pub publishes one event and returns its stream sequence.
func (p *producer) pub(entity, id, phase string, data map[string]any) uint64 {
	p.t.Helper()
	return p.a.Publish(p.event(entity, id, phase, data))[0]
}

// pubRaw publishes ready-made events and returns the last sequence (0 for
// none).
func (p *producer) pubRaw(events []testutil.Event) uint64 {
	p.t.Helper()
	seqs := p.a.Publish(events...)
	if len(seqs) == 0 {
		return 0
	}
	return seqs[len(seqs)-1]
}

// apiGet reads an API resource of the running program.
func apiGet[T any](t *testing.T, base, path string) T {
	t.Helper()
	var v T
	res, err := http.Get(base + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d", path, res.StatusCode)
	}
	if err := json.NewDecoder(res.Body).Decode(&v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return v
}

type apiCell struct {
	ID       string `json:"id"`
	State    string `json:"state"`
	ExitCode *int   `json:"exitCode"`
	Reason   string `json:"reason"`
}

// serverCells is the server's view of every cell: id → state.
func serverCells(t *testing.T, base string) map[string]string {
	t.Helper()
	out := map[string]string{}
	after := ""
	for {
		page := apiGet[struct {
			Cells []apiCell `json:"cells"`
			Next  string    `json:"next"`
		}](t, base, "/v1/cells?limit=1000&after="+after)
		for _, c := range page.Cells {
			out[c.ID] = c.State
		}
		if page.Next == "" {
			return out
		}
		after = page.Next
	}
}

// pageCellsJS is what the cells table shows: id → state.
const pageCellsJS = `Object.fromEntries([...document.querySelectorAll('table.cells tbody tr')].map(tr => [tr.querySelector('td').textContent, tr.querySelector('.badge').textContent]))`

// waitSettled waits until every read of the page has landed and its
// summary is exact at its cursor (__cellos.settled).
func waitSettled(t *testing.T, ctx context.Context) {
	t.Helper()
	pageWait(t, ctx, "page settled", `__cellos.settled()`, 10*time.Second)
}

// feedSeqs lists the sequences the page has shown in its feed, oldest first.
const feedSeqsJS = `__cellos.log.ring.filter(e => !e.mark).map(e => e.seq)`

// checkFeedGapless asserts that the feed holds each sequence once, in order,
// with none missing between its first and last.
func checkFeedGapless(t *testing.T, seqs []uint64) {
	t.Helper()
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Fatalf("feed sequences %v: after %d comes %d, want %d (no duplicate, no gap)", seqs, seqs[i-1], seqs[i], seqs[i-1]+1)
		}
	}
}

func sameStates(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d cells, server has %d\npage:   %v\nserver: %v", what, len(got), len(want), got, want)
	}
	for id, s := range want {
		if got[id] != s {
			t.Fatalf("%s: cell %s is %q on the page, %q on the server", what, id, got[id], s)
		}
	}
}

// pageScreenshot writes a PNG of the viewport to dir.
func pageScreenshot(t *testing.T, ctx context.Context, dir, name string) string {
	t.Helper()
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func darkMode(on bool) chromedp.Action[chromedp.Void] {
	v := "light"
	if on {
		v = "dark"
	}
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: v}},
		})
		return err
	})
}

// cutProxy forwards TCP to the server and can cut the line: while cut it
// drops every connection, as a network partition does.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]struct{}
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	t.Cleanup(func() {
		ln.Close()
		p.cut()
	})
	go p.serve()
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		go p.pipe(c)
	}
}

func (p *cutProxy) pipe(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[up] = struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		done <- struct{}{}
	}
	go cp(up, c)
	go cp(c, up)
	<-done
	c.Close()
	up.Close()
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *cutProxy) restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// demoEndingNow publishes n events of demo traffic (seed 7, 8 formations)
// whose simulated clock ends now, so that times read "Xs ago", and
// returns the last sequence and the generator, for more of the same.
func (p *producer) demoEndingNow(n int) (uint64, *demo.Generator) {
	p.t.Helper()
	step := 200 * time.Millisecond
	g := demo.New(demo.Options{Seed: 7, Start: time.Now().Add(-time.Duration(n) * step), Step: step, Formations: 8})
	msgs := make([]testutil.Event, 0, n)
	for range n {
		msgs = append(msgs, demoEvent(p.t, g.Next()))
	}
	return p.pubRaw(msgs), g
}
