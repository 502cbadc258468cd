package realbinary_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"cellos-allinone/testutil"
)

// wsFrame is the part of a /ws/events frame these tests read.
type wsFrame struct {
	Type    string `json:"type"`
	Seq     uint64 `json:"seq"`
	LastSeq uint64 `json:"lastSeq"`
	Epoch   string `json:"epoch"`
}

// wsDial opens /ws/events?query on s and reads its hello.
func wsDial(ctx context.Context, s *server, query string) (*websocket.Conn, wsFrame, error) {
	url := strings.Replace(s.HTTP, "http://", "ws://", 1) + "/ws/events?" + query
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		return nil, wsFrame{}, err
	}
	c.SetReadLimit(4 << 20)
	hello, err := wsRead(ctx, c)
	if err == nil && hello.Type != "hello" {
		err = fmt.Errorf("first frame %+v, want hello", hello)
	}
	if err != nil {
		c.CloseNow()
		return nil, wsFrame{}, err
	}
	return c, hello, nil
}

func wsRead(ctx context.Context, c *websocket.Conn) (wsFrame, error) {
	_, b, err := c.Read(ctx)
	if err != nil {
		return wsFrame{}, err
	}
	var f wsFrame
	return f, json.Unmarshal(b, &f)
}

// `nats stream rm` on a running server, with sockets open — once with the
// server creating the stream again, once with an operator creating it and
// publishing at once: every socket of the old incarnation ends with 4410
// naming the new epoch within a few seconds, and new sockets (live-only,
// and since=0&epoch=<new>) get every event of the new incarnation.
func TestStreamRemovedUnderOpenSockets(t *testing.T) {
	requireLong(t)
	bin := binary(t)
	for _, recreate := range []string{"by the server", "by an operator"} {
		t.Run(strings.ReplaceAll(recreate, " ", "_"), func(t *testing.T) {
			tmp := t.TempDir()
			srv := startServer(t, bin, tmp+"/data", tmp, "server")
			nc := srv.connect(t)
			testutil.MustPublish(t, nc, testutil.Workload(200)...)
			srv.waitQuiet(t, 30*time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			var socks []*websocket.Conn
			var oldEpoch string
			for _, q := range []string{"", "since=0", "since=150", "since=0&subject=cellos.events.cell.>"} {
				c, hello, err := wsDial(ctx, srv, q)
				if err != nil {
					t.Fatalf("dial ?%s: %v", q, err)
				}
				defer c.CloseNow()
				socks, oldEpoch = append(socks, c), hello.Epoch
			}
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			if err := js.DeleteStream(ctx, streamName); err != nil {
				t.Fatal(err)
			}
			removed := time.Now()
			if recreate == "by an operator" {
				// The server creates a deleted stream again at once: an
				// operator's add may find it there already.
				_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: streamName, Subjects: []string{"cellos.events.>"}, Storage: jetstream.FileStorage})
				if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
					t.Fatal(err)
				}
				testutil.MustPublish(t, nc, testutil.Workload(3)...)
			}
			newEpoch := ""
			for i, c := range socks {
				code, reason := testutil.ReadClose(t, c, 10*time.Second)
				var r struct {
					FirstSeq uint64 `json:"firstSeq"`
					Epoch    string `json:"epoch"`
				}
				if code != 4410 || json.Unmarshal([]byte(reason), &r) != nil || r.Epoch == "" || r.Epoch == oldEpoch {
					t.Fatalf("socket %d: closed %d %q, want 4410 with the new epoch (old %s)", i, code, reason, oldEpoch)
				}
				newEpoch = r.Epoch
			}
			t.Logf("all %d sockets closed with 4410 %s after the removal (epoch %s → %s)", len(socks), time.Since(removed).Round(time.Millisecond), oldEpoch, newEpoch)

			fromStart, hello, err := wsDial(ctx, srv, "since=0&epoch="+newEpoch)
			if err != nil {
				t.Fatalf("dial since=0&epoch=%s: %v", newEpoch, err)
			}
			defer fromStart.CloseNow()
			live, liveHello, err := wsDial(ctx, srv, "")
			if err != nil {
				t.Fatal(err)
			}
			defer live.CloseNow()
			if hello.Epoch != newEpoch || liveHello.Epoch != newEpoch {
				t.Fatalf("hellos after the recreation name epochs %q and %q, want %q", hello.Epoch, liveHello.Epoch, newEpoch)
			}
			seqs := testutil.MustPublish(t, nc, testutil.Workload(20)...)
			last := seqs[len(seqs)-1]
			for name, c := range map[string]*websocket.Conn{"since=0": fromStart, "live-only": live} {
				prev := uint64(0)
				if name == "live-only" {
					prev = liveHello.LastSeq
				}
				for prev < last {
					f, err := wsRead(ctx, c)
					if err != nil {
						t.Fatalf("%s after seq %d: %v", name, prev, err)
					}
					if f.Seq != prev+1 {
						t.Fatalf("%s: seq %d after %d, want %d", name, f.Seq, prev, prev+1)
					}
					prev = f.Seq
				}
			}
		})
	}
}

