package main

// scrubSection is the hand-measured cost of the state's background scrub
// (docs/durability.md, "The scrub"); the command writes it back every time
// it regenerates docs/benchmarks.md. Change it here when it is measured
// again.
const scrubSection = `
## Scrub

What one pass of the background scrub over the whole state costs, measured by hand on the
2-core VM of this page (shared with other work at the time: load average 5–6, so wall
times are high and the CPU time is the figure to compare). The state: the 1,000,000 demo
events of the benchmark's stream, rebuilt by this version (schema 6) into an 87 MB
` + "`checkpoint.db`" + ` of 994,814 keys (records, index entries, counts, aggregates, key table, meta).

` + "```sh" + `
cellos-allinone snapshot rebuild --data-dir <copy of the 1M data dir>
CELLOS_SCRUB_FILE=<copy>/checkpoint.db go test -count=1 -v -run TestScrubStateFile ./store
go test -run '^$' -bench BenchmarkScrub -benchtime 5x -count 3 ./store
cellos-allinone serve --data-dir <copy> --http-addr 127.0.0.1:18480 --nats-addr 127.0.0.1:14222 &
kill -9 $!   # once ready; then the same serve again, and GET /v1/status (integrity) until scrubbing is false
` + "```" + `

| pass over 1,000,000 events | CPU time | steps' wall time | pass wall time | steps |
|---|---|---|---|---|
| unthrottled (` + "`ScrubNow`" + `), five runs | 3.0–3.6 s | 4.1–5.5 s | 4.2–5.7 s | 1,072–1,184 |
| at the 5 % budget (the background scrub) | 3.9 s | 7.2 s | 2 min 27 s (steps 4.9 % of it) | 1,230 |

About 3 µs of CPU per key: a record is decoded and its 3–4 index keys looked up; an index
key is looked up, its record read and decoded (` + "`BenchmarkScrub`" + `, 100,000 events, 101,425
keys: 300–420 ms a pass, 2.0–2.5 µs of CPU per key). A day of a box at the default
` + "`--scrub-interval 24h`" + ` spends about 4 s of CPU on it at this size; the pass holds at most
5 % of one core and ends within minutes. Steps are bounded at 1,000 keys or 5 ms; the
longest single transactions are the aggregates' (12–23 ms: a walk of the keys of
` + "`ix-formation-tenant`" + ` and ` + "`ix-cell-tenant`" + `) and bbolt's check (48–102 ms, a write
transaction: the fold's next commit waits that long, reads do not). On the loaded VM single
steps of a walk reached 85–170 ms: the process descheduled within a step.

The real binary on a copy of that data dir, killed (SIGKILL) and started again: the start
finds ` + "`checkpoint.db.integrity`" + ` open, says so, serves at once and scrubs at 5 %: the pass took
3 min 11 s with 3.45 s of CPU, and the whole process used 6.2 s of CPU meanwhile (3.3 % of a
core: ` + "`/proc/<pid>/stat`" + ` before and after); at a quieter moment a pass took 1 min 11 s
with 2.7 s of CPU. With one ` + "`ix-cell-class`" + ` key deleted from the file beforehand (damage no
read meets), the scrub found it 11 s after the start, the repair rebuilt the state from the
stream in 11.7 s beside the served one and kept the damaged file aside, the next pass over
the rebuilt state was clean, and ` + "`snapshot verify`" + ` found it equal to the fold.
`
