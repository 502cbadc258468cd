package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// config is a run's settings, from the flags.
type config struct {
	events     int
	quick      bool
	bin        string
	beforeBin  string
	beforeRef  string
	outDir     string
	workDir    string
	keep       bool
	jsonPath   string
	reps       int
	sockets    []int
	fanoutRate int
	// Figure 9, the doors: clients posting at once, events published over
	// NATS, sockets and rate of the live stream, and how long each runs.
	doorClients, doorEvents, doorSockets, doorRate int
	doorFor                                        time.Duration
	doorsOnly                                      bool
	// Figure 10, months: events published, events the stream keeps, and
	// in how many steps; --months-only runs it alone.
	monthsEvents, monthsRetained, monthsSteps int
	monthsOnly                                bool
	// Figure 11, read-your-writes: the ingest rates it is measured under
	// (0: none), and how long at each; --ryw-only runs it alone.
	rywRates  []int
	rywFor    time.Duration
	rywOnly   bool
	queryRate int
	inflight  int
	seed      uint64
	chromium  string
	waitDup   bool

	fanoutFor, queryDur, syncInterval, timeout, webTimeout time.Duration
	bootTimeout, stopTimeout, loadTimeout                  time.Duration

	args []string  // as given, for the report
	log  io.Writer // progress lines
}

