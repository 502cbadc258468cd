// Package sleep waits a while unless a context ends first: the back-offs
// of the reconnecting clients, the demo publisher and the server's retry
// loops share it.
package sleep

import (
	"context"
	"time"
)

// For waits d, or until ctx ends; then it returns ctx's error, else nil.
func For(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
