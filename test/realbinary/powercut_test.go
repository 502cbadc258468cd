//go:build linux

package realbinary_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"cellos-allinone/test/lazyfs"
	"cellos-allinone/testutil"
)

// defaultPowerCutRounds is the rounds of each power-cut loop per run;
// CELLOS_POWERCUT_ROUNDS changes it.
const defaultPowerCutRounds = 20

// syncIntervalSlack is how much later than --sync-interval after its
// acknowledgement an event may still be lost under --sync interval:
// nats-server's sync timer fires every interval, and the fsyncs it then
// issues take their time on a loaded machine.
const syncIntervalSlack = time.Second

// httpPublisher posts traffic to POST /v1/events from a few workers and
// records the ids answered with 201 or 200, with the time of the answer.
type httpPublisher struct {
	url  string
	gen  *traffic
	stop atomic.Bool
	wg   sync.WaitGroup

	mu       sync.Mutex
	acked    []string
	ackedAt  []time.Time
	rejected int // 4xx: malformed traffic, never stored
	failed   int // no answer, or 5xx: the server died under it
}

func startHTTPPublisher(srv *server, gen *traffic, workers int) *httpPublisher {
	h := &httpPublisher{url: srv.HTTP + "/v1/events", gen: gen}
	client := &http.Client{Timeout: 5 * time.Second}
	for range workers {
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			for !h.stop.Load() {
				id, ev := gen.next()
				code := 0
				resp, err := client.Post(h.url, "application/cloudevents+json", bytes.NewReader(ev.Payload))
				if err == nil {
					code = resp.StatusCode
					resp.Body.Close()
				}
				at := time.Now()
				h.mu.Lock()
				switch {
				case code == http.StatusCreated || code == http.StatusOK:
					h.acked, h.ackedAt = append(h.acked, id), append(h.ackedAt, at)
				case code >= 400 && code < 500:
					h.rejected++
				default:
					h.failed++
				}
				h.mu.Unlock()
				if err != nil {
					return // the server is gone
				}
			}
		}()
	}
	return h
}

func (h *httpPublisher) finish() (acked []string, at []time.Time, rejected, failed int) {
	h.stop.Store(true)
	h.wg.Wait()
	return h.acked, h.ackedAt, h.rejected, h.failed
}

// logged reports whether one line of the process's whole log holds all of
// parts.
func (s *server) logged(t *testing.T, parts ...string) bool {
	t.Helper()
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}

// checkpointInfo is the part of `snapshot inspect -o json` the loops use.
type checkpointInfo struct {
	Gaps     []struct{ From, To uint64 }
	Epoch    string    `json:"epoch"`
	Cursor   uint64    `json:"cursor"`
	CursorID string    `json:"cursorId"`
	At       time.Time `json:"at"`
}

// inspectCheckpoint runs snapshot inspect on a data dir that no server
// uses; found is false when there is no checkpoint file.
func inspectCheckpoint(t *testing.T, bin, dataDir string) (cp checkpointInfo, found bool) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dataDir, "checkpoint.db")); os.IsNotExist(err) {
		return cp, false
	}
	code, out := tool(t, bin, time.Minute, "snapshot", "inspect", "--data-dir", dataDir, "-o", "json")
	if code != 0 || json.Unmarshal([]byte(out), &cp) != nil {
		t.Fatalf("snapshot inspect after the cut = exit %d: %s; want exit 0 and JSON: bbolt must survive a power cut", code, out)
	}
	return cp, true
}

