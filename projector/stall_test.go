package projector

import (
	"testing"
	"time"
)

// A failing commit is retried after 100 ms, then twice as long each time,
// never more than 30 s apart.
func TestRetryDelay(t *testing.T) {
	for _, c := range []struct {
		attempts uint64
		want     time.Duration
	}{
		{1, 100 * time.Millisecond}, {2, 200 * time.Millisecond}, {3, 400 * time.Millisecond},
		{9, 25600 * time.Millisecond}, {10, 30 * time.Second}, {11, 30 * time.Second}, {1 << 40, 30 * time.Second},
	} {
		if got := retryDelay(c.attempts); got != c.want {
			t.Errorf("retryDelay(%d) = %v, want %v", c.attempts, got, c.want)
		}
	}
}
