package main

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// intro is the hand-written head of docs/benchmarks.md; the command writes
// it back every time it regenerates the file.
const intro = `# Benchmarks

This file is **generated** by ` + "`go run ./cmd/cellos-bench`" + ` (` + "`task bench`" + `; ` + "`task bench-quick`" + ` for
the short run CI makes): do not edit it by hand, the command rewrites it whole, this
paragraph included. It measures the real ` + "`cellos-allinone`" + ` binary as a black box — its flags,
ports, HTTP API, NATS and data dir — on the demo generator's traffic, and sets every figure
beside its ceiling or the target of the "Scale" issue. The machine is shared and noisy:
compare figures **within one run**, and read medians and ratios rather than single numbers.
` + "`--before-ref REF`" + ` (or ` + "`--before-bin PATH`" + `) measures a second binary side by side in the same run.
The micro-benchmarks of single packages (` + "`go test -bench`" + ` in projection, projector, embed
and web) run with ` + "`task bench-micro`" + `.
`

// issue holds the figures the "Scale" issue measured before this work.
var issue = map[string]string{
	"boot":     "3.4–4.5 s",
	"rss":      "615–681 MiB",
	"rebuild":  "≈ 35,000 ev/s",
	"rebuildR": "13 %",
	"ingest":   "37,500 ev/s",
	"ceiling":  "~130,000 ev/s",
	"ingestR":  "29 %",
	"lag":      "18.7 s",
	"bytes":    "1,150–1,320 B",
}

func (r *run) markdown(plots []string) string {
	var b strings.Builder
	b.WriteString(intro)
	r.writeRun(&b)
	r.writeSummary(&b)
	r.writeSizes(&b, plots)
	r.writeKilled(&b)
	r.writeQueries(&b)
	r.writeFanout(&b, plots)
	r.writeWeb(&b)
	r.writeDoors(&b)
	r.writeMonths(&b, plots)
	r.writeReadYourWrites(&b, plots)
	b.WriteString(stateHash)
	b.WriteString(experiments)
	b.WriteString(scrubSection)
	r.writeMethod(&b)
	return b.String()
}

func (r *run) now() *result { return r.Results[len(r.Results)-1] }

func (r *run) before() *result {
	if len(r.Results) < 2 {
		return nil
	}
	return r.Results[0]
}

func (r *run) writeRun(b *strings.Builder) {
	m := r.Machine
	fmt.Fprintf(b, "\n## The run\n\n")
	fmt.Fprintf(b, "- Command: `%s`%s\n", r.Command, map[bool]string{true: " (quick mode)", false: ""}[r.Quick])
	fmt.Fprintf(b, "- Machine: %s, %d cores, %.0f GiB, %s, kernel %s; this command built with %s\n", m.CPU, m.Cores, m.MemGiB, m.OS, m.Kernel, m.Go)
	fmt.Fprintf(b, "- Run: %s, took %s; load average (1 min) %s at the start, %s at the end, on %d cores — other work shared the machine\n",
		r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Took.Round(time.Second), r.Load[0], r.Load[1], m.Cores)
	for _, res := range r.Results {
		fmt.Fprintf(b, "- Binary %q: %s (%s, nats-server %s)\n", res.Bin.Label, res.Bin.Source, res.Bin.Go, res.Bin.NATSServer)
	}
	n := r.now().Ingest
	fmt.Fprintf(b, "- Data: %s events of the demo generator (seed %d, its default mix: 4 tenants, 6 formations in flight), "+
		"%.0f B of CloudEvent JSON each on average, %.0f B per message as JetStream stores it (subject and Nats-Msg-Id header included); "+
		"they name %s formations and %s cells, of which the registry holds %s formations and %s cells (deleted formations leave it). "+
		"The servers run with `%s`.\n",
		count(r.Events), r.cfg.seed, r.AvgPayload, float64(n.StreamBytes)/float64(max(n.Events, 1)),
		count(r.Named[0]), count(r.Named[1]), count(n.Formations), count(n.Cells), strings.Join(r.cfg.serveArgs(), " "))
}

