package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"time"

	"cellos-allinone/app"
	"cellos-allinone/client"
	"cellos-allinone/demo"
	"cellos-allinone/event"
	"cellos-allinone/eventlog"

	"cellos-allinone/internal/sleep"
)

const demoAbout = `Generates realistic CellOS traffic: formations of several tenants launch,
run, degrade and finish (some fail, a few are cancelled, some are deleted);
their cells are admitted, start, complete or fail, get compliance summaries
and are destroyed; now and then an event of an unknown type is mixed in.
Events flow at a steady --rate.

Without --target it starts a server in this process, like serve (the serve
flags apply; data goes to ./cellos-demo-data so that a real data dir never
gets demo events), publishes to its stream as a supervisor would (NATS,
with the event id as message id), prints the URL to open and stops the
server at the end. With --target URL it feeds a server that is already
running through POST /v1/events, which refuses the unknown event types:
those are counted as refused. --dry-run prints the events as JSONL on
stdout instead (try: demo --dry-run --count 100 | publish -f -).

The same --seed with the same --start, --rate, --tenants and --formations
gives byte-identical events; without --seed a random one is picked and
printed. Event times are --start plus 1/rate per event (default start: now).
The demo runs until --count events, --duration or Ctrl-C, whichever comes
first. A server that is restarting is waited for: each event is retried
with its own id, so a retry is never stored twice.`

// demoServeDefaults differ from serve's: demo data stays apart, and the
// in-process server's info logs would drown the demo's own lines.
var demoServeDefaults = map[string]string{
	"data-dir":  "./cellos-demo-data",
	"log-level": "warn",
}

type demoOpts struct {
	remote        // --token, --creds, --cacert of --target
	target, start string
	seed          uint64
	rate          float64
	duration      time.Duration
	count         int
	tenants       int
	formations    int
	dryRun        bool
}

func demoCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		o                   demoOpts
		cfg                 app.Config
		logLevel, logFormat string
	)
	fs := newFlagSet("demo", demoAbout, "cellos-allinone demo --rate 50 --seed 7    # then open the printed URL")
	fs.SetOutput(stderr)
	fs.StringVar(&o.target, "target", "", "feed the server at this URL instead of starting one (http://host:port)")
	o.remote.bindCredentials(fs)
	fs.Uint64Var(&o.seed, "seed", 0, "seed of the traffic (default: random, printed)")
	fs.Float64Var(&o.rate, "rate", 20, "events per second (0 = as fast as the server takes them)")
	fs.DurationVar(&o.duration, "duration", 0, "stop after this long (0 = no limit)")
	fs.IntVar(&o.count, "count", 0, "stop after this many events (0 = no limit)")
	fs.StringVar(&o.start, "start", "", "time of the first event, RFC 3339 (default: now)")
	fs.IntVar(&o.tenants, "tenants", demo.DefaultTenants, fmt.Sprintf("number of tenants, 1 to %d", len(demo.TenantNames)))
	fs.IntVar(&o.formations, "formations", demo.DefaultFormations, "formations in flight at once")
	fs.BoolVar(&o.dryRun, "dry-run", false, "print the events as JSONL on stdout; no server")
	// The serve flags, shared with serve so that both stay alike.
	serveNames := map[string]bool{}
	serveFlags(&cfg, &logLevel, &logFormat).VisitAll(func(f *flag.Flag) {
		if d, ok := demoServeDefaults[f.Name]; ok {
			_ = f.Value.Set(d)
		}
		fs.Var(f.Value, f.Name, f.Usage+" (own server only)")
		serveNames[f.Name] = true
	})
	pos, given, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError{fmt.Sprintf("unexpected arguments: %v", pos)}
	}
	if o.target != "" || o.dryRun {
		for name := range given {
			if serveNames[name] {
				return usageError{fmt.Sprintf("--%s applies only to the demo's own server, not with --target or --dry-run", name)}
			}
		}
	}
	if o.target != "" && o.dryRun {
		return usageError{"--target and --dry-run exclude each other"}
	}
	if _, fromEnv := os.LookupEnv(envName("seed")); !given["seed"] && !fromEnv {
		// A fresh run gets new ids (the same seed again would repeat ids
		// the server has seen); six digits are easy to note down.
		o.seed = rand.Uint64N(1_000_000)
	}
	gen, err := o.generator()
	if err != nil {
		return err
	}
	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}

	if o.dryRun {
		err := o.loop(ctx, gen, func(ctx context.Context, ev demo.Event) error {
			_, err := fmt.Fprintf(stdout, "%s\n", ev.JSON())
			return err
		})
		fmt.Fprintf(stderr, "demo: seed %d\n", o.seed)
		return err
	}
	if o.target != "" {
		c, err := o.remote.client(o.target)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "demo: feeding %s at %s (seed %d)\n", o.target, rateText(o.rate), o.seed)
		return o.publish(ctx, gen, &demoPublisher{post: httpPoster(c), stderr: stderr}, o.target, stdout)
	}
	return o.withOwnServer(ctx, gen, cfg, logLevel, logFormat, stdout, stderr)
}

