package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// streamName is the event log's stream (docs/design.md §2).
const streamName = "CELLOS_EVENTS"

// connect opens a NATS connection to url and a JetStream context whose
// async publishes have at most inflight acknowledgements outstanding.
func connect(url string, inflight int, opts ...nats.Option) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(url, append([]nats.Option{nats.Name("cellos-bench"), nats.Timeout(10 * time.Second),
		nats.ReconnectBufSize(-1), nats.MaxReconnects(0)}, opts...)...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to %s: %w", url, err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(inflight))
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// pubStats is what a publish achieved.
type pubStats struct {
	n          int           // acknowledged
	elapsed    time.Duration // first publish to last ack
	rate       float64       // n / elapsed, events/s
	lastSeq    uint64        // stream sequence of the last ack
	lastAck    time.Time
	duplicates int // acks that said "duplicate"
}

// publish sends get(0) … get(n-1) asynchronously, with the CloudEvent id
// as Nats-Msg-Id, and waits for every ack. rate > 0 paces it (events/s),
// 0 sends as fast as acks allow. sent, when not nil, is called just
// before each publish.
func publish(ctx context.Context, js jetstream.JetStream, n, rate int, get func(i int) (message, error), sent func(i int, t time.Time)) (pubStats, error) {
	futures := make(chan jetstream.PubAckFuture, 1<<14)
	type collected struct {
		st  pubStats
		err error
	}
	done := make(chan collected, 1)
	go func() {
		var c collected
		for f := range futures {
			if c.err != nil {
				continue
			}
			select {
			case ack := <-f.Ok():
				c.st.n++
				c.st.lastSeq = max(c.st.lastSeq, ack.Sequence)
				if ack.Duplicate {
					c.st.duplicates++
				}
			case err := <-f.Err():
				c.err = fmt.Errorf("publish %s: %w", f.Msg().Subject, err)
			case <-ctx.Done():
				c.err = ctx.Err()
			}
		}
		c.st.lastAck = time.Now()
		done <- c
	}()

	start := time.Now()
	var err error
	for i := 0; i < n && err == nil; i++ {
		if rate > 0 {
			err = pace(ctx, start, i, rate)
		}
		var m message
		if err == nil {
			m, err = get(i)
		}
		if err != nil {
			break
		}
		if sent != nil {
			sent(i, time.Now())
		}
		var f jetstream.PubAckFuture
		f, err = js.PublishAsync(m.subject, m.payload, jetstream.WithMsgID(m.id), jetstream.WithStallWait(30*time.Second))
		if err == nil {
			futures <- f
		}
	}
	close(futures)
	c := <-done
	c.st.elapsed = c.st.lastAck.Sub(start)
	if c.st.elapsed > 0 {
		c.st.rate = float64(c.st.n) / c.st.elapsed.Seconds()
	}
	return c.st, errors.Join(err, c.err)
}

// pace waits until event i of a publish at rate events/s from start is
// due (in 10 ms steps).
func pace(ctx context.Context, start time.Time, i, rate int) error {
	due := start.Add(time.Duration(float64(i) / float64(rate) * float64(time.Second)))
	if d := time.Until(due); d > 0 {
		t := time.NewTimer(max(d, 10*time.Millisecond))
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
