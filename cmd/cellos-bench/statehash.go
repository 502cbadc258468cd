package main

// stateHash is the hand-measured section of docs/benchmarks.md on the
// state hash (docs/design.md §5): what one hash costs at 1 M events, and
// the command that measured it. The command writes it back every time it
// regenerates the file; change it here when it is measured again.
const stateHash = `
## State hash

The state hash (docs/design.md §5, "The state hash"; docs/operations.md, "snapshot hash")
reads every record of the state in one read transaction and digests it one entity at a
time. Measured by hand on a copy of a data dir holding 1,000,000 demo events (34,686
formations, tombstones included, and 168,886 cells; a state file of 83 MiB), with the
binary of this branch, on the machine of this page while other test suites ran on it (the
load average, on 2 cores, beside each figure):

| what | time | memory |
|---|---|---|
| one hash by the server, ` + "`GET /v1/status?hash=1`" + ` (` + "`integrity.hash.durationMs`" + `), 6 in a row after a boot from the checkpoint | 0.40–0.66 s (load 4.7); 2.5–4.9 s (load 13); the first after the data dir was copied, its pages read from disk, 1.8 s | the server's peak RSS 318 MiB with the hashes (the hash holds one entity at a time; the pages it reads are the file's mapping) |
| ` + "`snapshot hash --data-dir D --fold=false`" + ` (the state file's hash, process start to exit) | 0.73–0.91 s, of which the hash 0.69–0.87 s (3 runs, load 5) | peak RSS 92 MiB, most of it the mapped file |
| ` + "`snapshot hash --data-dir D`" + ` (and a fold of the stream into a scratch state, then its hash) | 28 s, the fold 26 s (load 12); a ` + "`snapshot rebuild`" + ` of the same data dir took 28 s beside it | peak RSS 749 MiB, about the rebuild's (730 MiB): the embedded NATS server reading the stream; folding through a running server's NATS (` + "`--server … --at 500000`" + `) peaked at 187 MiB |
| ` + "`go test ./store -run '^$' -bench 'Hash$'`" + ` (a state of 20,000 workload events, 4,057 entities) | 0.76–0.78 µs per entity (3 runs, load 4.5); 2.9–4.6 µs at load 12 | 1.3 MB and 50,205 allocations per hash (12 per entity: the decoded records) |

Commands:

` + "```" + `sh
cp -a D /tmp/h && cellos-allinone snapshot rebuild --data-dir /tmp/h     # a state file of this schema
time cellos-allinone snapshot hash --data-dir /tmp/h --fold=false
/usr/bin/time -v cellos-allinone snapshot hash --data-dir /tmp/h
cellos-allinone serve --data-dir /tmp/h &
curl -s 'http://127.0.0.1:8080/v1/status?hash=1' | jq .integrity.hash.durationMs
go test ./store -run '^$' -bench 'Hash$' -count 3
` + "```" + `

A hash holds the served lock's read side for its duration, as any read does: a compaction's
swap or a rebuild's promotion that comes meanwhile waits for it, and new reads wait behind
those — at most about half a second to a second at this size, and only when one of them coincides with a
hash someone asked for.
`
