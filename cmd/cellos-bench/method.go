package main

import (
	"fmt"
	"strings"
)

// writeMethod says how each figure was taken, with this run's settings.
func (r *run) writeMethod(b *strings.Builder) {
	c := r.cfg
	fmt.Fprintf(b, "\n## How each figure is measured\n\n")
	items := []string{
		fmt.Sprintf("**The streams.** The demo generator's events are made once, before anything is timed. Each stream (%s events) is built by the binary \"now\" in a new data dir: an async publisher over its NATS port, at most %s acknowledgements outstanding, the CloudEvent id as `Nats-Msg-Id`; then a clean stop (SIGTERM). Every other measurement runs on a copy of such a data dir.", joinCounts(c.sizes()), count(c.inflight)),
		"**Boot (1).** A process start (fork and exec included) until `GET /readyz` first answers 200, polled every 5 ms; beside it, in the same start, when the NATS port first greets with `INFO` and when `/healthz` first answers. From a checkpoint: after a rebuild and a clean stop, the checkpoint is at the stream's end. After SIGKILL: a ready server is killed, the next start is timed. The binaries are interleaved in every repetition.",
		fmt.Sprintf("**Duplicate window.** nats-server re-reads the messages of the stream's duplicate window at every start; %s", map[bool]string{true: "so the first boot on a stream waits until that window has passed since its last publish.", false: "this run did not wait for it (`--wait-dup-window=false`), so boots soon after a build include that re-read."}[c.waitDup]),
		"**Peak RSS (2).** `VmHWM` of `/proc/<pid>/status`, read as soon as `/readyz` said 200. The growth per 100,000 entities is the least-squares slope of that figure over the sizes against formations + cells of the registry (`/v1/status` `registry`).",
		"**Full rebuild (3).** `checkpoint.db` removed, start → `/readyz` 200; its rate is events ÷ that time (JetStream's restore included; the server's own replay time from `/v1/status` `boot.durationMs` is listed beside). The raw read: a nats.go ordered consumer (`PullMaxMessages(4096)`) reads the whole stream from the running binary's NATS port right after each boot from the checkpoint, counting messages and nothing else.",
		fmt.Sprintf("**Publish rate (4).** The full data set published into an empty data dir of the binary with its projector running, as fast as acks allow (at most %s outstanding): acknowledged events ÷ (first publish → last ack). The ceiling: the same publisher and events into a bare nats-server started inside this command (same `--sync interval`/%s fsync setting, the stream created with the configuration the binary gave its own), over loopback TCP as well. **Lag**: from the last ack until `/v1/status` (polled every 10 ms) shows `lag` 0 and a cursor at the last ack's sequence.", count(c.inflight), c.syncInterval),
		"**Checkpoint (5).** The size of `checkpoint.db` after that ingest and a clean stop, ÷ (formations + cells) of the registry. The transaction p99 is estimated from the `cellos_checkpoint_duration_seconds` histogram of `/metrics` as Prometheus's `histogram_quantile` does (linear inside a bucket), read at the end of the ingest.",
		fmt.Sprintf("**Queries (6).** %s idle, then %s while events of new formations and cells are published at %s ev/s, on the full-size server booted from its checkpoint.", c.queryDur/3, c.queryDur, count(c.queryRate)),
		fmt.Sprintf("**Fan-out (7).** N WebSockets on `/ws/events` (with `batch=1` when the server takes it), all greeted before the publisher starts; %d ev/s for %s; latency is from just before the publish call to the frame's receipt, for every event on every socket; the client readers run in this command, on the same cores.", c.fanoutRate, c.fanoutFor),
		"**Web view (8).** See its section; the server's memory is its VmRSS sampled every 100 ms from before the first navigation until 2 s after the last first-rows moment.",
		fmt.Sprintf("**Read your writes (11).** After the queries, on the same full-size server (with `--ryw-only`: a fresh server of each binary, its registry empty): one client admits a new cell with `POST /v1/events` and at once reads it back, write after write, %s at each of %s ev/s published over NATS meanwhile (the queries' traffic). Every other write is read with `min_seq=<the seq it was answered>`: POST, GET and POST + GET timed per write, a GET that misses its write failing the run; the others with a plain GET, counted found or 404.", c.rywFor, joinCounts(c.rywRates)),
		"Nothing here is asserted by a test; `.ci/run` runs `--quick` only to prove the command works.",
	}
	for _, it := range items {
		fmt.Fprintf(b, "- %s\n", it)
	}
}

func joinCounts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = count(n)
	}
	return strings.Join(s, ", ")
}
