package eventlog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Delivery is one message handed over by Follow.
type Delivery struct {
	Seq     uint64
	Subject string
	Time    time.Time
	Payload []byte
	// Pending is how many messages the stream held after this one when it
	// was delivered: Seq+Pending approximates the stream's last sequence.
	Pending uint64
}

// Follow reads the stream from sequence start on (1 for the beginning) with
// one ordered consumer and calls fn for every message, in sequence order,
// until ctx is done or fn returns an error. It never stops at the end of
// the stream: after the last stored message it delivers new ones as they
// are published, on the same consumer, so nothing falls between "replay"
// and "live". A start below the stream's first sequence starts at the
// first sequence.
func (l *Log) Follow(ctx context.Context, start uint64, fn func(Delivery) error) error {
	if start == 0 {
		start = 1
	}
	cons, err := l.js.OrderedConsumer(ctx, StreamName, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   start,
	})
	if err != nil {
		return fmt.Errorf("create ordered consumer at %d: %w", start, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(4096))
	if err != nil {
		return fmt.Errorf("open ordered consumer at %d: %w", start, err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return err
			}
			return fmt.Errorf("read ordered consumer: %w", err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("message without JetStream metadata: %w", err)
		}
		if err := fn(Delivery{
			Seq:     md.Sequence.Stream,
			Subject: msg.Subject(),
			Time:    md.Timestamp,
			Payload: msg.Data(),
			Pending: md.NumPending,
		}); err != nil {
			return err
		}
	}
}
