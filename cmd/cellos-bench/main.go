// Command cellos-bench is the benchmark of the "Scale" issue: one run
// measures the cellos-allinone binary, prints the results and writes
// docs/benchmarks.md (a generated file) with its plots.
//
// The server is a black box: the command builds the binary from the
// checkout (or takes one with --bin) and reaches it only through its
// flags, its ports, the HTTP API, NATS and the files of its data dir, so
// it keeps working while the internals change. It builds the stream once
// per run from demo traffic (package demo, routed with event.Route,
// published with the CloudEvent id as Nats-Msg-Id) by running the binary
// with --sync interval, then reuses copies of that data dir.
//
// What it measures, with its ceiling where there is one:
//
//  1. boot from a checkpoint after a clean shutdown and after SIGKILL
//     (start → /readyz 200, beside the time the NATS port first answers),
//     at 10 %, 30 % and 100 % of --events;
//  2. the peak RSS (VmHWM) right after that boot, and its growth per
//     100,000 entities;
//  3. the full rebuild (checkpoint.db removed) and its rate, beside the
//     raw read rate of an ordered consumer on the same stream;
//  4. the publish rate with the projector running, beside a bare
//     nats-server in this process with the same store settings, and the
//     projector's lag after the last ack;
//  5. checkpoint.db bytes per entity and the checkpoint transaction p99
//     (the cellos_checkpoint_duration_seconds histogram);
//  6. GET /v1/cells?tenant=…&state=…&limit=100 latency idle and under ingest;
//  7. WebSocket fan-out latency at several socket counts and a fixed rate;
//  8. the web view's first rows in headless Chromium, and the server's
//     memory meanwhile.
//
// --before-bin or --before-ref adds a "before" binary measured side by
// side with "now" on the same data. --quick is the short run that CI
// makes to prove the command works; it writes to a temporary directory.
// Every load is bounded in count and time, everything binds loopback, and
// the command ends only the processes it started, by PID. No figure is
// asserted: the machine this runs on is shared and noisy.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := bench(ctx, os.Args[1:])
	stop()
	killChildren()
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		fmt.Fprintf(os.Stderr, "cellos-bench: %v\n", err)
		os.Exit(1)
	}
}