// row is one line of the summary.
type row struct {
	num, name, issue, before, now, ceiling, ratio string
}

func (r *run) writeSummary(b *strings.Builder) {
	now, before := r.now(), r.before()
	both := func(f func(*result) string) (string, string) {
		if before == nil {
			return "—", f(now)
		}
		return f(before), f(now)
	}
	var rows []row
	add := func(num, name, iss string, f func(*result) string, ceil, ratio string) {
		bv, nv := both(f)
		rows = append(rows, row{num, name, iss, bv, nv, ceil, ratio})
	}
	full := now.full()
	add("1", "boot from checkpoint after a clean shutdown, start → `/readyz` 200", issue["boot"],
		func(x *result) string { return sec(medianOf(x.full().Checkpoint, ready)) },
		"floor: NATS port answers at "+sec(medianOf(full.Checkpoint, natsUp)),
		ratio(medianOf(full.Checkpoint, ready), medianOf(full.Checkpoint, natsUp), "× the floor"))
	add("1", "boot after SIGKILL, start → `/readyz` 200", "—",
		func(x *result) string { return sec(medianOf(x.full().Killed, ready)) },
		"floor (JetStream's restore): NATS port answers at "+sec(medianOf(full.Killed, natsUp))+", `/healthz` at "+sec(medianOf(full.Killed, healthz)),
		ratio(medianOf(full.Killed, ready), medianOf(full.Killed, natsUp), "× the floor"))
	add("2", "peak RSS (VmHWM) right after the checkpoint boot", issue["rss"],
		func(x *result) string { return mib(medianOf(x.full().Checkpoint, hwm)) }, "—", "")
	add("2", "RSS growth per 100,000 entities (slope over the sizes)", "—",
		func(x *result) string { return mib(x.rssPer100k()) }, "—", "")
	add("3", "full rebuild (no checkpoint.db), start → `/readyz` 200", "—",
		func(x *result) string { return sec(medianOf(x.full().Rebuild, ready)) }, "—", "")
	add("3", "full rebuild rate", issue["rebuild"]+" = "+issue["rebuildR"],
		func(x *result) string { return evs(x.full().rebuildRate()) },
		"raw ordered read "+evs(median(full.RawRead))+"; target ≥ 40 %",
		pct(full.rebuildRate()/median(full.RawRead)))
	add("4", "publish rate with the projector running", issue["ingest"]+" vs "+issue["ceiling"]+" ("+issue["ingestR"]+")",
		func(x *result) string { return evs(x.Ingest.Rate) },
		"bare nats-server "+evs(r.ceilingRate())+"; target ≥ 70 %", pct(now.Ingest.Rate/r.ceilingRate()))
	add("4", "projector lag after the last ack (until `lag` 0)", issue["lag"],
		func(x *result) string { return sec(x.Ingest.LagSeconds) }, "target ≤ 1 s", ratio(now.Ingest.LagSeconds, 1, "× the target"))
	add("5", "checkpoint.db per entity (after the ingest)", issue["bytes"],
		func(x *result) string { return fmt.Sprintf("%s B", count(int(math.Round(x.Ingest.bytesPerEntity())))) },
		"target ≤ 400 B", ratio(now.Ingest.bytesPerEntity(), 400, "× the target"))
	add("5", "checkpoint transaction p99 (during the ingest)", "—",
		func(x *result) string { return ckptP99(x.Ingest) }, "target ≤ 50 ms", ratio(now.Ingest.CheckpointP99, 0.050, "× the target"))
	add("5", fmt.Sprintf("checkpoint transaction p99 under %s ev/s of ingest (figure 6's busy phase)", count(r.cfg.queryRate)), "—",
		func(x *result) string {
			return ckptP99(ingestResult{CheckpointP99: x.Query.CommitP99, CheckpointAbove: x.Query.CommitAbove, Checkpoints: x.Query.Commits})
		}, "target ≤ 50 ms", ratio(now.Query.CommitP99, 0.050, "× the target"))
	add("6", fmt.Sprintf("`GET /v1/cells?tenant=…&state=…&limit=100` p50 / p99 under %s ev/s of ingest", count(r.cfg.queryRate)), "—",
		func(x *result) string { return ms(x.Query.Busy.P50) + " / " + ms(x.Query.Busy.P99) },
		"target p99 ≤ 20 ms", ratio(now.Query.Busy.P99, 0.020, "× the target"))
	if p, ok := now.fanoutLargest(); ok {
		add("7", fmt.Sprintf("fan-out, %s sockets × %d ev/s: publish → receipt p50 / p99", count(p.Sockets), p.Rate), "—",
			func(x *result) string {
				q, _ := x.fanoutLargest()
				return ms(q.Latency.P50) + " / " + ms(q.Latency.P99)
			}, "—", "")
	}
	if now.Web.Skipped == "" {
		add("8", "web view: navigation → formations table has rows", "—",
			func(x *result) string { return sec(x.webFirstRows()) }, "—", "")
		add("8", "server RSS while serving the web view (largest VmRSS)", "—",
			func(x *result) string { return mib(x.Web.RSSPeak) }, "—", "")
	}
	if p, ok := now.RYW.busiest(); ok {
		add("11", fmt.Sprintf("read-your-writes under %s ev/s: `POST /v1/events`, then `GET /v1/cells/{id}?min_seq=<its seq>`: the GET's p50 / p99", count(p.Rate)), "—",
			func(x *result) string {
				q, ok := x.RYW.busiest()
				if !ok {
					return "no min_seq"
				}
				return ms(q.Get.P50) + " / " + ms(q.Get.P99)
			},
			"without min_seq, the wait is up to the checkpoint interval (200 ms)", ratio(p.Get.P99, 0.200, "× the interval"))
	}
	fmt.Fprintf(b, "\n## Summary (%s events; medians of %d)\n\n", count(r.Events), r.cfg.reps)
	b.WriteString("| # | figure | issue (today) | before | now | ceiling or target | now vs ceiling or target |\n|---|---|---|---|---|---|---|\n")
	for _, x := range rows {
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s |\n", x.num, x.name, x.issue, x.before, x.now, x.ceiling, x.ratio)
	}
	b.WriteString("\nThe issue's figures were measured at 1,000,000 events of another mix (about 20,700 formations and 221,000 cells, ~500 B per event) on the same kind of machine; \"before\" and \"now\" are this run's, on the data above.")
	if r.before() == nil {
		b.WriteString(" \"before\" was not measured in this run (no `--before-ref` or `--before-bin`).")
	}
	b.WriteString("\n")
}

