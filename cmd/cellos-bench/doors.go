package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"cellos-allinone/demo"
	"cellos-allinone/event"
)

// doorsResult is figure 9 for one binary in one mode: events published
// through each door of a fresh server, and a live stream read back.
type doorsResult struct {
	Mode     string      `json:"mode"`     // "open" or "auth"
	HTTPRate float64     `json:"httpRate"` // POST /v1/events, acknowledged events/s
	NATSRate float64     `json:"natsRate"` // async JetStream publish, acknowledged events/s
	Live     fanoutPoint `json:"live"`     // sockets reading a live stream
}

// The principals of the auth mode: a tenant publisher and a tenant
// reader, as a site of docs/security.md has them. Their tokens exist only
// in this run's work dir. The traffic is the demo's first tenant's alone
// (its events declare it), in both modes, so that both publish the same
// bytes.
const (
	doorTenant    = "acme"
	doorPublisher = "acme-sup"
	doorReader    = "acme-dash"
)

// doorsMode is one way of running a server: its flags and the credentials
// each door is used with.
type doorsMode struct {
	name      string
	args      []string
	pubToken  string // HTTP bearer token and NATS password of the publisher
	readToken string
}

// doorModes are "open" (no auth file: anonymous on loopback) and, for a
// binary that has --auth-file, "auth": a tenant publisher and a tenant
// reader of an auth file, NATS publishes in the seed's untenanted form
// mapped into the tenant's sub-tree by nats-server.
func doorModes(cfg *config, b binary) ([]doorsMode, error) {
	modes := []doorsMode{{name: "open"}}
	if !hasFlag(b.Path, "auth-file") {
		return modes, nil
	}
	pub, read := randomToken(), randomToken()
	// Each binary's own file: its tokens are its own.
	path := filepath.Join(cfg.workDir, "doors-auth-"+b.Label)
	text := fmt.Sprintf("%s sha256:%s publisher %s\n%s sha256:%s reader %s\n", doorPublisher, digest(pub), doorTenant, doorReader, digest(read), doorTenant)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return nil, err
	}
	// One principal holds every socket of the live stream.
	args := []string{"--auth-file", path, "--ws-max-sockets-per-principal", fmt.Sprint(cfg.doorSockets + 64)}
	return append(modes, doorsMode{name: "auth", args: args, pubToken: pub, readToken: read}), nil
}

// doors measures every door of fresh servers of each binary, one per
// mode, each cfg.reps times — every binary and mode once per repetition,
// interleaved, so that a noisy neighbour hits them alike — and keeps the
// medians in each result's Doors. The traffic of a repetition is the same
// for every binary and mode.
func doors(ctx context.Context, cfg *config, results []*result) error {
	type cell struct {
		res  *result
		mode doorsMode
		runs []doorsResult
	}
	var cells []*cell
	for _, res := range results {
		modes, err := doorModes(cfg, res.Bin)
		if err != nil {
			return err
		}
		for _, m := range modes {
			cells = append(cells, &cell{res: res, mode: m})
		}
	}
	for rep := range cfg.reps {
		for _, c := range cells {
			dir := filepath.Join(cfg.workDir, fmt.Sprintf("doors-%s-%s-%d", c.res.Bin.Label, c.mode.name, rep))
			r, err := doorsOnce(ctx, cfg, c.res.Bin, c.mode, dir, cfg.seed+5000+uint64(100*rep))
			if err != nil {
				return fmt.Errorf("doors, %s %s: %w", c.res.Bin.Label, c.mode.name, err)
			}
			c.runs = append(c.runs, r)
			if err := os.RemoveAll(dir); err != nil {
				return err
			}
		}
	}
	for _, c := range cells {
		d := medianDoors(c.runs)
		c.res.Doors = append(c.res.Doors, d)
		cfg.say("%-6s doors (%s): HTTP %.0f ev/s, NATS %.0f ev/s, live %d sockets × %d ev/s p50 %.1f ms p99 %.1f ms, %.1f %% delivered",
			c.res.Bin.Label, d.Mode, d.HTTPRate, d.NATSRate, d.Live.Sockets, d.Live.Rate,
			d.Live.Latency.P50*1000, d.Live.Latency.P99*1000, d.Live.Delivered*100)
	}
	return nil
}