func (o *demoOpts) generator() (*demo.Generator, error) {
	switch {
	case o.rate < 0:
		return nil, usageError{"--rate must not be negative"}
	case o.count < 0:
		return nil, usageError{"--count must not be negative"}
	case o.duration < 0:
		return nil, usageError{"--duration must not be negative"}
	case o.tenants < 1 || o.tenants > len(demo.TenantNames):
		return nil, usageError{fmt.Sprintf("--tenants %d: want 1 to %d", o.tenants, len(demo.TenantNames))}
	case o.formations < 1:
		return nil, usageError{"--formations must be at least 1"}
	}
	start := time.Now().UTC().Truncate(time.Millisecond)
	if o.start != "" {
		t, err := time.Parse(time.RFC3339Nano, o.start)
		if err != nil {
			return nil, usageError{fmt.Sprintf("--start %q: want an RFC 3339 time such as 2026-11-26T10:00:00Z", o.start)}
		}
		start = t
	}
	step := demo.DefaultStep
	if o.rate > 0 {
		// Event times then advance like the wall clock while the demo
		// keeps its pace.
		step = time.Duration(float64(time.Second) / o.rate)
	}
	return demo.New(demo.Options{Seed: o.seed, Start: start, Step: step, Tenants: o.tenants, Formations: o.formations}), nil
}

func rateText(rate float64) string {
	if rate == 0 {
		return "full speed"
	}
	return fmt.Sprintf("%g events/s", rate)
}

// withOwnServer runs the server in this process for the demo's length.
func (o *demoOpts) withOwnServer(ctx context.Context, gen *demo.Generator, cfg app.Config, logLevel, logFormat string, stdout, stderr io.Writer) (err error) {
	a, log, err := startApp(ctx, cfg, logLevel, logFormat, stderr)
	if err != nil {
		return err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if cerr := a.Close(closeCtx); cerr != nil && err == nil {
			err = cerr
		}
	}()
	// The demo ends when the server stops on its own.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		for {
			select {
			case <-a.Stopped():
				cancel()
				return
			case <-ctx.Done():
				return
			case <-reloadRequests(ctx):
				if err := a.Reload(); err != nil {
					log.Error("reload incomplete", "err", err)
				}
			}
		}
	}()
	if err := a.Proj.WaitReady(ctx); err != nil {
		if a.Err() != nil {
			return a.Err()
		}
		return nil
	}
	url := a.HTTPURL()
	fmt.Fprintf(stdout, "demo: open %s/ — %s, seed %d, data in %s; Ctrl-C stops\n", url, rateText(o.rate), o.seed, cfg.DataDir)
	err = o.publish(ctx, gen, &demoPublisher{post: natsPoster(a.Events), stderr: stderr}, url, stdout)
	if a.Err() != nil {
		return fmt.Errorf("server stopped: %w", a.Err())
	}
	return err
}

// publish feeds the generator's events to p and reports progress.
func (o *demoOpts) publish(ctx context.Context, gen *demo.Generator, p *demoPublisher, server string, stdout io.Writer) error {
	last := time.Now()
	err := o.loop(ctx, gen, func(ctx context.Context, ev demo.Event) error {
		if err := p.send(ctx, ev); err != nil {
			return err
		}
		if time.Since(last) >= 10*time.Second {
			last = time.Now()
			fmt.Fprintf(stdout, "demo: %d events published (last #%d)\n", p.published, p.lastSeq)
		}
		return nil
	})
	fmt.Fprintf(stdout, "demo: %d events published, %d refused, last #%d (seed %d)\n", p.published, p.refused, p.lastSeq, o.seed)
	if err != nil {
		return remoteError(server, err, false)
	}
	return nil
}