// With a byte cap (an edge disk) and a steady publisher the floor moves
// all the time. A resume either delivers exactly since+1, since+2, … or
// ends with 4410 (410 for GET /v1/events) — never starts late or jumps.
func TestResumeNeverJumpsWhenTheFloorMoves(t *testing.T) {
	requireLong(t)
	bin := binary(t)
	tmp := t.TempDir()
	srv := startServer(t, bin, tmp+"/data", tmp, "server", "--max-bytes", "262144", "--sync", "interval")
	nc := srv.connect(t)
	ctx := testutil.Ctx(t, 3*time.Minute)

	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() { publishSteadily(t, nc, &stop) })
	defer func() { stop.Store(true); wg.Wait() }()
	testutil.WaitFor(t, 20*time.Second, "the floor to move", func() bool {
		st, err := srv.status()
		return err == nil && st.Stream.FirstSeq > 1000
	})

	const resumes = 150
	var exact, expired, jumps int
	for i := range resumes {
		st, err := srv.status()
		if err != nil {
			t.Fatal(err)
		}
		// Just above the floor: the floor overtakes many of these reads.
		since := st.Stream.FirstSeq + uint64(i%20)
		if i%2 == 0 {
			switch ws := resumeWS(ctx, t, srv, since, 200); ws {
			case "exact":
				exact++
			case "4410":
				expired++
			default:
				jumps++
				t.Errorf("resume %d (WebSocket since=%d): %s", i, since, ws)
			}
			continue
		}
		switch page := resumePage(t, srv, since); page {
		case "exact":
			exact++
		case "410":
			expired++
		default:
			jumps++
			t.Errorf("resume %d (GET /v1/events?since=%d): %s", i, since, page)
		}
	}
	t.Logf("%d resumes under a moving floor: %d exact, %d ended with 4410/410, %d jumped", resumes, exact, expired, jumps)
}

// publishSteadily publishes ~500-byte events until stop, paced to about
// 2,000 per second.
func publishSteadily(t *testing.T, nc *nats.Conn, stop *atomic.Bool) {
	pad := strings.Repeat("p", 380)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	batch := make([]testutil.Event, 10)
	for n := 0; !stop.Load(); n++ {
		<-tick.C
		for j := range batch {
			batch[j] = testutil.Cell(fmt.Sprintf("c-%d-%d", n, j), "started", map[string]any{"pad": pad})
		}
		// Not MustPublish: this runs beside the test's goroutine.
		if _, err := testutil.Publish(nc, batch...); err != nil {
			t.Error(err)
			return
		}
	}
}

// resumeWS opens a socket from since and reads n events: "exact" when they
// are since+1…since+n, "4410" when it ends with 4410 before any jump, else
// what went wrong.
func resumeWS(ctx context.Context, t *testing.T, srv *server, since uint64, n int) string {
	c, _, err := wsDial(ctx, srv, fmt.Sprintf("since=%d", since))
	if err != nil {
		if strings.Contains(err.Error(), "4410") {
			return "4410"
		}
		return fmt.Sprintf("dial: %v", err)
	}
	defer c.CloseNow()
	prev := since
	for range n {
		f, err := wsRead(ctx, c)
		if websocket.CloseStatus(err) == 4410 {
			return "4410"
		}
		if err != nil {
			return fmt.Sprintf("after seq %d: %v", prev, err)
		}
		if f.Seq != prev+1 {
			return fmt.Sprintf("seq %d after %d: %d events skipped without 4410", f.Seq, prev, f.Seq-prev-1)
		}
		prev = f.Seq
	}
	c.Close(websocket.StatusNormalClosure, "")
	return "exact"
}

// resumePage asks GET /v1/events?since: "exact" when the page starts at
// since+1 and has no hole, "410" for cursor_expired.
func resumePage(t *testing.T, srv *server, since uint64) string {
	resp, err := httpc.Get(fmt.Sprintf("%s/v1/events?since=%d&limit=200", srv.HTTP, since))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusGone {
		return "410"
	}
	var page struct {
		Events []struct {
			Seq uint64 `json:"seq"`
		} `json:"events"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &page) != nil {
		return fmt.Sprintf("HTTP %d %s", resp.StatusCode, b)
	}
	prev := since
	for _, e := range page.Events {
		if e.Seq != prev+1 {
			return fmt.Sprintf("seq %d after %d: %d events skipped without 410", e.Seq, prev, e.Seq-prev-1)
		}
		prev = e.Seq
	}
	return "exact"
}