func ckptP99(in ingestResult) string {
	if math.IsNaN(in.CheckpointP99) || in.Checkpoints == 0 {
		return "no checkpoint"
	}
	s := ms(in.CheckpointP99)
	if in.CheckpointAbove {
		s = "> " + s
	}
	return fmt.Sprintf("%s (%.0f transaction%s)", s, in.Checkpoints, map[bool]string{true: "", false: "s"}[in.Checkpoints == 1])
}

func (r *run) writeSizes(b *strings.Builder, plots []string) {
	fmt.Fprintf(b, "\n## Boot, rebuild and memory against the stream's size\n\n")
	b.WriteString("| binary | events | formations + cells | from checkpoint → ready | its peak RSS | full rebuild → ready | rebuild rate | server's own replay time | rebuild's peak RSS | checkpoint.db after the rebuild |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, res := range r.Results {
		for _, p := range res.Sizes {
			fmt.Fprintf(b, "| %s | %s | %s + %s | %s | %s | %s | %s | %s | %s | %s |\n", res.Bin.Label, count(p.Events), count(p.Formations), count(p.Cells),
				sec(medianOf(p.Checkpoint, ready)), mib(medianOf(p.Checkpoint, hwm)), sec(medianOf(p.Rebuild, ready)), evs(p.rebuildRate()),
				sec(median(p.RebuildReplayMs)/1000), mib(medianOf(p.Rebuild, hwm)), bytesMiB(p.CheckpointBytes))
		}
	}
	for _, name := range []string{"bench-ready.png", "bench-rss.png"} {
		if contains(plots, name) {
			fmt.Fprintf(b, "\n![%s](%s)\n", name, name)
		}
	}
}

