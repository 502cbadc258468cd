package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// readRate reads the whole stream from the server's NATS port with a
// nats.go ordered consumer (4,096 messages pulled ahead) and returns
// events/s: what JetStream delivers to a reader that does nothing with
// the events, the ceiling of a rebuild.
func readRate(ctx context.Context, cfg *config, s *server) (float64, error) {
	nc, js, err := connect(s.NATS, cfg.inflight)
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	stream, err := js.Stream(ctx, streamName)
	if err != nil {
		return 0, err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return 0, err
	}
	want := info.State.Msgs
	cons, err := js.OrderedConsumer(ctx, streamName, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return 0, err
	}
	var n atomic.Uint64
	done := make(chan struct{})
	t0 := time.Now()
	cc, err := cons.Consume(func(jetstream.Msg) {
		if n.Add(1) == want {
			close(done)
		}
	}, jetstream.PullMaxMessages(4096))
	if err != nil {
		return 0, err
	}
	defer cc.Stop()
	select {
	case <-done:
	case <-time.After(cfg.loadTimeout):
		return 0, fmt.Errorf("ordered read of %d messages: only %d within %s", want, n.Load(), cfg.loadTimeout)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return float64(want) / time.Since(t0).Seconds(), nil
}
