package realbinary_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

const defaultRounds = 24

// serveArgs are the serve flags of the process that publishes in round r:
// checkpoints every 200 events, so that they happen mid-round; every
// fourth round --sync interval, the others the product's default
// (--sync always).
func serveArgs(r int) (args []string, mode string) {
	args = []string{"--checkpoint-events", "200"}
	if r%4 == 0 {
		return append(args, "--sync", "interval"), "interval"
	}
	return args, "always"
}

// Each round publishes at full speed, SIGKILLs the binary at a random
// moment, restarts it on the same data dir and proves that the served
// projection equals a fold of the log and that every acknowledged event
// is in the log.
func TestCrashLoop(t *testing.T) {
	requireLong(t)
	bin := binary(t)
	seed, rounds := loopSize(t, "CELLOS_CRASHLOOP", defaultRounds)
	t.Logf("seed %d (replay with CELLOS_CRASHLOOP_SEED=%d), %d rounds", seed, seed, rounds)
	rng := rand.New(rand.NewPCG(seed, 1))
	gen := newTraffic(seed)
	tmp := t.TempDir()
	dataDir := filepath.Join(tmp, "data")
	begin := time.Now()

	args, _ := serveArgs(1)
	srv := startServer(t, bin, dataDir, tmp, "p00", args...)
	nc := srv.connect(t)
	var (
		acked     []string // every id acknowledged, all rounds
		lastSeq   uint64
		lastBoot  int64
		totalBoot int64
	)
	for r := 1; r <= rounds && !t.Failed(); r++ {
		_, mode := serveArgs(r)
		delay := time.Duration(100+rng.IntN(701)) * time.Millisecond
		pub := startPublisher(t, nc, gen)
		select {
		case <-pub.firstAck:
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: no publish acknowledged within 30s\n%s", r, srv.logTail())
		}
		// The crash point, at random from the first ack on: not a
		// synchronisation.
		time.Sleep(delay)
		inFlight := pub.js.PublishAsyncPending()
		select {
		case <-pub.done:
			t.Fatalf("round %d: the publisher stopped before the kill: %v", r, pub.err)
		default:
		}
		srv.kill(t)
		roundAcked, failed := pub.finish(t)
		nc.Close()
		acked = append(acked, roundAcked...)

		next, _ := serveArgs(r + 1)
		srv = startServer(t, bin, dataDir, tmp, fmt.Sprintf("p%02d", r), next...)
		nc = srv.connect(t)
		st := srv.waitQuiet(t, 60*time.Second)
		b := st.Boot
		t.Logf("round %2d: sync %-8s killed %3dms after the first ack, %4d publishes in flight: sent %5d, acked %5d, failed %4d; "+
			"stream #%d (+%d, %d stored without an ack); boot checkpointCursor %d replayed %d rebuild %q durationMs %d",
			r, mode, delay.Milliseconds(), inFlight, pub.sent.Load(), len(roundAcked), failed,
			st.Stream.LastSeq, st.Stream.LastSeq-lastSeq, int64(st.Stream.LastSeq-lastSeq)-int64(len(roundAcked)),
			b.CheckpointCursor, b.Replayed, b.Rebuild, b.DurationMs)
		checkBoot(t, r, st)
		checkAcked(t, r, nc, st, acked)
		checkFold(t, bin, srv, r)
		lastSeq, lastBoot, totalBoot = st.Stream.LastSeq, b.DurationMs, totalBoot+b.DurationMs
	}
	if t.Failed() {
		return
	}

	// The last process stops gracefully and leaves a final checkpoint.
	nc.Close()
	code, took := srv.terminate(t, 20*time.Second)
	if log := srv.logTail(); code != 0 || !strings.Contains(log, "stopped cleanly") {
		t.Fatalf("after SIGTERM: exit %d, want 0 and \"stopped cleanly\" in the log\n%s", code, log)
	}
	code, out := tool(t, bin, time.Minute, "snapshot", "inspect", "--data-dir", dataDir, "-o", "json")
	var in struct {
		Cursor uint64 `json:"cursor"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &in) != nil || in.Cursor != lastSeq {
		t.Fatalf("snapshot inspect after SIGTERM = %d %s, want exit 0 and cursor %d", code, out, lastSeq)
	}
	t.Logf("%d rounds in %s: %d events acknowledged, stream ends at #%d; boot durationMs last %d, mean %d; SIGTERM exit 0 in %s, final checkpoint at cursor %d",
		rounds, time.Since(begin).Round(time.Millisecond), len(acked), lastSeq, lastBoot, totalBoot/int64(rounds),
		took.Round(time.Millisecond), in.Cursor)
}

// checkBoot: a process crash never invalidates the checkpoint; after the
// first round only what came after it is replayed; every event is counted
// exactly once (applied, ignored or malformed) across all the crashes.
func checkBoot(t *testing.T, r int, st status) {
	t.Helper()
	b := st.Boot
	if b.Rebuild != "" {
		t.Errorf("round %d: boot discarded the checkpoint (%q) after a process crash", r, b.Rebuild)
		return
	}
	if b.ReplayTo != st.Stream.LastSeq || b.Replayed != b.ReplayTo-b.CheckpointCursor || b.ReplayFrom != b.CheckpointCursor+1 {
		t.Errorf("round %d: boot %+v on a stream ending at #%d, want replay from checkpointCursor+1 through the last sequence", r, b, st.Stream.LastSeq)
	}
	if r > 1 && b.Replayed >= b.ReplayTo {
		t.Errorf("round %d: boot replayed %d of %d events: the checkpoint was not used", r, b.Replayed, b.ReplayTo)
	}
	if n := st.Events.Applied + st.Events.Ignored + st.Events.Malformed + st.Events.Rejected; n != st.Cursor || len(st.Gaps) != 0 {
		t.Errorf("round %d: counters %+v sum to %d, gaps %d; want every one of the %d events counted once and no gap", r, st.Events, n, len(st.Gaps), st.Cursor)
	}
}

// checkAcked is invariant 2: every acknowledged id is in the stream, once.
// It reads the whole stream, which must also end where the server's
// status says, without holes.
func checkAcked(t *testing.T, r int, nc *nats.Conn, st status, acked []string) {
	t.Helper()
	inStream, lastSeq, read := streamIDs(t, nc)
	if lastSeq != st.Cursor || read != lastSeq {
		t.Errorf("round %d: the stream ends at #%d and holds %d messages from #1; the served cursor is %d: want all three equal", r, lastSeq, read, st.Cursor)
	}
	var lost []string
	for _, id := range acked {
		switch n := inStream[id]; {
		case n == 0:
			lost = append(lost, id)
		case n > 1:
			t.Errorf("round %d: acknowledged event %s is %d times in the stream", r, id, n)
		}
	}
	if len(lost) > 0 {
		t.Errorf("round %d: %d of %d acknowledged events are not in the stream, first %s", r, len(lost), len(acked), strings.Join(lost[:min(5, len(lost))], ", "))
	}
}

// checkFold is invariant 1: the served registry equals a fold of the log.
func checkFold(t *testing.T, bin string, srv *server, r int) {
	t.Helper()
	code, out := tool(t, bin, 2*time.Minute, "snapshot", "verify", "--server", srv.HTTP, "--nats-url", srv.NATS)
	if code != 0 {
		t.Errorf("round %d: snapshot verify = exit %d, want 0:\n%s", r, code, out)
	}
}

// loopSize reads a loop's seed (prefix_SEED, random by default) and its
// rounds (prefix_ROUNDS, at least 1).
func loopSize(t *testing.T, prefix string, defRounds int) (seed uint64, rounds int) {
	t.Helper()
	seed = envUint(t, prefix+"_SEED", rand.Uint64())
	rounds = int(envUint(t, prefix+"_ROUNDS", uint64(defRounds)))
	if rounds < 1 {
		t.Fatalf("%s_ROUNDS: want at least 1", prefix)
	}
	return seed, rounds
}

func envUint(t *testing.T, name string, def uint64) uint64 {
	t.Helper()
	v, ok := os.LookupEnv(name)
	if !ok {
		return def
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		t.Fatalf("%s=%q: want a number", name, v)
	}
	return n
}