func (r *run) writeKilled(b *strings.Builder) {
	fmt.Fprintf(b, "\n## Boot after SIGKILL (%s events)\n\n", count(r.Events))
	b.WriteString("A ready server is killed with SIGKILL and started again: nats-server scans its store (its own restore is the floor), then the projector replays from the last checkpoint.\n\n")
	b.WriteString("| binary | NATS port answers | `/healthz` 200 | `/readyz` 200 | peak RSS |\n|---|---|---|---|---|\n")
	for _, res := range r.Results {
		k := res.full().Killed
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", res.Bin.Label, sec(medianOf(k, natsUp)), sec(medianOf(k, healthz)), sec(medianOf(k, ready)), mib(medianOf(k, hwm)))
	}
}

func (r *run) writeQueries(b *strings.Builder) {
	fmt.Fprintf(b, "\n## Query latency\n\n")
	b.WriteString("One client, back to back, `GET /v1/cells?tenant=T&state=S&limit=100` over the 4 tenants × 5 states; idle first, then while events are published at a fixed rate.\n\n")
	b.WriteString("| binary | cells | idle p50 / p99 / max (n) | under ingest p50 / p99 / max (n) | ingest asked / achieved |\n|---|---|---|---|---|\n")
	for _, res := range r.Results {
		q := res.Query
		fmt.Fprintf(b, "| %s | %s | %s / %s / %s (%d) | %s / %s / %s (%d) | %s / %s |\n", res.Bin.Label, count(q.Cells),
			ms(q.Idle.P50), ms(q.Idle.P99), ms(q.Idle.Max), q.Idle.N, ms(q.Busy.P50), ms(q.Busy.P99), ms(q.Busy.Max), q.Busy.N,
			evs(float64(q.IngestRate)), evs(q.Ingested))
	}
}

func (r *run) writeFanout(b *strings.Builder, plots []string) {
	fmt.Fprintf(b, "\n## WebSocket fan-out\n\n")
	for _, res := range r.Results {
		if res.Batch {
			fmt.Fprintf(b, "%q: sockets opened with `/ws/events?batch=1` (several events per frame).\n", res.Bin.Label)
		} else {
			fmt.Fprintf(b, "%q: the server refused `batch=1` (400 for an unknown parameter), so single-event frames.\n", res.Bin.Label)
		}
	}
	b.WriteString("\n| binary | sockets | events/s | events | frames received | delivered | p50 | p99 | max | server RSS (largest) |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, res := range r.Results {
		for _, p := range res.Fanout {
			fmt.Fprintf(b, "| %s | %s | %d | %s | %s | %.2f %% | %s | %s | %s | %s |\n", res.Bin.Label, count(p.Sockets), p.Rate, count(p.Events),
				count(int(p.Frames)), p.Delivered*100, ms(p.Latency.P50), ms(p.Latency.P99), ms(p.Latency.Max), mib(p.RSSMiB))
		}
	}
	if contains(plots, "bench-fanout.png") {
		b.WriteString("\n![bench-fanout.png](bench-fanout.png)\n")
	}
}

