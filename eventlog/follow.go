package eventlog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// FollowBufferBytes bounds the messages Follow's consumer holds ahead of
// its handler, in bytes (by count alone, events of 1 MiB would make it hold
// GiBs); the count is left to nats.go. It stays well above the largest
// message the default NATS max_payload allows, which a byte-bounded pull
// must fit.
const FollowBufferBytes = 8 << 20

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

// FollowerDescription marks Follow's consumers on the server.
const FollowerDescription = "cellos-allinone follower (deleted when it stops)"

// Follow reads the stream from sequence start on (1 for the beginning) and
// calls fn for every message, in sequence order, until ctx is done, fn
// returns an error, or the read fails. It never stops at the end of the
// stream: after the last stored message it delivers new ones as they are
// published, on the same consumer, so nothing falls between "replay" and
// "live". A start below the stream's first sequence starts at the first
// sequence (the floor is not checked here).
//
// Its consumer is ordered by construction and checked: an ephemeral
// AckNone consumer whose deliveries must come with consecutive consumer
// sequences; anything else (a delivery lost, the consumer deleted, missed
// heartbeats) ends Follow with an error, and the caller starts again from
// the last sequence it applied. Unlike nats.go's ordered consumer it never
// re-creates itself behind the caller's back — which, with the stream
// deleted and created again, would carry on at the old position in the new
// incarnation.
//
// Follow reads incarnation inc only: it ends with the *CursorError of
// EndedError when inc has ended, also when the stream was recreated
// between the caller's decision and the consumer's creation (a stream
// info read after the consumer exists must still show inc). Bind ctx to
// inc (Incarnation.Bind) so that it stops as soon as inc ends. The
// consumer is deleted when Follow returns.
func (l *Stream) Follow(ctx context.Context, inc *Incarnation, start uint64, fn func(Delivery) error) error {
	if start == 0 {
		start = 1
	}
	cfg := consumerConfig(start, "", FollowerDescription)
	cons, err := l.stream.CreateConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("create consumer at %d: %w", start, err)
	}
	name := cons.CachedInfo().Name
	defer l.deleteConsumer(name)
	// The consumer was created on whatever stream has the name now; one
	// state read after it that still shows inc proves it is inc's.
	if st, err := l.State(ctx); err != nil {
		return err
	} else if st.Epoch != inc.Epoch || inc.Ended() {
		return l.EndedError(ctx, inc)
	}
	it, err := cons.Messages(jetstream.PullMaxBytes(bufferBytes(FollowBufferBytes, l.js.Conn())),
		jetstream.WithMessagesErrOnMissingHeartbeat(true))
	if err != nil {
		return fmt.Errorf("open consumer %s at %d: %w", name, start, err)
	}
	// Stopped here, never from another goroutine: Next returns when ctx
	// ends, and Stop runs after it.
	defer it.Stop()
	var delivered uint64 // the consumer sequence of the last delivery
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("read consumer %s: %w", name, err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("message without JetStream metadata: %w", err)
		}
		if md.Sequence.Consumer != delivered+1 {
			return fmt.Errorf("consumer %s: delivery %d after %d: a message was lost on the way", name, md.Sequence.Consumer, delivered)
		}
		delivered = md.Sequence.Consumer
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

// deleteConsumer deletes a consumer of the stream under its own bounded
// context (it runs when the caller's context has ended). One that is gone
// already is fine: the server also removes it after its inactivity
// threshold.
func (l *Stream) deleteConsumer(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), consumerDeleteTimeout)
	defer cancel()
	err := l.stream.DeleteConsumer(ctx, name)
	if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("delete consumer %s: %w", name, err)
	}
	return nil
}

// bufferBytes is a byte bound for a pull: want, or twice the connection's
// max_payload when that is larger (a pull whose bound is below one message
// would stall).
func bufferBytes(want int, nc *nats.Conn) int {
	return max(want, 2*int(nc.MaxPayload()))
}
