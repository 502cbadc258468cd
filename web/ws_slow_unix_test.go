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
// on the same server gets every event.
func TestWSSlowClientIsCutOffWithoutHurtingOthers(t *testing.T) {
	// Pings are out of the way: a client that reads nothing does not answer
	// them either, and this test is about the write timeout.
	// A 1 MiB live queue: the fast client is never more than 640 KB
	// behind, the slow one is past it after a few MB.
	e := wsStart(t, web.WSConfig{WriteTimeout: 2 * time.Second, PingInterval: time.Hour, QueueBytes: 1 << 20})
	// A small receive buffer (no autotuning) so that the server's writes
	// block after a few MB instead of tens.
	slow, _ := e.dial(t, "", &websocket.DialOptions{HTTPClient: testutil.SmallBufferClient(t)})
	fast, _ := e.dial(t, "", nil)
	const n, pad = 150, 64 << 10 // ~10 MB: more than the slow socket's buffers hold
	// Published in steps that the fast client has read before the next:
	// it is never far behind, whatever the race detector costs it.
	var want, got []uint64
	ctx := testutil.Ctx(t, 60*time.Second)
	for len(want) < n {
		want = append(want, e.publishRaw(t, "cellos.events.cell.c1.started", 10, func() []byte { return e.event("c1", "started", pad) })...)
		for len(got) < len(want) {
			seq, err := readSeq(ctx, fast)
			if err != nil {
				t.Fatalf("fast client after %d events: %v", len(got), err)
			}
			got = append(got, seq)
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

// readSeq reads one event frame and returns its seq, parsing only the
// frame's start: decoding 64 KiB frames under the race detector would make
// this "fast" client slow itself.
func readSeq(ctx context.Context, c *websocket.Conn) (uint64, error) {
	_, r, err := c.Reader(ctx)
	if err != nil {
		return 0, err
	}
	head := make([]byte, 64)
	k, err := io.ReadFull(r, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return 0, err
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return 0, err
	}
	const prefix = `{"type":"event","seq":`
	rest, ok := bytes.CutPrefix(head[:k], []byte(prefix))
	end := bytes.IndexByte(rest, ',')
	if !ok || end < 0 {
		return 0, fmt.Errorf("frame %q is not an event frame", head[:k])
	}
	return strconv.ParseUint(string(rest[:end]), 10, 64)
}