func doorsOnce(ctx context.Context, cfg *config, b binary, m doorsMode, dir string, seed uint64) (doorsResult, error) {
	r := doorsResult{Mode: m.name}
	s, _, err := start(ctx, b.Path, dir, cfg.logPath(b, "doors-"+m.name), cfg.bootTimeout,
		cfg.serveArgs(append([]string{"--ws-max-sockets", fmt.Sprint(cfg.doorSockets + 64)}, m.args...)...)...)
	if err != nil {
		return r, err
	}
	defer s.kill()
	if r.HTTPRate, err = httpDoor(ctx, cfg, s, m.pubToken, doorLive(seed)); err != nil {
		return r, err
	}
	var natsOpts []nats.Option
	if m.pubToken != "" {
		natsOpts = append(natsOpts, nats.UserInfo(doorPublisher, m.pubToken))
	}
	if r.NATSRate, err = natsDoor(ctx, cfg, s, natsOpts, doorLive(seed+1)); err != nil {
		return r, err
	}
	sp := fanoutSpec{rate: cfg.doorRate, dur: cfg.doorFor, nats: natsOpts}
	if m.readToken != "" {
		sp.header = http.Header{"Authorization": {"Bearer " + m.readToken}}
	}
	batch, err := batchSupported(ctx, s, sp.header)
	if err != nil {
		return r, err
	}
	if r.Live, err = fanout(ctx, cfg, s, cfg.doorSockets, batch, sp.with(doorLive(seed+2))); err != nil {
		return r, err
	}
	return r, s.stop(cfg.stopTimeout)
}

// doorLive is the doors' traffic: the demo's, of its first tenant only.
func doorLive(seed uint64) *live {
	o := trafficOptions(seed)
	o.Tenants = 1
	if demo.TenantNames[0] != doorTenant {
		panic("the demo's first tenant is not " + doorTenant)
	}
	return newLiveOf(o)
}

// httpDoor posts events with cfg.doorClients clients, each one request
// after the other, for cfg.doorFor: acknowledged events/s.
func httpDoor(ctx context.Context, cfg *config, s *server, token string, lv *live) (float64, error) {
	var (
		mu    sync.Mutex
		acked atomic.Int64
		wg    sync.WaitGroup
		first error
	)
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: cfg.doorClients}}
	next := func() ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		for {
			// The demo's mix holds events POST refuses (types outside v1,
			// malformed ones): they reach the log over NATS only.
			m, err := lv.next()
			if _, cerr := event.Check(m.payload); err != nil || cerr == nil {
				return m.payload, err
			}
		}
	}
	start := time.Now()
	deadline := start.Add(cfg.doorFor)
	for range cfg.doorClients {
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				body, err := next()
				if err == nil {
					err = postOne(ctx, hc, s.HTTP, token, body)
				}
				if err != nil {
					mu.Lock()
					first = cmpOr(first, err)
					mu.Unlock()
					return
				}
				acked.Add(1)
			}
		})
	}
	wg.Wait()
	if first != nil {
		return 0, first
	}
	return float64(acked.Load()) / time.Since(start).Seconds(), nil
}

func postOne(ctx context.Context, hc *http.Client, base, token string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/events", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/cloudevents+json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST /v1/events: %s", resp.Status)
	}
	return nil
}

// natsDoor publishes cfg.doorEvents events asynchronously over the NATS
// port with opts' credentials: acknowledged events/s.
func natsDoor(ctx context.Context, cfg *config, s *server, opts []nats.Option, lv *live) (float64, error) {
	nc, js, err := connect(s.NATS, cfg.inflight, opts...)
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	st, err := publish(ctx, js, cfg.doorEvents, 0, func(int) (message, error) { return lv.next() }, nil)
	if err != nil {
		return 0, err
	}
	return st.rate, nil
}

func medianDoors(rs []doorsResult) doorsResult {
	med := func(get func(doorsResult) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = get(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	out := rs[0]
	out.HTTPRate = med(func(r doorsResult) float64 { return r.HTTPRate })
	out.NATSRate = med(func(r doorsResult) float64 { return r.NATSRate })
	// The live figures of the repetition with the median p99, whole.
	byP99 := slices.Clone(rs)
	slices.SortFunc(byP99, func(a, b doorsResult) int { return cmpFloat(a.Live.Latency.P99, b.Live.Latency.P99) })
	out.Live = byP99[len(byP99)/2].Live
	return out
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func randomToken() string {
	var b [24]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// hasFlag reports whether the binary's serve command knows --name (a
// "before" built before the flag existed does not): its usage lists
// "-name".
func hasFlag(bin, name string) bool {
	out, _ := exec.Command(bin, "serve", "--help").CombinedOutput()
	return bytes.Contains(out, []byte("-"+name+" "))
}

func digest(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