// loop hands events to sink at the configured rate until --count, or ctx
// ends (duration, Ctrl-C): both are normal ends.
func (o *demoOpts) loop(ctx context.Context, gen *demo.Generator, sink func(context.Context, demo.Event) error) error {
	interval := time.Duration(0)
	if o.rate > 0 {
		interval = time.Duration(float64(time.Second) / o.rate)
	}
	next := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for i := 0; o.count == 0 || i < o.count; i++ {
		if interval > 0 {
			if d := time.Until(next); d > 0 {
				timer.Reset(d)
				select {
				case <-ctx.Done():
					return nil
				case <-timer.C:
				}
			} else if d < -time.Second {
				// After a stall (a restarting server) keep the pace
				// instead of bursting to catch up.
				next = time.Now()
			}
			next = next.Add(interval)
		}
		if ctx.Err() != nil {
			return nil
		}
		if err := sink(ctx, gen.Next()); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	return nil
}

// poster stores one event and returns its sequence.
type poster func(ctx context.Context, ev demo.Event) (uint64, error)

// httpPoster posts to a running server's API.
func httpPoster(c *client.Client) poster {
	return func(ctx context.Context, ev demo.Event) (uint64, error) {
		res, err := c.Publish(ctx, ev.JSON())
		if err != nil {
			return 0, err
		}
		return res.Seq, nil
	}
}

// natsPoster publishes straight to the stream, as a supervisor does: the
// unknown types, which the API refuses, reach the projection this way.
func natsPoster(l *eventlog.Stream) poster {
	return func(ctx context.Context, ev demo.Event) (uint64, error) {
		payload := ev.JSON()
		subject, id, err := event.Route(payload)
		if err != nil {
			return 0, err
		}
		res, err := l.Publish(ctx, subject, payload, id)
		return res.Seq, err
	}
}

// demoPublisher sends events, riding out a server that restarts.
type demoPublisher struct {
	post         poster
	stderr       io.Writer
	refusedTypes map[string]bool
	published    int
	refused      int
	lastSeq      uint64
	down         bool
}

// send posts one event. A refused event is skipped with a warning; an
// unreachable or unavailable server is retried with the same event (same
// id, so a retry of an event that did arrive is a duplicate, not a second
// copy), except on the very first event, where it most likely means a
// wrong address.
func (p *demoPublisher) send(ctx context.Context, ev demo.Event) error {
	wait := 250 * time.Millisecond
	for {
		seq, err := p.post(ctx, ev)
		if err == nil {
			if p.down {
				fmt.Fprintln(p.stderr, "demo: the server answers again; going on")
				p.down = false
			}
			p.published++
			p.lastSeq = seq
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ae *client.APIError
		if errors.As(err, &ae) {
			switch {
			case ae.Status == http.StatusBadRequest || ae.Status == http.StatusRequestEntityTooLarge:
				p.refused++
				if !p.refusedTypes[ev.Type] {
					// Once per type: the unknown type comes back every
					// few seconds.
					if p.refusedTypes == nil {
						p.refusedTypes = map[string]bool{}
					}
					p.refusedTypes[ev.Type] = true
					fmt.Fprintf(p.stderr, "demo: the server refused event %s (%v); further refusals of %s are only counted\n", ev.ID, ae, ev.Type)
				}
				return nil
			case ae.Status/100 == 4 && ae.Status != http.StatusRequestTimeout && ae.Status != http.StatusTooManyRequests:
				return err
			}
		}
		if p.published == 0 && p.refused == 0 {
			return err
		}
		if !p.down {
			fmt.Fprintf(p.stderr, "demo: cannot publish (%v); retrying until the server answers\n", err)
			p.down = true
		}
		if err := sleep.For(ctx, wait); err != nil {
			return err
		}
		wait = min(2*wait, 5*time.Second)
	}
}