const usageText = `Usage: cellos-bench [flags]

Measures the cellos-allinone binary as a black box (flags, ports, HTTP,
NATS, files) on demo traffic: boot from a checkpoint and after SIGKILL,
peak memory, full rebuild against the raw read rate, publish rate against
a bare nats-server, projector lag, checkpoint size and transaction time,
query latency and read-your-writes (a write read back with min_seq)
under ingest, WebSocket fan-out and the web view. It prints the report
and writes it to <out-dir>/benchmarks.md with its plots.

Examples:
  go run ./cmd/cellos-bench                          # 1,000,000 events into docs/
  go run ./cmd/cellos-bench --quick                  # 20,000 events, short loads, a temporary out dir
  go run ./cmd/cellos-bench --before-ref main        # "before" built from main, side by side

Flags:
`

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{args: args, log: stderr}
	fs := flag.NewFlagSet("cellos-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usageText); fs.PrintDefaults() }
	fs.IntVar(&c.events, "events", 1_000_000, "events in the stream (the largest size; the boot plots also use 10 % and 30 % of it)")
	fs.BoolVar(&c.quick, "quick", false, "a short run that proves the command works: 20,000 events, short loads, small socket counts, out dir a temporary directory")
	fs.StringVar(&c.bin, "bin", "", "the cellos-allinone binary to measure (\"now\"); default: built from this checkout")
	fs.StringVar(&c.beforeBin, "before-bin", "", "a second binary measured side by side as \"before\"")
	fs.StringVar(&c.beforeRef, "before-ref", "", "build \"before\" from this git ref of the repository (instead of --before-bin)")
	fs.StringVar(&c.outDir, "out-dir", "", "where benchmarks.md and the plots go (default: docs/ of the repository; with --quick a new temporary directory)")
	fs.StringVar(&c.workDir, "work-dir", "", "scratch space for data dirs and logs (default: a new temporary directory, removed at the end)")
	fs.BoolVar(&c.keep, "keep", false, "keep the work dir (data dirs and server logs)")
	fs.StringVar(&c.jsonPath, "json", "", "also write every raw figure to this JSON file")
	fs.IntVar(&c.reps, "reps", 3, "repetitions of each boot and of the web view (medians are reported)")
	sockets := fs.String("sockets", "100,300,1000", "WebSocket counts of the fan-out")
	fs.IntVar(&c.fanoutRate, "fanout-rate", 100, "events/s published during the fan-out")
	fs.DurationVar(&c.fanoutFor, "fanout-duration", 10*time.Second, "publish time of each fan-out point")
	fs.IntVar(&c.queryRate, "query-ingest-rate", 5000, "events/s published while the query latency is measured")
	fs.IntVar(&c.doorClients, "door-clients", 8, "doors: HTTP clients posting at once, each one request after the other")
	fs.IntVar(&c.doorEvents, "door-events", 50_000, "doors: events published over NATS")
	fs.IntVar(&c.doorSockets, "door-sockets", 100, "doors: sockets reading the live stream")
	fs.IntVar(&c.doorRate, "door-rate", 500, "doors: events/s of the live stream")
	fs.DurationVar(&c.doorFor, "door-duration", 5*time.Second, "doors: how long the HTTP clients post, and the live stream runs")
	fs.IntVar(&c.monthsEvents, "months-events", 10_000_000, "months: events published in all")
	fs.IntVar(&c.monthsRetained, "months-retained", 1_000_000, "months: events the stream keeps (its byte cap is this × 490 B)")
	fs.IntVar(&c.monthsSteps, "months-steps", 10, "months: steps of the history, each measured")
	fs.BoolVar(&c.monthsOnly, "months-only", false, "measure months (figure 10) alone and print its section; docs/benchmarks.md is left as it is")
	rywRates := fs.String("ryw-rates", "0,1000,2500,5000", "read-your-writes: events/s published over NATS while one client writes and reads its writes back, each rate in turn (0: none)")
	fs.DurationVar(&c.rywFor, "ryw-duration", 10*time.Second, "read-your-writes: how long at each rate")
	fs.BoolVar(&c.rywOnly, "ryw-only", false, "measure read-your-writes (figure 11) alone, on a fresh server of each binary, and print its section; docs/benchmarks.md is left as it is")
	fs.BoolVar(&c.doorsOnly, "doors-only", false, "measure the doors (figure 9) alone and print their section; docs/benchmarks.md is left as it is")
	fs.DurationVar(&c.queryDur, "query-duration", 15*time.Second, "how long queries run under ingest (a third of it idle before)")
	fs.IntVar(&c.inflight, "inflight", 4096, "most unacknowledged async publishes")
	fs.DurationVar(&c.syncInterval, "sync-interval", time.Second, "the servers run with --sync interval and this --sync-interval (the bare nats-server too)")
	seed := fs.Uint64("seed", 1, "seed of the demo traffic")
	fs.StringVar(&c.chromium, "chromium", "", "Chromium for the web view (default: chromium on PATH)")
	fs.DurationVar(&c.webTimeout, "web-timeout", 2*time.Minute, "longest wait for the web view's first rows")
	fs.BoolVar(&c.waitDup, "wait-dup-window", true, "before the first boot on a stream, wait until its duplicate window has passed since its last publish (nats-server re-reads what is inside it at every start); --quick turns it off")
	fs.DurationVar(&c.timeout, "timeout", 90*time.Minute, "bound of the whole run")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if c.quick {
		set := func(name string, apply func()) {
			if !given[name] {
				apply()
			}
		}
		set("events", func() { c.events = 20_000 })
		set("sockets", func() { *sockets = "10,50,100" })
		set("fanout-duration", func() { c.fanoutFor = 2 * time.Second })
		set("query-duration", func() { c.queryDur = 3 * time.Second })
		set("query-ingest-rate", func() { c.queryRate = 2000 })
		set("reps", func() { c.reps = 2 })
		set("wait-dup-window", func() { c.waitDup = false })
		set("timeout", func() { c.timeout = 10 * time.Minute })
		set("web-timeout", func() { c.webTimeout = time.Minute })
		set("door-events", func() { c.doorEvents = 5000 })
		set("door-sockets", func() { c.doorSockets = 20 })
		set("door-rate", func() { c.doorRate = 200 })
		set("door-duration", func() { c.doorFor = time.Second })
		set("months-events", func() { c.monthsEvents = 200_000 })
		set("months-retained", func() { c.monthsRetained = 20_000 })
		set("months-steps", func() { c.monthsSteps = 4 })
		set("ryw-rates", func() { *rywRates = "0,2000" })
		set("ryw-duration", func() { c.rywFor = time.Second })
	}
	c.seed = *seed
	for s := range strings.SplitSeq(*sockets, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("--sockets: %q is not a positive count", s)
		}
		c.sockets = append(c.sockets, n)
	}
	for s := range strings.SplitSeq(*rywRates, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 0 || len(c.rywRates) > 0 && n <= c.rywRates[len(c.rywRates)-1] {
			return nil, fmt.Errorf("--ryw-rates: %q is not a rate (events/s, 0 or more, rising)", s)
		}
		c.rywRates = append(c.rywRates, n)
	}
	switch {
	case c.events < 10:
		return nil, fmt.Errorf("--events %d: want at least 10", c.events)
	case c.reps < 1:
		return nil, fmt.Errorf("--reps %d: want at least 1", c.reps)
	case c.beforeBin != "" && c.beforeRef != "":
		return nil, fmt.Errorf("--before-bin and --before-ref: give one")
	case c.fanoutRate < 1 || c.queryRate < 1 || c.inflight < 1:
		return nil, fmt.Errorf("--fanout-rate, --query-ingest-rate and --inflight must be positive")
	case c.rywFor <= 0:
		return nil, fmt.Errorf("--ryw-duration %v: want a positive duration", c.rywFor)
	}
	c.bootTimeout, c.stopTimeout, c.loadTimeout = 10*time.Minute, 2*time.Minute, 20*time.Minute
	return c, nil
}

// sizes are the stream sizes of the boot plots: 10 %, 30 % and all of
// --events.
func (c *config) sizes() []int {
	var out []int
	for _, n := range []int{c.events / 10, c.events * 3 / 10, c.events} {
		if n > 0 && (len(out) == 0 || n > out[len(out)-1]) {
			out = append(out, n)
		}
	}
	return out
}

// serveArgs are the flags every server of the run gets besides its data
// dir and addresses.
func (c *config) serveArgs(extra ...string) []string {
	return append([]string{"--sync", "interval", "--sync-interval", c.syncInterval.String()}, extra...)
}

func (c *config) logPath(b binary, phase string) string {
	dir := filepath.Join(c.workDir, "logs")
	_ = os.MkdirAll(dir, 0o755)
	return filepath.Join(dir, b.Label+"-"+phase+".log")
}

// say prints one progress line.
func (c *config) say(format string, args ...any) {
	fmt.Fprintf(c.log, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// commandLine is how this run was invoked.
func (c *config) commandLine() string {
	parts := []string{"go run ./cmd/cellos-bench"}
	for _, a := range c.args {
		if strings.ContainsAny(a, " \t'\"") {
			a = strconv.Quote(a)
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}