func (r *run) writeWeb(b *strings.Builder) {
	fmt.Fprintf(b, "\n## Web view\n\n")
	fmt.Fprintf(b, "Headless Chromium (1280×800) opens `/` on the full-size server, a new tab each time. The page has no hook of its own for \"first rows shown\": a script installed before the page's own scripts records, at every DOM change, the first moment `%s` holds, as `performance.now()` (from navigation start).\n\n", rowsShown)
	b.WriteString("| binary | formations | first rows (each try) | rows then | server RSS before → largest while serving |\n|---|---|---|---|---|\n")
	for _, res := range r.Results {
		w := res.Web
		if w.Skipped != "" {
			fmt.Fprintf(b, "| %s | not measured: %s | | | |\n", res.Bin.Label, w.Skipped)
			continue
		}
		tries := make([]string, len(w.FirstRowsMs))
		for i, v := range w.FirstRowsMs {
			tries[i] = sec(v / 1000)
		}
		fmt.Fprintf(b, "| %s | %s | %s | %d | %s → %s |\n", res.Bin.Label, count(w.Formations), strings.Join(tries, ", "), w.Rows, mib(w.RSSBefore), mib(w.RSSPeak))
	}
}

// doors returns res's figure 9 in mode, if measured.
func (res *result) doors(mode string) (doorsResult, bool) {
	for _, d := range res.Doors {
		if d.Mode == mode {
			return d, true
		}
	}
	return doorsResult{}, false
}

// writeDoors is figure 9: every door with and without an auth file,
// against "before" without one (today's throughput, the Security issue's
// bound: within 10 %).
func (r *run) writeDoors(b *strings.Builder) {
	fmt.Fprintf(b, "\n## Doors: publish and live stream with and without an auth file\n\n")
	c := r.cfg
	fmt.Fprintf(b, "A fresh server per binary and mode (`open`: no auth file; `auth`: an auth file, the publisher and the reader principals of tenant `acme`); "+
		"medians of %d, the modes interleaved. HTTP: %d clients post one event after the other for %s. NATS: %s events published asynchronously "+
		"(the tenant publisher in the seed's untenanted subjects, which nats-server maps into `cellos.events.acme.>`). "+
		"Live: %d sockets on `/ws/events` (the tenant reader's, confined to its sub-tree) while %d ev/s are published over NATS for %s.\n\n",
		c.reps, c.doorClients, c.doorFor, count(c.doorEvents), c.doorSockets, c.doorRate, c.doorFor)
	b.WriteString("| binary | mode | HTTP POST ev/s | NATS publish ev/s | live p50 / p99 | live delivered |\n|---|---|---|---|---|---|\n")
	for _, res := range r.Results {
		for _, d := range res.Doors {
			fmt.Fprintf(b, "| %s | %s | %s | %s | %s / %s | %.2f %% |\n", res.Bin.Label, d.Mode, evs(d.HTTPRate), evs(d.NATSRate),
				ms(d.Live.Latency.P50), ms(d.Live.Latency.P99), d.Live.Delivered*100)
		}
	}
	base := r.now()
	if before := r.before(); before != nil {
		base = before
	}
	open, ok1 := base.doors("open")
	auth, ok2 := r.now().doors("auth")
	if ok1 && ok2 {
		fmt.Fprintf(b, "\n\"now\" with an auth file against %q without one: HTTP %s, NATS %s, live p99 %s.\n", base.Bin.Label,
			pct(auth.HTTPRate/open.HTTPRate), pct(auth.NATSRate/open.NATSRate), ratio(auth.Live.Latency.P99, open.Live.Latency.P99, "×"))
	}
}

