package testutil

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// ReadClose reads c until the socket ends and returns its close status (-1
// when it ended without a close frame) and reason; it fails the test when
// the socket is still open after d.
func ReadClose(tb testing.TB, c *websocket.Conn, d time.Duration) (websocket.StatusCode, string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		_, _, err := c.Read(ctx)
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			tb.Fatalf("socket still open after %v", d)
		}
		var ce websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code, ce.Reason
		}
		return -1, err.Error()
	}
}

// SeqRange is the sequences from..to, in order (none when to < from).
func SeqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}
