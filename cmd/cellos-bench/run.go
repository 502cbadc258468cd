package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// result is every figure of one binary.
type result struct {
	Bin    binary        `json:"bin"`
	Ingest ingestResult  `json:"ingest"`
	Sizes  []sizePoint   `json:"sizes"`
	Query  queryResult   `json:"query"`
	RYW    rywResult     `json:"readYourWrites"`
	Batch  bool          `json:"batch"` // the server takes /ws/events?batch=1
	Fanout []fanoutPoint `json:"fanout"`
	Web    webResult     `json:"web"`
	Doors  []doorsResult `json:"doors"` // per mode: open, and auth when the binary has it
	Months monthsResult  `json:"months"`
}

// run is one whole run, what the report is made of.
type run struct {
	Command    string          `json:"command"`
	Started    time.Time       `json:"started"`
	Took       time.Duration   `json:"took"`
	Machine    machine         `json:"machine"`
	Quick      bool            `json:"quick"`
	Events     int             `json:"events"`
	AvgPayload float64         `json:"avgPayload"` // bytes of CloudEvent JSON
	Named      [2]int          `json:"named"`      // distinct formation and cell ids in the events
	Ceiling    []ceilingResult `json:"ceiling"`
	Builds     []ingestResult  `json:"builds"` // the smaller streams, built by "now"
	Results    []*result       `json:"results"`
	Load       [2]string       `json:"load"` // 1-minute load average at the start and at the end
	cfg        *config
}