// writeMonths is figure 10: a long history through a stream that keeps a
// fraction of it.
func (r *run) writeMonths(b *strings.Builder, plots []string) {
	m := r.now().Months
	if len(m.Points) == 0 {
		return
	}
	fmt.Fprintf(b, "\n## Months: %s events through a stream that keeps about %s\n\n", count(m.Events), count(m.Retained))
	fmt.Fprintf(b, "A server whose stream has a byte cap of %s (about %s events; the oldest go first) takes %s demo events, published as fast as acks allow, in %d steps. "+
		"After each step: the registry (`/v1/status` `registry`), the state file, the server's RSS and what it wrote to storage per event (`write_bytes` of `/proc/<pid>/io`: bbolt and JetStream); "+
		"then a clean stop and a restart from the checkpoint (boot), and a rebuild of a copy of the data dir without `checkpoint.db` (its time and peak RSS).\n\n",
		bytesMiB(m.MaxBytes), count(m.Retained), count(m.Events), len(m.Points))
	b.WriteString("| binary | published | retained (floor) | registry: formations + cells | state file | RSS | written / event | boot | rebuild (peak RSS) |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, res := range r.Results {
		for _, p := range res.Months.Points {
			fmt.Fprintf(b, "| %s | %s | %s (#%s) | %s + %s | %s | %s | %.0f B | %s | %s (%s) |\n", res.Bin.Label, count(p.Events), count(int(p.StreamMsgs)), count(int(p.StreamFirst)),
				count(p.Formations), count(p.Cells), bytesMiB(p.StateBytes), mib(p.RSSMiB), p.WrittenPerEvent, sec(p.Boot.Ready.Seconds()), sec(p.Rebuild.Ready.Seconds()), mib(p.Rebuild.HWMMiB))
		}
	}
	for _, name := range []string{"bench-months-state.png", "bench-months-entities.png"} {
		if contains(plots, name) {
			fmt.Fprintf(b, "\n![%s](%s)\n", name, name)
		}
	}
}

// writeReadYourWrites is figure 11: a write read back with min_seq, at
// each ingest rate.
func (r *run) writeReadYourWrites(b *strings.Builder, plots []string) {
	fmt.Fprintf(b, "\n## Read your writes: `min_seq` under ingest\n\n")
	fmt.Fprintf(b, "One client, one write after the other, for %s at each rate while events are published over NATS: `POST /v1/events` admits a new cell, "+
		"then the client reads it back — every other write with `GET /v1/cells/{id}?min_seq=<the seq the POST answered>` (timed; a read that does not hold its write, or answers at a cursor below `min_seq`, fails the run), "+
		"the others with a plain `GET /v1/cells/{id}` (counted: how often a read right after its write misses it without `min_seq`). "+
		"The server commits its state every 200 ms (`--checkpoint-interval`) or after 2,000 events; a read that waits for an event already applied makes it commit at once (at most one such commit every 5 ms).\n\n", r.cfg.rywFor)
	b.WriteString("| binary | ingest asked / acknowledged | GET with min_seq p50 / p99 / max | POST p50 / p99 | POST + GET p50 / p99 (writes) | plain GET missed its write |\n|---|---|---|---|---|---|\n")
	for _, res := range r.Results {
		y := res.RYW
		if y.Skipped != "" {
			fmt.Fprintf(b, "| %s | not measured: %s | | | | |\n", res.Bin.Label, y.Skipped)
			continue
		}
		for _, p := range y.Points {
			ingest := "none"
			if p.Rate > 0 {
				ingest = evs(float64(p.Rate)) + " / " + evs(p.Ingested)
			}
			fmt.Fprintf(b, "| %s | %s | %s / %s / %s | %s / %s | %s / %s (%s) | %d of %d (%s) |\n", res.Bin.Label, ingest,
				ms(p.Get.P50), ms(p.Get.P99), ms(p.Get.Max), ms(p.Post.P50), ms(p.Post.P99), ms(p.EndToEnd.P50), ms(p.EndToEnd.P99), count(p.EndToEnd.N),
				p.Missed, p.Plain, pct(p.missRate()))
		}
	}
	if contains(plots, "bench-ryw.png") {
		b.WriteString("\n![bench-ryw.png](bench-ryw.png)\n")
	}
}
