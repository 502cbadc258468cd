package demo

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"
)

// Options of a Generator. Zero values mean the documented defaults.
type Options struct {
	Seed uint64
	// Start is the time of the first event; zero means 2026-01-01T00:00:00Z.
	Start time.Time
	// Step is the simulated time between two events; zero means 50 ms.
	Step time.Duration
	// Tenants is how many tenants produce traffic: 1 to len(TenantNames);
	// zero means 4.
	Tenants int
	// Formations is how many formations are in flight at once; zero means 6.
	Formations int
}

// TenantNames are the tenants of the demo, in the order they are used.
var TenantNames = []string{"acme", "globex", "initech", "umbrella", "hooli", "stark"}

// Defaults of Options.
var (
	DefaultStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

const (
	DefaultStep       = 50 * time.Millisecond
	DefaultTenants    = 4
	DefaultFormations = 6
)

// Event is one CloudEvent 1.0 in structured mode. Its field order is the
// order of the JSON encoding.
type Event struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject,omitempty"`
	Time            string          `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
}

// JSON is the event's encoding, the same bytes every time.
func (e Event) JSON() []byte {
	b, err := json.Marshal(e)
	if err != nil {
		// Every field is a string or JSON this package produced.
		panic(fmt.Sprintf("demo: encode event: %v", err))
	}
	return b
}

// Generator is the state machine. Create it with New.
type Generator struct {
	o   Options
	rng *rand.Rand
	run string // 6 hex digits from the seed, in every id

	n          int          // events emitted
	formations []*formation // in flight
	finished   []*formation // terminal, waiting to be deleted
	cells      []*cell      // not yet destroyed
	nFormation int
	nCell      int
}

type formation struct {
	id, name, tenant, workload string
	status                     string // created, launching, running, degraded
	planned, admitted, live    int    // cells: to admit, admitted, not yet destroyed
	failures                   int
	degrade                    bool // a cell failed since the last degraded
	cancelled                  bool
	// Decided at creation, so that outcomes vary between formations: a
	// flaky one loses many cells, a doomed one is cancelled by its operator.
	flaky, doomed bool
}

type cell struct {
	f                            *formation
	id, spec, runID, trace, node string
	state                        string // admitted, running, completed, failed
	summary                      bool   // a compliance summary is still due
}

// New returns a generator for o.
func New(o Options) *Generator {
	if o.Start.IsZero() {
		o.Start = DefaultStart
	}
	if o.Step <= 0 {
		o.Step = DefaultStep
	}
	if o.Tenants <= 0 {
		o.Tenants = DefaultTenants
	}
	o.Tenants = min(o.Tenants, len(TenantNames))
	if o.Formations <= 0 {
		o.Formations = DefaultFormations
	}
	// PCG's output for a seed is fixed by its specification, so a seed
	// means the same traffic on every Go version and platform.
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	return &Generator{o: o, rng: rng, run: fmt.Sprintf("%06x", rng.Uint32()&0xffffff)}
}

// action is one possible next event with its relative weight.
type action struct {
	weight int
	emit   func() Event
}

// Next returns the next event.
func (g *Generator) Next() Event {
	acts := g.actions()
	total := 0
	for _, a := range acts {
		total += a.weight
	}
	pick := g.rng.IntN(total)
	for _, a := range acts {
		if pick < a.weight {
			return a.emit()
		}
		pick -= a.weight
	}
	panic("demo: unreachable")
}

// actions lists what may happen next. The weights shape the traffic: cells
// run for a while, formations launch quickly, cancellations are rare.
func (g *Generator) actions() []action {
	var acts []action
	add := func(w int, fn func() Event) { acts = append(acts, action{w, fn}) }
	if len(g.formations) < g.o.Formations {
		add(30, g.createFormation)
	}
	for _, f := range g.formations {
		switch f.status {
		case "created":
			add(40, func() Event { return g.formationStatus(f, "launching") })
		case "launching":
			add(40, func() Event { return g.formationStatus(f, "running") })
		case "running", "degraded":
			if f.status == "degraded" {
				add(20, func() Event { return g.formationStatus(f, "running") })
			} else if f.degrade {
				add(20, func() Event { f.degrade = false; return g.formationStatus(f, "degraded") })
			}
			if f.admitted < f.planned {
				add(40, func() Event { return g.admitCell(f) })
			} else if f.live == 0 {
				add(40, func() Event { return g.finishFormation(f) })
			}
			if f.doomed {
				add(4, func() Event { return g.cancelFormation(f) })
			}
		}
	}
	for _, c := range g.cells {
		switch {
		case c.f.cancelled && (c.state == "admitted" || c.state == "running"):
			add(30, func() Event { return g.cellFailed(c, "formation cancelled") })
		case c.state == "admitted":
			add(30, func() Event { return g.cellStarted(c) })
		case c.state == "running":
			add(12, func() Event { return g.cellEnded(c) })
		case c.summary:
			add(25, func() Event { return g.compliance(c) })
		default:
			add(20, func() Event { return g.cellDestroyed(c) })
		}
	}
	for _, f := range g.finished {
		add(4, func() Event { return g.deleteFormation(f) })
	}
	if len(g.cells) > 0 {
		add(2, g.unknown)
	}
	return acts
}

var workloads = []string{"nightly-build", "etl-orders", "model-train", "canary-deploy", "load-test", "backup-verify", "report-gen", "index-rebuild"}

var environments = []string{"prod", "staging", "dev"}

var failureReasons = []string{"oom-killed", "deadline exceeded", "image pull failed: manifest unknown", "node lost", "non-zero exit: 137", "policy violation: egress denied"}

func (g *Generator) createFormation() Event {
	g.nFormation++
	tenant := TenantNames[g.rng.IntN(g.o.Tenants)]
	workload := workloads[g.rng.IntN(len(workloads))]
	f := &formation{
		id:       fmt.Sprintf("f-%s-%03d", g.run, g.nFormation),
		name:     fmt.Sprintf("%s/%s-%d", tenant, workload, g.nFormation),
		tenant:   tenant,
		workload: workload,
		status:   "created",
		planned:  2 + g.rng.IntN(7),
		flaky:    g.rng.IntN(6) == 0,
		doomed:   g.rng.IntN(12) == 0,
	}
	g.formations = append(g.formations, f)
	return g.event("formation.lifecycle.v1.created", "/cellos/demo/controller", f.id, map[string]any{
		"formationId": f.id,
		"name":        f.name,
		"tenantId":    tenant,
		"labels": map[string]string{
			"env":      environments[g.rng.IntN(len(environments))],
			"workload": workload,
		},
		"cells": f.planned,
	})
}

func (g *Generator) formationStatus(f *formation, status string) Event {
	f.status = status
	return g.event("formation.lifecycle.v1."+status, "/cellos/demo/controller", f.id, map[string]any{
		"formationId": f.id, "tenantId": f.tenant,
	})
}

func (g *Generator) finishFormation(f *formation) Event {
	status := "completed"
	if f.failures*3 > f.planned {
		status = "failed"
	}
	g.retire(f)
	data := map[string]any{"formationId": f.id, "tenantId": f.tenant, "cellsFailed": f.failures}
	return g.event("formation.lifecycle.v1."+status, "/cellos/demo/controller", f.id, data)
}

func (g *Generator) cancelFormation(f *formation) Event {
	f.cancelled = true
	g.retire(f)
	return g.event("formation.lifecycle.v1.cancelled", "/cellos/demo/controller", f.id, map[string]any{
		"formationId": f.id, "tenantId": f.tenant, "reason": "cancelled by operator",
	})
}

// retire takes a formation out of flight; about a third are deleted later.
func (g *Generator) retire(f *formation) {
	g.formations = remove(g.formations, f)
	if g.rng.IntN(3) == 0 {
		g.finished = append(g.finished, f)
	}
}

func (g *Generator) deleteFormation(f *formation) Event {
	g.finished = remove(g.finished, f)
	return g.event("formation.lifecycle.v1.deleted", "/cellos/demo/controller", f.id, map[string]any{
		"formationId": f.id, "tenantId": f.tenant,
	})
}

func (g *Generator) admitCell(f *formation) Event {
	g.nCell++
	f.admitted++
	f.live++
	c := &cell{
		f:       f,
		id:      fmt.Sprintf("c-%s-%04d", g.run, g.nCell),
		spec:    fmt.Sprintf("spec-%s-v%d", f.workload, 1+g.rng.IntN(3)),
		runID:   "run-" + f.id[len("f-"):],
		trace:   fmt.Sprintf("%016x", g.rng.Uint64()),
		node:    fmt.Sprintf("node-%d", 1+g.rng.IntN(5)),
		state:   "admitted",
		summary: g.rng.IntN(10) < 8,
	}
	g.cells = append(g.cells, c)
	return g.event("cell.lifecycle.v1.admitted", c.source(), c.id, map[string]any{
		"cellId":      c.id,
		"formationId": f.id,
		"specId":      c.spec,
		"runId":       c.runID,
		"correlation": map[string]string{"tenantId": f.tenant, "traceId": c.trace},
	})
}

func (c *cell) source() string { return "/cellos/demo/supervisor/" + c.node }

func (c *cell) base() map[string]any {
	return map[string]any{"cellId": c.id, "formationId": c.f.id, "tenantId": c.f.tenant}
}

func (g *Generator) cellStarted(c *cell) Event {
	c.state = "running"
	return g.event("cell.lifecycle.v1.started", c.source(), c.id, c.base())
}

// cellEnded completes most cells; some fail.
func (g *Generator) cellEnded(c *cell) Event {
	failPct := 7
	if c.f.flaky {
		failPct = 50
	}
	if g.rng.IntN(100) < failPct {
		return g.cellFailed(c, failureReasons[g.rng.IntN(len(failureReasons))])
	}
	c.state = "completed"
	d := c.base()
	d["exitCode"] = 0
	d["durationMs"] = 500 + g.rng.IntN(120000)
	return g.event("cell.lifecycle.v1.completed", c.source(), c.id, d)
}

func (g *Generator) cellFailed(c *cell, reason string) Event {
	c.state = "failed"
	c.f.failures++
	c.f.degrade = !c.f.cancelled
	d := c.base()
	d["reason"] = reason
	return g.event("cell.lifecycle.v1.failed", c.source(), c.id, d)
}

func (g *Generator) compliance(c *cell) Event {
	c.summary = false
	checks := 20 + g.rng.IntN(20)
	failed := 0
	if g.rng.IntN(5) == 0 {
		failed = 1 + g.rng.IntN(3)
	}
	result := "pass"
	if failed > 0 {
		result = "fail"
	}
	d := c.base()
	d["policy"] = "cis-baseline-v2"
	d["checks"] = checks
	d["passed"] = checks - failed
	d["failed"] = failed
	d["result"] = result
	return g.event("cell.compliance.v1.summary", c.source(), c.id, d)
}

func (g *Generator) cellDestroyed(c *cell) Event {
	g.cells = remove(g.cells, c)
	c.f.live--
	return g.event("cell.lifecycle.v1.destroyed", c.source(), c.id, c.base())
}

// unknown emits a type this projection version does not know, as a newer
// supervisor would; the server must count and skip it.
func (g *Generator) unknown() Event {
	c := g.cells[g.rng.IntN(len(g.cells))]
	d := c.base()
	d["cpuMillis"] = g.rng.IntN(4000)
	d["memoryBytes"] = (64 + g.rng.IntN(960)) << 20
	return g.event("cell.telemetry.v1.sample", c.source(), c.id, d)
}

// event builds the n-th event; its time and id depend only on n and the
// options.
func (g *Generator) event(typ, source, subject string, data any) Event {
	raw, err := json.Marshal(data)
	if err != nil {
		panic(fmt.Sprintf("demo: encode data: %v", err))
	}
	t := g.o.Start.Add(time.Duration(g.n) * g.o.Step)
	g.n++
	return Event{
		SpecVersion:     "1.0",
		ID:              fmt.Sprintf("demo-%s-%06d", g.run, g.n),
		Source:          source,
		Type:            "dev.cellos.events." + typ,
		Subject:         subject,
		Time:            t.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		DataContentType: "application/json",
		Data:            raw,
	}
}

func remove[T comparable](s []T, v T) []T {
	for i, x := range s {
		if x == v {
			return append(s[:i], s[i+1:]...)
		}
	}
	return s
}