func bench(ctx context.Context, args []string) error {
	cfg, err := parseFlags(args, os.Stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	r := &run{Command: cfg.commandLine(), Started: time.Now(), Machine: thisMachine(), Quick: cfg.quick, Events: cfg.events, cfg: cfg}
	r.Load[0] = loadAverage()

	root, err := moduleRoot()
	if err != nil {
		return err
	}
	if cfg.workDir == "" {
		if cfg.workDir, err = os.MkdirTemp("", "cellos-bench-"); err != nil {
			return err
		}
	}
	if !cfg.keep {
		defer os.RemoveAll(cfg.workDir)
	}
	if cfg.outDir == "" && cfg.quick {
		if cfg.outDir, err = os.MkdirTemp("", "cellos-bench-report-"); err != nil {
			return err
		}
	} else if cfg.outDir == "" {
		cfg.outDir = filepath.Join(root, "docs")
	}
	cfg.say("work dir %s, report to %s", cfg.workDir, cfg.outDir)

	if r.Results, err = binaries(ctx, cfg, root); err != nil {
		return err
	}
	if cfg.monthsOnly {
		var b strings.Builder
		if err := allMonths(ctx, cfg, r.Results); err != nil {
			return err
		}
		r.writeMonths(&b, nil)
		fmt.Print(b.String())
		return nil
	}
	if cfg.rywOnly {
		var b strings.Builder
		if err := rywFresh(ctx, cfg, r.Results); err != nil {
			return err
		}
		r.writeReadYourWrites(&b, nil)
		fmt.Print(b.String())
		return nil
	}
	if cfg.doorsOnly {
		var b strings.Builder
		if err := doors(ctx, cfg, r.Results); err != nil {
			return err
		}
		r.writeDoors(&b)
		fmt.Print(b.String())
		return nil
	}
	cfg.say("generating %d demo events (seed %d)", cfg.events, cfg.seed)
	ds, err := generate(cfg.seed, cfg.events)
	if err != nil {
		return err
	}
	r.AvgPayload, r.Named = ds.avgPayload(), [2]int{ds.formations, ds.cells}
	cfg.say("%d events, %.0f B each on average, naming %d formations and %d cells", ds.len(), r.AvgPayload, ds.formations, ds.cells)

	stores, err := buildAll(ctx, cfg, r, ds)
	if err != nil {
		return err
	}
	ds = nil // what follows makes its own traffic
	runtime.GC()
	for _, st := range stores {
		if err := bootSize(ctx, cfg, r.Results, st, st.events == cfg.events); err != nil {
			return err
		}
	}
	for i, res := range r.Results {
		if err := serving(ctx, cfg, res, filepath.Join(cfg.workDir, fmt.Sprintf("%s-%d", res.Bin.Label, cfg.events)), uint64(i)); err != nil {
			return err
		}
	}
	cfg.say("doors: publish and read live with and without an auth file")
	if err := doors(ctx, cfg, r.Results); err != nil {
		return err
	}
	if err := allMonths(ctx, cfg, r.Results); err != nil {
		return err
	}
	r.Took, r.Load[1] = time.Since(r.Started), loadAverage()
	return r.write()
}

// binaries resolves "before" (if any) and "now", in that order.
func binaries(ctx context.Context, cfg *config, root string) ([]*result, error) {
	binDir := filepath.Join(cfg.workDir, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return nil, err
	}
	var out []*result
	var before binary
	var err error
	switch {
	case cfg.beforeBin != "":
		before, err = givenBinary(cfg.beforeBin)
	case cfg.beforeRef != "":
		cfg.say("building \"before\" from %s", cfg.beforeRef)
		before, err = buildRef(ctx, root, cfg.beforeRef, cfg.workDir, filepath.Join(binDir, "before"))
	}
	if err != nil {
		return nil, err
	}
	if before.Path != "" {
		before.Label = "before"
		before.describe()
		out = append(out, &result{Bin: before})
	}
	var now binary
	if cfg.bin != "" {
		now, err = givenBinary(cfg.bin)
	} else {
		cfg.say("building the binary from the checkout")
		now, err = buildCheckout(ctx, root, filepath.Join(binDir, "now"))
	}
	if err != nil {
		return nil, err
	}
	now.Label = "now"
	now.describe()
	return append(out, &result{Bin: now}), nil
}

// buildAll builds the streams: the smaller sizes with "now", then the
// full size once per binary (the ingest figures; "now"'s is kept as the
// full-size stream), each followed by the bare nats-server's ceiling.
func buildAll(ctx context.Context, cfg *config, r *run, ds *dataset) ([]stored, error) {
	now := r.Results[len(r.Results)-1]
	var stores []stored
	for _, n := range cfg.sizes() {
		if n == cfg.events {
			continue
		}
		dir := filepath.Join(cfg.workDir, fmt.Sprintf("stream-%d", n))
		cfg.say("building the %d-event stream with %s", n, now.Bin.Label)
		ir, err := ingest(ctx, cfg, now.Bin, ds, n, dir)
		if err != nil {
			return nil, err
		}
		r.Builds = append(r.Builds, ir)
		stores = append(stores, stored{dir: dir, events: n, lastPublish: ir.lastPublish, dup: ir.dup})
	}
	for _, res := range r.Results {
		dir := filepath.Join(cfg.workDir, fmt.Sprintf("stream-%d", cfg.events))
		if res != now {
			dir = filepath.Join(cfg.workDir, "ingest-"+res.Bin.Label)
		}
		cfg.say("%-6s ingest of %d events with the projector running", res.Bin.Label, cfg.events)
		ir, err := ingest(ctx, cfg, res.Bin, ds, cfg.events, dir)
		if err != nil {
			return nil, err
		}
		res.Ingest = ir
		cfg.say("%-6s %.0f events/s, lag after the last ack %.2fs, %d formations + %d cells, checkpoint %d B (%.0f B/entity), checkpoint p99 %.1f ms",
			res.Bin.Label, ir.Rate, ir.LagSeconds, ir.Formations, ir.Cells, ir.CheckpointBytes, ir.bytesPerEntity(), ir.CheckpointP99*1000)
		if res == now {
			stores = append(stores, stored{dir: dir, events: cfg.events, lastPublish: ir.lastPublish, dup: ir.dup})
		} else if err := os.RemoveAll(dir); err != nil {
			return nil, err
		}
		cdir := filepath.Join(cfg.workDir, "ceiling")
		cr, err := ceiling(ctx, cfg, ir.streamCfg, ds, cfg.events, cdir)
		if err != nil {
			return nil, err
		}
		if err := os.RemoveAll(cdir); err != nil {
			return nil, err
		}
		r.Ceiling = append(r.Ceiling, cr)
		cfg.say("bare nats-server: %.0f events/s", cr.Rate)
	}
	return stores, nil
}

// serving measures what a running full-size server serves: the web view
// (first, on a quiet server), queries idle and under ingest,
// read-your-writes, then the fan-out.
func serving(ctx context.Context, cfg *config, res *result, dir string, i uint64) error {
	most := 0
	for _, k := range cfg.sockets {
		most = max(most, k)
	}
	s, _, err := start(ctx, res.Bin.Path, dir, cfg.logPath(res.Bin, "serve"), cfg.bootTimeout,
		cfg.serveArgs("--ws-max-sockets", fmt.Sprint(most+64))...)
	if err != nil {
		return err
	}
	defer s.kill()
	cfg.say("%-6s web view", res.Bin.Label)
	if res.Web, err = webView(ctx, cfg, s); err != nil {
		return err
	}
	cfg.say("%-6s web view: first rows after %v ms (server RSS %.0f → %.0f MiB) %s", res.Bin.Label, res.Web.FirstRowsMs, res.Web.RSSBefore, res.Web.RSSPeak, res.Web.Skipped)
	// Seeds of live traffic: far from the data set's, one per binary and use.
	seed := cfg.seed + 1000*(i+1)
	if res.Query, err = queryLatency(ctx, cfg, s, newLive(seed)); err != nil {
		return err
	}
	cfg.say("%-6s queries at %d cells: idle p50 %.1f ms p99 %.1f ms; under %d ev/s p50 %.1f ms p99 %.1f ms", res.Bin.Label, res.Query.Cells,
		res.Query.Idle.P50*1000, res.Query.Idle.P99*1000, res.Query.IngestRate, res.Query.Busy.P50*1000, res.Query.Busy.P99*1000)
	if res.RYW, err = readYourWrites(ctx, cfg, res.Bin, s, newLive(seed+500), i); err != nil {
		return err
	}
	if res.RYW.Skipped != "" {
		cfg.say("%-6s read-your-writes not measured: %s", res.Bin.Label, res.RYW.Skipped)
	}
	if res.Batch, err = batchSupported(ctx, s, nil); err != nil {
		return err
	}
	for j, k := range cfg.sockets {
		p, err := fanout(ctx, cfg, s, k, res.Batch, cfg.figure7(seed+uint64(j)+1))
		if err != nil {
			return err
		}
		res.Fanout = append(res.Fanout, p)
		cfg.say("%-6s fan-out %d sockets × %d ev/s: p50 %.1f ms p99 %.1f ms, %.1f %% delivered, %d frames", res.Bin.Label, k, p.Rate,
			p.Latency.P50*1000, p.Latency.P99*1000, p.Delivered*100, p.Frames)
	}
	return s.stop(cfg.stopTimeout)
}

// write writes the report, its plots and (with --json) the raw figures,
// and prints the report.
func (r *run) write() error {
	cfg := r.cfg
	if err := os.MkdirAll(cfg.outDir, 0o755); err != nil {
		return err
	}
	plots, err := r.plots(cfg.outDir)
	if err != nil {
		return err
	}
	md := r.markdown(plots)
	path := filepath.Join(cfg.outDir, "benchmarks.md")
	if err := os.WriteFile(path, []byte(md), 0o644); err != nil {
		return err
	}
	if cfg.jsonPath != "" {
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(cfg.jsonPath, b, 0o644); err != nil {
			return err
		}
	}
	fmt.Print(md)
	cfg.say("wrote %s and %d plots in %s", path, len(plots), r.Took.Round(time.Second))
	return nil
}

// allMonths runs figure 10 for every binary, one after the other.
func allMonths(ctx context.Context, cfg *config, results []*result) error {
	for i, res := range results {
		cfg.say("%-6s months: %s events into a stream that keeps about %s", res.Bin.Label, count(cfg.monthsEvents), count(cfg.monthsRetained))
		m, err := months(ctx, cfg, res.Bin, cfg.seed+9000*uint64(i+1))
		if err != nil {
			return fmt.Errorf("months, %s: %w", res.Bin.Label, err)
		}
		res.Months = m
	}
	return nil
}
