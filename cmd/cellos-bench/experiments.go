package main

// experiments is the hand-measured part of docs/benchmarks.md: what was
// tried on the ingest path and on the rebuild's memory, the winners and
// the losers, with how each was measured. The command writes it back
// every time it regenerates the file; change it here when an experiment
// is re-run.
const experiments = `
## Experiments on the write path (hand-measured, kept here with the losers)

**Ingest with the projector running.** A throwaway harness published 200,000 demo events
over loopback TCP (4,096 in flight) into (a) a bare nats-server in its process, (b) the whole
program in its process, and read the process's CPU time (getrusage) per event from the first
publish to the projector's commit of the last one. Runs interleaved, 5 of each, medians; the
machine ran other work at load 5–10, so the event rates swung 3× between runs while CPU per
event stayed within ±15 %: CPU per event is the figure compared.

| variant | CPU per event (median of 5) | kept? |
|---|---|---|
| bare nats-server (the ceiling's cost) | 22.5 µs | — |
| the program at 2f14a14 | 58.8 µs | — |
| the WebSocket hub reads the stream only while a socket listens (it followed every event to nobody) | **46.2 µs** (0.79 ×) | **kept** |
| then the projector's connection over loopback TCP instead of the in-process pipe | 39.1 µs vs 39.2 µs for the pipe in the same run | no: no gain, and the pipe needs no port and keeps the internal user's secret in the process |
| then ` + "`GOGC=200`" + ` | 39.3 µs vs 39.2 µs | no: no gain; more memory |

Where the remaining ~17–24 µs per event beyond the bare server go (CPU profile of (b)): the
consumer's delivery inside nats-server ≈ 4 µs, nats.go receiving and parsing it (headers map,
metadata from the reply subject, a channel hand-off per message) ≈ 5 µs, decoding the CloudEvent
(fastjson's strict validation, then the parse) ≈ 2.8 µs, fold and bbolt commit ≈ 4 µs, and the
garbage collector ≈ 4 µs; the stream's own store path also costs more per event when the
projector competes for the two cores (smaller write batches, more pwrite calls per event).
On two cores the ratio is bound by CPU: the bare server and the publisher take ~1.6 cores at
its ceiling, so 70 % needs the projector at ≤ 9 µs per event all in. **Next design change**: a
lean pull loop of our own on the internal connection (pull requests by hand, the sequence
parsed from the reply subject without allocating, no header map, no per-message channel), and
commits that grow with the load (fewer rewrites of the same B+tree pages); both together are
worth ~6–8 µs by the profile, which would still leave the ratio near 55–60 % on this machine.

**Commit p99 at 5,000 ev/s.** With the same harness paced at 5,000 ev/s (50,000 events, one
commit every 200 ms): 52 commits, p99 in the (28.8 ms, 43.2 ms] bucket of
` + "`cellos_checkpoint_duration_seconds`" + `, under the 50 ms target; row 5 of the summary has the
figure the command measures in figure 6's busy phase.

**Memory of a full rebuild at 1,000,000 events** (` + "`VmHWM`" + ` of the binary, one run each,
same data dir):

| variant | peak RSS | rebuild time | kept? |
|---|---|---|---|
| before this work (the monitor read the oldest unapplied message while the consumer read ahead) | 1.0–1.5 GiB | — | — |
| the monitor asks only when the consumer is not plainly reading ahead | 630–770 MiB | unchanged | **kept** (JetStream held 128 MB of message blocks for those reads) |
| byte bounds on the write path (Batch cache 32 MiB, a decoded batch 256 KiB, a commit 16 MiB of payload) | within the noise of the line above | unchanged | **kept** (they bound what a stream of large events can make us hold) |
| ` + "`GOMEMLIMIT=256MiB`" + ` | 410 MiB | 3.4 × slower (the collector runs without pause) | no |
| ` + "`GOGC=50`" + ` | 548 MiB | slower | no |
| the consumer's read-ahead 8 → 2 MiB | no clear change | — | no |

What stays is mostly nats-server's: its per-subject index of the stream (about 70 B per
distinct subject, ~72 MiB per million retained events of the demo mix, there at a checkpoint
boot too: live heap 108 MiB after it) and the messages nats.go holds parsed between the
consumer and the fold; ours (the Batch's cache, a decoded batch, the commit) is bounded in
bytes above. ≤ 250 MiB "at any stream size" is therefore out of reach while nats-server keeps
that index in memory; the next change would be a stream whose subjects do not grow with the
entities (the entity id in a header instead of the subject), which changes the subject
contract of docs/design.md §2 and is not ours to make alone.

**Memory under a full-rate ingest (figure 10).** Both binaries sit at 1.2–1.8 GiB of RSS at the
end of each step (a million events published in ~25 s into a stream capped near a million),
flat over the ten steps, and their rebuilds peak at 1.1 GiB (now) and 1.4–1.6 GiB (before) on
those streams. A heap profile of the same burst in one process (500,000 events, a throwaway
harness) puts most of the heap in nats-server: message-block buffers taken from its pool
(168 MB), its per-subject index and the Nats-Msg-Id map of the 2-minute duplicate window
(every id of the last 2 minutes: at 40,000 ev/s, millions; nats-server also re-reads that
window at each start, which is the 3.5 s boot of figure 10, whose events were all published
within 2 minutes of the stop). What the projector holds is bounded in bytes (above). The
next changes: a shorter duplicate window for boxes that ingest in bursts (a stream setting,
never changed on an existing stream), and a soft memory limit sized to the box.
`
