//go:build unix

package web_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/coder/websocket"

	"cellos-allinone/testutil"
	"cellos-allinone/web"
)

// A client that reads nothing is cut off as slow; a client that reads
// on the same server gets every event. With batch=1 too.
func TestWSSlowClientIsCutOffWithoutHurtingOthers(t *testing.T) {
	for _, query := range []string{"", "batch=1"} {
		t.Run("query="+query, func(t *testing.T) { testSlowClient(t, query) })
	}
}

func testSlowClient(t *testing.T, query string) {
	// Pings are out of the way: a client that reads nothing does not answer
	// them either, and this test is about the write timeout.
	// A 1 MiB live queue: the fast client is never more than 640 KB
	// behind, the slow one is past it after a few MB.
	e := wsStart(t, web.WSConfig{WriteTimeout: 2 * time.Second, PingInterval: time.Hour, QueueBytes: 1 << 20})
	// A small receive buffer (no autotuning) so that the server's writes
	// block after a few MB instead of tens.
	slow, _ := e.dial(t, query, &websocket.DialOptions{HTTPClient: testutil.SmallBufferClient(t)})
	fast, _ := e.dial(t, query, nil)
	const n, pad = 150, 64 << 10 // ~10 MB: more than the slow socket's buffers hold
	// Published in steps that the fast client has read before the next:
	// it is never far behind, whatever the race detector costs it.
	var want, got []uint64
	ctx := testutil.Ctx(t, 60*time.Second)
	for len(want) < n {
		want = append(want, e.publishRaw(t, "cellos.events.cell.c1.started", 10, func() []byte { return e.event("c1", "started", pad) })...)
		for len(got) < len(want) {
			seqs, err := readSeqs(ctx, fast)
			if err != nil {
				t.Fatalf("fast client after %d events: %v", len(got), err)
			}
			got = append(got, seqs...)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("fast client got %v, want %v", got, want)
	}
	testutil.WaitFor(t, 30*time.Second, "slow client cut off", func() bool {
		st := e.a.HTTP.SocketStats()
		if len(st.Closed) > 0 && st.Closed[web.EndSlow] == 0 {
			t.Fatalf("a socket ended otherwise: %+v", st)
		}
		return st.Closed[web.EndSlow] == 1
	})
	// The slow client finds its socket ended once it reads what was sent.
	testutil.ReadClose(t, slow, 20*time.Second)
	if st := e.a.HTTP.SocketStats(); st.Closed[web.EndSlow] != 1 || st.Open != 1 {
		t.Errorf("stats = %+v, want one slow close and the fast socket still open", st)
	}
}

// readSeqs reads one event frame or batch frame and returns the seq of
// each of its events, without decoding the frame: decoding 64 KiB events
// under the race detector would make this "fast" client slow itself. The
// events of this test hold no "seq" key of their own.
func readSeqs(ctx context.Context, c *websocket.Conn) ([]uint64, error) {
	_, r, err := c.Reader(ctx)
	if err != nil {
		return nil, err
	}
	head := make([]byte, 64)
	k, err := io.ReadFull(r, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, err
	}
	const prefix = `{"type":"event","seq":`
	if rest, ok := bytes.CutPrefix(head[:k], []byte(prefix)); ok {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return nil, err
		}
		end := bytes.IndexByte(rest, ',')
		if end < 0 {
			return nil, fmt.Errorf("frame %q is not an event frame", head[:k])
		}
		seq, err := strconv.ParseUint(string(rest[:end]), 10, 64)
		return []uint64{seq}, err
	}
	if !bytes.HasPrefix(head[:k], []byte(`{"type":"events","events":[{"seq":`)) {
		return nil, fmt.Errorf("frame %q is neither an event nor a batch frame", head[:k])
	}
	rest, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	frame := append(head[:k], rest...)
	var seqs []uint64
	for _, part := range bytes.Split(frame, []byte(`{"seq":`))[1:] {
		end := bytes.IndexByte(part, ',')
		if end < 0 {
			return nil, fmt.Errorf("batch frame item %.40q without a seq", part)
		}
		seq, err := strconv.ParseUint(string(part[:end]), 10, 64)
		if err != nil {
			return nil, err
		}
		seqs = append(seqs, seq)
	}
	return seqs, nil
}
