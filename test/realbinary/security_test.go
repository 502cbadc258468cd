package realbinary_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"cellos-allinone/testutil"
)

// secureClient is an HTTPS client of a server whose certificate roots
// signed.
func secureClient(roots *x509.CertPool) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
}

// post sends one event as token and returns the acknowledged sequence (0
// when refused) and the status.
func post(hc *http.Client, base, token string, body []byte) (uint64, int, error) {
	req, err := http.NewRequest(http.MethodPost, base+"/v1/events", bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	var pub struct {
		Seq uint64 `json:"seq"`
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusCreated {
		if err := json.Unmarshal(b, &pub); err != nil {
			return 0, resp.StatusCode, err
		}
	}
	return pub.Seq, resp.StatusCode, nil
}

// reader is one WebSocket of a principal, read in the background.
type reader struct {
	name   string
	frames atomic.Int64
	seqs   []uint64 // every sequence read, in order (guarded by mu)
	mu     sync.Mutex
	closed chan struct{}
	status websocket.StatusCode
	err    error
}

func openReader(t *testing.T, ctx context.Context, hc *http.Client, wsURL, name, token string) *reader {
	t.Helper()
	c, resp, err := websocket.Dial(ctx, wsURL+"?since=0&batch=1", &websocket.DialOptions{
		HTTPClient: hc, HTTPHeader: http.Header{"Authorization": {"Bearer " + token}},
	})
	if err != nil {
		t.Fatalf("%s: dial: %v (%v)", name, err, resp)
	}
	c.SetReadLimit(16 << 20)
	r := &reader{name: name, closed: make(chan struct{})}
	go func() {
		defer close(r.closed)
		defer c.CloseNow()
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				r.status, r.err = websocket.CloseStatus(err), err
				return
			}
			var f struct {
				Type   string `json:"type"`
				Seq    uint64 `json:"seq"`
				Events []struct {
					Seq uint64 `json:"seq"`
				} `json:"events"`
			}
			if err := json.Unmarshal(b, &f); err != nil {
				r.err = err
				return
			}
			r.mu.Lock()
			switch f.Type {
			case "event":
				r.seqs = append(r.seqs, f.Seq)
			case "events":
				for _, e := range f.Events {
					r.seqs = append(r.seqs, e.Seq)
				}
			}
			r.mu.Unlock()
			r.frames.Add(1)
		}
	}()
	return r
}

func (r *reader) last() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.seqs) == 0 {
		return 0
	}
	return r.seqs[len(r.seqs)-1]
}

func (r *reader) open() bool {
	select {
	case <-r.closed:
		return false
	default:
		return true
	}
}