// startRacing starts the server like startServer, but publishes while it
// boots: as soon as its NATS port answers, a burst of events goes out,
// racing the projector's judgement of the checkpoint, as supervisors do
// that keep publishing through a restart. It returns the acknowledged
// ids and when they were acknowledged.
func startRacing(t *testing.T, bin, dataDir, logDir, name string, args []string, gen *traffic) (srv *server, acked []string, ackedAt []time.Time) {
	t.Helper()
	s, err := launch(t, bin, dataDir, filepath.Join(logDir, name+".log"), args)
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	var nc *nats.Conn
	testutil.Poll(30*time.Second, time.Millisecond, func() bool {
		if !s.running() {
			return true
		}
		nc, err = nats.Connect(s.NATS, nats.Timeout(time.Second), nats.ReconnectBufSize(-1),
			nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
		return err == nil
	})
	if nc != nil {
		pub := startPublisher(t, nc, gen)
		testutil.Poll(10*time.Second, time.Millisecond, func() bool { return pub.sent.Load() >= raceBurst || !s.running() })
		acked, _ = pub.finish(t)
		ackedAt = pub.ackTimes()[:len(acked)]
		nc.Close()
	}
	if err := s.waitReady(90 * time.Second); err != nil {
		s.kill(t)
		if errors.Is(err, errPortTaken) {
			t.Logf("%s: %v; starting it again without the race", name, err)
			return startServer(t, bin, dataDir, logDir, name+"-again", args...), acked, ackedAt
		}
		t.Fatalf("start %s: %v\n%s", name, err, s.logTail())
	}
	return s, acked, ackedAt
}

// raceBurst is how many events startRacing publishes during a boot.
const raceBurst = 300

// cutTally is what a power-cut loop saw over all its rounds.
type cutTally struct {
	rounds, torn                 int
	ackedNATS, ackedHTTP         int
	lost                         int
	maxLostAge                   time.Duration
	beyond, changed              int // checkpoints discarded: cursor beyond the stream, another message at it
	checkpointUsed, noCheckpoint int
	bytesDiscarded               int64
	holes                        int // cuts that left a new hole in the stream
	holeBelow                    int // checkpoints discarded for a hole below their cursor
}

// TestPowerCutSyncAlways: with --sync always no acknowledged event is ever
// lost to a power cut.
func TestPowerCutSyncAlways(t *testing.T) { powerCutLoop(t, "always") }

// TestPowerCutSyncInterval: with --sync interval a power cut loses at most
// the events acknowledged within the last interval.
func TestPowerCutSyncInterval(t *testing.T) { powerCutLoop(t, "interval") }

// powerCutLoop runs the server with its whole data dir on lazyfs. Each
// round publishes over NATS (Nats-Msg-Id = CloudEvent id) and HTTP at full
// speed, SIGKILLs the server at a random moment, cuts the power (unsynced
// data discarded whole or torn at a page), restarts on what survived and
// checks: the server becomes ready; every acknowledged event is in the
// stream once (--sync always) or only events acknowledged within the last
// interval are missing (--sync interval); the stream has no holes; the
// stream's epoch never changes; the checkpoint is used exactly when it
// still matches the stream, and discarded (boot log and /v1/status) when
// the stream lost its cursor; snapshot verify passes.
func powerCutLoop(t *testing.T, syncMode string) {
	requireLong(t)
	bin := binary(t)
	seed, rounds := loopSize(t, "CELLOS_POWERCUT", defaultPowerCutRounds)
	interval := time.Second
	args := []string{"--sync", syncMode, "--checkpoint-events", "200"}
	if syncMode == "interval" {
		args = append(args, "--sync-interval", interval.String())
	}
	t.Logf("seed %d (replay with CELLOS_POWERCUT_SEED=%d), %d rounds, serve %s", seed, seed, rounds, strings.Join(args, " "))
	rng := rand.New(rand.NewPCG(seed, 3))
	gen := newTraffic(seed)
	tmp := t.TempDir()
	backing := filepath.Join(tmp, "backing")
	if err := os.Mkdir(backing, 0o750); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	m := lazyfs.Mount(t, backing)
	srv := startServer(t, bin, m.Dir(), tmp, "p00", args...)
	st0 := srv.waitQuiet(t, 30*time.Second)
	epoch := st0.Epoch

	var (
		tally   cutTally
		acked   []string            // every id acknowledged, all rounds
		lostIDs = map[string]bool{} // acknowledged and lost to an earlier cut
		// Acknowledged during the last boot: they count to the next cut.
		carryIDs []string
		carryAt  []time.Time
		// Sequences missing in the stream after the last round.
		prevGapped uint64
	)
	for r := 1; r <= rounds && !t.Failed(); r++ {
		nc := srv.connect(t)
		pub := startPublisher(t, nc, gen)
		hp := startHTTPPublisher(srv, gen, 2)
		select {
		case <-pub.firstAck:
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: no publish acknowledged within 30s\n%s", r, srv.logTail())
		}
		// The cut point, at random from the first ack on: not a
		// synchronisation.
		// Under --sync interval rounds also last several intervals, so
		// that a sync that never happens would show.
		delay := time.Duration(200+rng.IntN(1301)) * time.Millisecond
		if syncMode == "interval" {
			delay = time.Duration(200+rng.IntN(3301)) * time.Millisecond
		}
		time.Sleep(delay)
		// The last checkpoint written before the cut: bbolt fsyncs every
		// commit, so the cut must keep it or a later one.
		before, err := srv.status()
		if err != nil {
			t.Fatalf("round %d: %v", r, err)
		}
		srv.kill(t)
		killedAt := time.Now()
		natsAcked, _ := pub.finish(t)
		natsAt := pub.ackTimes()
		httpAcked, httpAt, _, _ := hp.finish()
		nc.Close()
		roundIDs := append(append(carryIDs, natsAcked...), httpAcked...)
		roundAt := append(append(carryAt, natsAt[:len(natsAcked)]...), httpAt...)
		earlier := acked
		acked = append(acked, roundIDs...)
		tally.ackedNATS += len(natsAcked) + len(carryIDs)
		burst := len(carryIDs)
		tally.ackedHTTP += len(httpAcked)

		mode := lazyfs.Whole
		if rng.IntN(2) == 0 {
			mode = lazyfs.Torn
			tally.torn++
		}
		rep, err := m.Cut(mode, rand.New(rand.NewPCG(seed, uint64(r))))
		if err != nil {
			t.Fatalf("round %d: %v", r, err)
		}
		tally.bytesDiscarded += rep.BytesDiscarded
		if testing.Verbose() {
			t.Logf("round %d: %s", r, rep)
		}
		cp, cpFound := inspectCheckpoint(t, bin, backing)
		if at := before.Checkpoint.At; at != nil && (!cpFound || cp.At.Before(*at)) {
			t.Errorf("round %d: the checkpoint written at %s (cursor %d) before the cut is gone: the file now holds one of %s (cursor %d, found %v)",
				r, at.Format(time.RFC3339Nano), before.Checkpoint.Cursor, cp.At.Format(time.RFC3339Nano), cp.Cursor, cpFound)
		}

		// Check 4 and the first half of 3: the server becomes ready on
		// what survived (startServer fails the test with its log if not).
		m = lazyfs.Mount(t, backing)
		srv, carryIDs, carryAt = startRacing(t, bin, m.Dir(), tmp, fmt.Sprintf("p%02d", r), args, gen)
		st := srv.waitQuiet(t, 60*time.Second)
		nc = srv.connect(t)
		inStream, lastSeq, read, idAt, missing := streamIDsAt(t, nc, cp.Cursor)
		nc.Close()

		if st.Epoch != epoch {
			t.Errorf("round %d: the stream's epoch is %s, was %s: the cut lost the stream's creation", r, st.Epoch, epoch)
		}
		// Under --sync interval a torn cut can keep a later block's
		// unsynced pages and lose an earlier one's (the kernel writes
		// pages back in any order): the stream then has a hole, which
		// the projection must record as a gap. Under --sync always
		// nothing acknowledged is lost, so there is no hole.
		var gapped uint64
		for _, raw := range st.Gaps {
			var g struct{ From, To uint64 }
			if err := json.Unmarshal(raw, &g); err != nil {
				t.Fatalf("round %d: gap %s: %v", r, raw, err)
			}
			gapped += g.To - g.From + 1
		}
		if gapped > prevGapped {
			tally.holes++ // the stream's holes stay: count the new ones
		}
		prevGapped = gapped
		if lastSeq != st.Cursor || read+gapped != lastSeq || syncMode == "always" && gapped > 0 {
			t.Errorf("round %d: the stream ends at #%d and holds %d messages from #1, the projection records %d missing (gaps %s); the served cursor is %d: want the cursor at the end, and every sequence held or a gap",
				r, lastSeq, read, gapped, st.Gaps, st.Cursor)
		}
		if n := st.Events.Applied + st.Events.Ignored + st.Events.Malformed + st.Events.Rejected; n+gapped != st.Cursor {
			t.Errorf("round %d: counters %+v sum to %d, gaps cover %d; want every one of the %d events counted once", r, st.Events, n, gapped, st.Cursor)
		}

		// Checks 1 and 2: what was lost, and how old it was at the cut.
		roundLost, maxAge := 0, time.Duration(0)
		for i, id := range roundIDs {
			switch n := inStream[id]; {
			case n == 0:
				lostIDs[id] = true
				roundLost++
				maxAge = max(maxAge, killedAt.Sub(roundAt[i]))
			case n > 1:
				t.Errorf("round %d: acknowledged event %s is %d times in the stream", r, id, n)
			}
		}
		for _, id := range earlier {
			if inStream[id] == 0 && !lostIDs[id] {
				t.Errorf("round %d: event %s, acknowledged and present after an earlier round, is gone", r, id)
			}
		}
		tally.lost += roundLost
		tally.maxLostAge = max(tally.maxLostAge, maxAge)
		switch {
		case syncMode == "always" && roundLost > 0:
			t.Errorf("round %d: --sync always lost %d of %d acknowledged events (the oldest acknowledged %s before the cut)", r, roundLost, len(roundIDs), maxAge)
		case syncMode == "interval" && maxAge > interval+syncIntervalSlack:
			t.Errorf("round %d: --sync interval %s lost an event acknowledged %s before the cut; want at most %s", r, interval, maxAge, interval+syncIntervalSlack)
		}

		// Check 3: the checkpoint is judged by what the stream holds. The
		// publishes racing the boot may have filled the stream up to and
		// past the checkpoint's cursor before the boot looked (JetStream
		// handing lost sequence numbers to new events: the message at
		// the cursor changed) or not yet (the cursor beyond the stream).
		// Or a hole below an intact cursor: the stream no longer holds
		// a sequence the checkpoint folded.
		got := st.Boot.Rebuild
		hole := false
		for _, seq := range missing {
			skipped := false
			for _, g := range cp.Gaps {
				skipped = skipped || seq >= g.From && seq <= g.To
			}
			hole = hole || seq <= cp.Cursor && !skipped
		}
		diverged := cpFound && cp.Cursor > 0 && (cp.Cursor > lastSeq || idAt != cp.CursorID || hole)
		switch {
		case !cpFound || cp.Cursor == 0:
			tally.noCheckpoint++
		case !diverged:
			tally.checkpointUsed++
		case strings.HasPrefix(got, "cursor_beyond_stream"):
			tally.beyond++
		case strings.HasPrefix(got, "cursor_message_changed") && cp.Cursor <= lastSeq:
			tally.changed++
		case strings.HasPrefix(got, "hole_below_cursor") && hole:
			tally.holeBelow++
		}
		switch reason, _, _ := strings.Cut(got, ":"); {
		case !diverged && got != "":
			t.Errorf("round %d: boot discarded the checkpoint (%q) although the stream still holds its cursor #%d (%s)", r, got, cp.Cursor, cp.CursorID)
		case diverged && reason != "cursor_beyond_stream" && (reason != "cursor_message_changed" || cp.Cursor > lastSeq) && (reason != "hole_below_cursor" || !hole):
			t.Errorf("round %d: checkpoint at #%d (%s), the stream ends at #%d and holds %q there: boot.rebuild = %q, want it discarded for divergence", r, cp.Cursor, cp.CursorID, lastSeq, idAt, got)
		case diverged && !srv.logged(t, "checkpoint discarded; rebuilding from the stream", `reason="`+reason):
			t.Errorf("round %d: boot.rebuild = %q but the boot log does not say \"checkpoint discarded\" with reason %s\n%s", r, got, reason, srv.logTail())
		}
		checkFold(t, bin, srv, r)
		t.Logf("round %2d: cut %s %4dms after the first ack (%d files, %d bytes discarded): acked nats %5d (%3d while booting) http %4d, lost %4d (oldest %s before the cut); "+
			"stream #%d; checkpoint #%d, boot rebuild %q, replayed %d in %dms",
			r, mode, delay.Milliseconds(), len(rep.Files), rep.BytesDiscarded, len(natsAcked)+burst, burst, len(httpAcked), roundLost, maxAge.Round(time.Millisecond),
			lastSeq, cp.Cursor, st.Boot.Rebuild, st.Boot.Replayed, st.Boot.DurationMs)
		tally.rounds++
	}
	if t.Failed() {
		return
	}
	if code, _ := srv.terminate(t, 20*time.Second); code != 0 {
		t.Errorf("after SIGTERM: exit %d, want 0\n%s", code, srv.logTail())
	}
	t.Logf("power cuts, --sync %s: %d rounds (%d torn) in %s: %d events acknowledged (nats %d, http %d), %d lost (oldest %s before its cut); "+
		"checkpoint used %d, discarded for divergence %d (cursor beyond the stream %d, another message at the cursor %d, a hole below the cursor %d), none %d; holes %d",
		syncMode, tally.rounds, tally.torn, time.Since(begin).Round(time.Second), tally.ackedNATS+tally.ackedHTTP, tally.ackedNATS, tally.ackedHTTP,
		tally.lost, tally.maxLostAge.Round(time.Millisecond), tally.checkpointUsed, tally.beyond+tally.changed+tally.holeBelow, tally.beyond, tally.changed, tally.holeBelow, tally.noCheckpoint, tally.holes)
}

// TestPowerCutCheckpoint cuts the power under the checkpoint alone: the
// data dir is on lazyfs, but its jetstream directory is a symlink to an
// ordinary directory, so the log keeps everything (as after a process
// crash) while bbolt's commits lose what was not fsynced. The projector
// commits every 50 events under a full-speed publisher. After every cut
// the checkpoint file opens, holds the last commit made before the cut or
// a later one, and the boot uses it (the log still holds its cursor):
// no rebuild, only the events after it replayed; every acknowledged event
// is in the stream once and snapshot verify passes.
func TestPowerCutCheckpoint(t *testing.T) {
	requireLong(t)
	bin := binary(t)
	seed, rounds := loopSize(t, "CELLOS_POWERCUT", defaultPowerCutRounds)
	args := []string{"--sync", "interval", "--checkpoint-events", "50"}
	t.Logf("seed %d (replay with CELLOS_POWERCUT_SEED=%d), %d rounds, serve %s", seed, seed, rounds, strings.Join(args, " "))
	rng := rand.New(rand.NewPCG(seed, 4))
	gen := newTraffic(seed)
	tmp := t.TempDir()
	backing, logDir := filepath.Join(tmp, "backing"), filepath.Join(tmp, "log", "jetstream")
	for _, d := range []string{backing, logDir} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(logDir, filepath.Join(backing, "jetstream")); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	m := lazyfs.Mount(t, backing)
	srv := startServer(t, bin, m.Dir(), tmp, "c00", args...)
	var (
		acked                []string
		used, replayed, torn int
		discarded            int64
	)
	for r := 1; r <= rounds && !t.Failed(); r++ {
		nc := srv.connect(t)
		pub := startPublisher(t, nc, gen)
		select {
		case <-pub.firstAck:
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: no publish acknowledged within 30s\n%s", r, srv.logTail())
		}
		delay := time.Duration(200+rng.IntN(1301)) * time.Millisecond
		time.Sleep(delay) // the cut point, at random: not a synchronisation
		before, err := srv.status()
		if err != nil {
			t.Fatalf("round %d: %v", r, err)
		}
		srv.kill(t)
		roundAcked, _ := pub.finish(t)
		nc.Close()
		acked = append(acked, roundAcked...)
		mode := lazyfs.Whole
		if rng.IntN(2) == 0 {
			mode, torn = lazyfs.Torn, torn+1
		}
		rep, err := m.Cut(mode, rand.New(rand.NewPCG(seed, uint64(r))))
		if err != nil {
			t.Fatalf("round %d: %v", r, err)
		}
		discarded += rep.BytesDiscarded
		cp, found := inspectCheckpoint(t, bin, backing)
		if at := before.Checkpoint.At; at != nil && (!found || cp.At.Before(*at)) {
			t.Errorf("round %d: the checkpoint committed at %s (cursor %d) before the cut is gone; the file holds cursor %d of %s (found %v)\n%s",
				r, at.Format(time.RFC3339Nano), before.Checkpoint.Cursor, cp.Cursor, cp.At.Format(time.RFC3339Nano), found, rep)
		}

		m = lazyfs.Mount(t, backing)
		srv = startServer(t, bin, m.Dir(), tmp, fmt.Sprintf("c%02d", r), args...)
		st := srv.waitQuiet(t, 60*time.Second)
		if st.Boot.Rebuild != "" || st.Boot.CheckpointCursor != cp.Cursor {
			t.Errorf("round %d: boot used checkpoint cursor %d (rebuild %q); the file holds cursor %d and the log all of it: want it used", r, st.Boot.CheckpointCursor, st.Boot.Rebuild, cp.Cursor)
		} else if found {
			used++
		}
		replayed += int(st.Boot.Replayed)
		nc = srv.connect(t)
		checkAcked(t, r, nc, st, acked)
		nc.Close()
		checkFold(t, bin, srv, r)
		t.Logf("round %2d: cut %s %4dms after the first ack (%d bytes discarded): acked %5d; checkpoint before the cut #%d, after #%d; stream #%d, replayed %d",
			r, mode, delay.Milliseconds(), rep.BytesDiscarded, len(roundAcked), before.Checkpoint.Cursor, cp.Cursor, st.Stream.LastSeq, st.Boot.Replayed)
	}
	if t.Failed() {
		return
	}
	if code, _ := srv.terminate(t, 20*time.Second); code != 0 {
		t.Errorf("after SIGTERM: exit %d, want 0\n%s", code, srv.logTail())
	}
	t.Logf("power cuts under the checkpoint: %d rounds (%d torn) in %s: %d events acknowledged, none lost; checkpoint used after %d cuts, %d bytes of unsynced commits discarded, %d events replayed in all",
		rounds, torn, time.Since(begin).Round(time.Second), len(acked), used, discarded, replayed)
}

// TestPowerCutRightAfterStreamCreation cuts the power a moment after the
// server created the stream on an empty data dir, under --sync interval
// with an interval longer than the test (so nats-server syncs nothing on
// its own): the stream survives with its creation time (epoch), so the
// next start neither rebuilds for a new epoch nor ends sockets with 4410.
func TestPowerCutRightAfterStreamCreation(t *testing.T) {
	requireLong(t)
	bin := binary(t)
	args := []string{"--sync", "interval", "--sync-interval", "10m"}
	for r := 1; r <= 3; r++ {
		tmp := t.TempDir()
		backing := filepath.Join(tmp, "backing")
		if err := os.Mkdir(backing, 0o750); err != nil {
			t.Fatal(err)
		}
		m := lazyfs.Mount(t, backing)
		srv := startServer(t, bin, m.Dir(), tmp, "first", args...)
		st, err := srv.status()
		if err != nil {
			t.Fatal(err)
		}
		nc := srv.connect(t)
		if _, err := testutil.Publish(nc, testutil.Formation(fmt.Sprintf("f-%d", r), "created", nil)); err != nil {
			t.Fatal(err)
		}
		nc.Close()
		srv.kill(t)
		mode := lazyfs.Whole
		if r == 2 {
			mode = lazyfs.Torn
		}
		rep, err := m.Cut(mode, rand.New(rand.NewPCG(uint64(r), 5)))
		if err != nil {
			t.Fatal(err)
		}
		m = lazyfs.Mount(t, backing)
		srv = startServer(t, bin, m.Dir(), tmp, "after-cut", args...)
		after := srv.waitQuiet(t, 30*time.Second)
		if after.Epoch != st.Epoch || strings.HasPrefix(after.Boot.Rebuild, "epoch_changed") || srv.logged(t, "checksums do not match") {
			t.Fatalf("cut %d (%s): the epoch was %s before the cut and is %s after it, boot.rebuild %q: want the stream's creation kept\n%s\n%s",
				r, mode, st.Epoch, after.Epoch, after.Boot.Rebuild, rep, srv.logTail())
		}
		t.Logf("cut %d (%s) right after the creation: epoch %s kept, boot.rebuild %q, %d path(s) removed by the cut", r, mode, after.Epoch, after.Boot.Rebuild, len(rep.Removed))
		if code, _ := srv.terminate(t, 20*time.Second); code != 0 {
			t.Fatalf("after SIGTERM: exit %d\n%s", code, srv.logTail())
		}
	}
}