// A reload (SIGHUP) with a changed auth file and a new certificate, while
// publishers post and readers stream over HTTPS: no acknowledged event is
// lost, the socket of the removed principal closes with 4401, no socket of
// an unchanged principal drops, new handshakes see the new certificate,
// the withdrawn and changed tokens stop working and the new one works; a
// broken file keeps the set in force; SIGHUP never ends the process.
func TestReloadUnderLoad(t *testing.T) {
	requireLong(t)
	bin := binary(t)
	dir := t.TempDir()
	authPath, certPath, keyPath := filepath.Join(dir, "auth"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	roots := testutil.WriteCert(t, certPath, keyPath, "first.test")
	testutil.WriteAuthFile(t, authPath, testutil.Site)
	s := startServerWith(t, roots, bin, filepath.Join(dir, "data"), dir, "secure",
		"--auth-file", authPath, "--tls-cert", certPath, "--tls-key", keyPath, "--sync", "interval")
	admin := testutil.SitePrincipal(t, "ops")
	s.adminToken = admin.Token
	hc := secureClient(roots)
	wsURL := "wss://" + strings.TrimPrefix(s.HTTP, "https://") + "/ws/events"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	readers := map[string]*reader{}
	for _, name := range []string{"acme-dash", "globex-dash", "auditor"} {
		readers[name] = openReader(t, ctx, hc, wsURL, name, testutil.SitePrincipal(t, name).Token)
	}

	// Publishers: acme's goes on through the reload; initech's token
	// changes, so its posts start failing with 401 and it stops.
	var (
		mu    sync.Mutex
		acked []uint64
		wg    sync.WaitGroup
	)
	stop := make(chan struct{})
	for _, name := range []string{"acme-sup", "initech-ops", "legacy-sup"} {
		p := testutil.SitePrincipal(t, name)
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				e := testutil.Cell(fmt.Sprintf("%s-c%d", p.Name, i), "admitted", nil)
				seq, status, err := post(hc, s.HTTP, p.Token, e.Payload)
				switch {
				case err != nil:
					t.Errorf("%s: %v", p.Name, err)
					return
				case status == http.StatusUnauthorized && p.Name == "initech-ops":
					return // its token was changed by the reload
				case status != http.StatusCreated:
					t.Errorf("%s: status %d", p.Name, status)
					return
				}
				mu.Lock()
				acked = append(acked, seq)
				mu.Unlock()
			}
		})
	}
	waitFor(t, 20*time.Second, "some events acknowledged", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) > 200
	})

	// The reload: globex-dash removed, initech-ops with a new token, a new
	// principal, a new certificate.
	next := []testutil.Principal{}
	for _, p := range testutil.Site {
		switch p.Name {
		case "globex-dash":
			continue
		case "initech-ops":
			p.Token = "initech-ops-rotated-token"
		}
		next = append(next, p)
	}
	next = append(next, testutil.Principal{Name: "newbie", Token: "newbie-token-5e1", Roles: "reader", Tenant: "acme"})
	testutil.WriteAuthFile(t, authPath, next)
	roots2 := testutil.WriteCert(t, certPath, keyPath, "second.test")
	mu.Lock()
	atReload := len(acked)
	mu.Unlock()
	hup(t, s)
	waitFor(t, 10*time.Second, "the socket of the removed principal closed", func() bool { return !readers["globex-dash"].open() })
	if r := readers["globex-dash"]; r.status != 4401 {
		t.Errorf("globex-dash socket ended with %d (%v), want 4401", r.status, r.err)
	}
	hc2 := secureClient(roots2)
	s.hc = hc2
	waitFor(t, 10*time.Second, "the new certificate served", func() bool {
		resp, err := hc2.Get(s.HTTP + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	for _, tc := range []struct {
		token string
		want  int
	}{
		{testutil.SitePrincipal(t, "globex-dash").Token, http.StatusUnauthorized},
		{testutil.SitePrincipal(t, "initech-ops").Token, http.StatusUnauthorized},
		{"initech-ops-rotated-token", http.StatusOK},
		{"newbie-token-5e1", http.StatusOK},
		{testutil.SitePrincipal(t, "acme-dash").Token, http.StatusOK},
	} {
		if got := getStatus(t, hc2, s.HTTP+"/v1/formations", tc.token); got != tc.want {
			t.Errorf("after the reload, GET /v1/formations with %.12s…: %d, want %d", tc.token, got, tc.want)
		}
	}

	// A broken file is refused; the set in force stays; SIGHUP again and
	// again never ends the process.
	if err := os.WriteFile(authPath, []byte("ops only-two-fields\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		hup(t, s)
	}
	waitFor(t, 10*time.Second, "the refusal logged", func() bool { return strings.Contains(s.logTail(), "auth file not reloaded") })
	if got := getStatus(t, hc2, s.HTTP+"/v1/formations", "newbie-token-5e1"); got != http.StatusOK {
		t.Errorf("after a broken file, the principal in force gets %d, want 200", got)
	}
	if strings.Contains(s.logTail(), "only-two-fields") {
		t.Errorf("the log quotes the broken line's secret")
	}

	waitFor(t, 20*time.Second, "publishing went on after the reload", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) > atReload+500
	})
	close(stop)
	wg.Wait()
	mu.Lock()
	last := uint64(0)
	for _, q := range acked {
		last = max(last, q)
	}
	n := len(acked)
	mu.Unlock()
	st := s.waitQuiet(t, 30*time.Second)
	if st.Stream.LastSeq < last {
		t.Fatalf("stream ends at %d, below the last acknowledged %d", st.Stream.LastSeq, last)
	}
	// The auditor's socket (unchanged, everything) saw every sequence once,
	// in order, across the reload; so did acme's, of its sub-tree.
	au := readers["auditor"]
	waitFor(t, 20*time.Second, "the auditor's socket caught up", func() bool { return au.last() >= st.Stream.LastSeq })
	au.mu.Lock()
	for i, q := range au.seqs {
		if q != uint64(i+1) {
			t.Errorf("auditor's socket: frame %d is #%d, want #%d (gap-free from 1)", i, q, i+1)
			break
		}
	}
	au.mu.Unlock()
	for _, name := range []string{"acme-dash", "auditor"} {
		if r := readers[name]; !r.open() {
			t.Errorf("%s's socket (an unchanged principal) ended: %d %v", name, r.status, r.err)
		}
	}
	if !s.running() {
		t.Fatal("the server is not running after the SIGHUPs")
	}
	t.Logf("reload under load: %d events acknowledged over HTTPS, last #%d; sockets: acme-dash %d, auditor %d frames; globex-dash closed with %d",
		n, last, readers["acme-dash"].frames.Load(), au.frames.Load(), readers["globex-dash"].status)
	if code, _ := s.terminate(t, 20*time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
}

func hup(t *testing.T, s *server) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatalf("SIGHUP pid %d: %v", s.cmd.Process.Pid, err)
	}
}

func getStatus(t *testing.T, hc *http.Client, url, token string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	if !testutil.Poll(d, 10*time.Millisecond, cond) {
		t.Fatalf("not within %s: %s", d, what)
	}
}
