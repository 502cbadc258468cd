package eventlog

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Settings of the consumers behind a Reader.
const (
	// ReaderInactiveThreshold is only the safety net for a process that
	// died with readers open: Close deletes the consumer at once.
	ReaderInactiveThreshold = 5 * time.Minute
	// ReaderBuffer is how many messages a Reader pulls ahead of Next: the
	// bound of the memory one reader holds (times the message size).
	ReaderBuffer = 256
	// ReaderDescription marks the consumers of Readers on the server.
	ReaderDescription = "cellos-allinone reader (deleted when its client goes)"
	// readerDeleteTimeout bounds the consumer deletion in Close.
	readerDeleteTimeout = 5 * time.Second
)

// Reader reads the stream from a start sequence on, optionally filtered by
// subject, with its own ephemeral JetStream consumer: no durable name,
// acknowledgements off, state in memory. It delivers in strictly
// increasing stream sequence and, once past the messages stored when it
// was opened, goes on with new ones on the same consumer, so there is no
// gap and no duplicate between history and live.
//
// A Reader is used by one goroutine at a time; Close may be called from
// any goroutine and deletes the consumer.
type Reader struct {
	stream  jetstream.Stream
	cons    jetstream.Consumer
	name    string
	pending uint64

	it        jetstream.MessagesContext
	closeOnce sync.Once
	closeErr  error
	mu        sync.Mutex // guards it against Close
	closed    bool
}

// ReaderConsumerConfig is the consumer configuration of a Reader starting
// at start with filter ("" reads every subject).
func ReaderConsumerConfig(start uint64, filter string) jetstream.ConsumerConfig {
	if start == 0 {
		start = 1
	}
	return jetstream.ConsumerConfig{
		Description:       ReaderDescription,
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       start,
		AckPolicy:         jetstream.AckNonePolicy,
		ReplayPolicy:      jetstream.ReplayInstantPolicy,
		FilterSubject:     filter,
		InactiveThreshold: ReaderInactiveThreshold,
		MemoryStorage:     true,
	}
}

// OpenReader creates the consumer of a new Reader. A start below the
// stream's first sequence silently starts at the first sequence: check
// the cursor with Resume first.
func (l *Log) OpenReader(ctx context.Context, start uint64, filter string) (*Reader, error) {
	cons, err := l.stream.CreateConsumer(ctx, ReaderConsumerConfig(start, filter))
	if err != nil {
		return nil, fmt.Errorf("create reader consumer at %d: %w", start, err)
	}
	info := cons.CachedInfo()
	return &Reader{stream: l.stream, cons: cons, name: info.Name, pending: info.NumPending}, nil
}

// Name is the server-side consumer's name.
func (r *Reader) Name() string { return r.name }

// Pending is how many stored messages matched the reader (from its start
// on) when it was opened.
func (r *Reader) Pending() uint64 { return r.pending }

// Next waits for the next message. It returns ctx's error when ctx ends
// first, and an error when the reader was closed or its consumer deleted.
func (r *Reader) Next(ctx context.Context) (Delivery, error) {
	it, err := r.iterator()
	if err != nil {
		return Delivery{}, err
	}
	msg, err := it.Next(jetstream.NextContext(ctx))
	if err != nil {
		if ctx.Err() != nil {
			return Delivery{}, ctx.Err()
		}
		return Delivery{}, fmt.Errorf("read consumer %s: %w", r.name, err)
	}
	return delivery(msg)
}

func (r *Reader) iterator() (jetstream.MessagesContext, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, jetstream.ErrMsgIteratorClosed
	}
	if r.it == nil {
		it, err := r.cons.Messages(jetstream.PullMaxMessages(ReaderBuffer))
		if err != nil {
			return nil, fmt.Errorf("open consumer %s: %w", r.name, err)
		}
		r.it = it
	}
	return r.it, nil
}

// Fetch returns the next n messages, fewer when ctx ends first or when a
// message arrives that has no further matching message behind it. Ask for
// at most Pending messages so that Fetch does not wait for new ones.
func (r *Reader) Fetch(ctx context.Context, n int) ([]Delivery, error) {
	if n <= 0 {
		return nil, nil
	}
	batch, err := r.cons.Fetch(n, jetstream.FetchContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("fetch from consumer %s: %w", r.name, err)
	}
	out := make([]Delivery, 0, n)
	for msg := range batch.Messages() {
		d, err := delivery(msg)
		if err != nil {
			return out, err
		}
		out = append(out, d)
		if d.Pending == 0 {
			// Messages counted by Pending were deleted meanwhile: do not
			// wait for them until ctx ends.
			break
		}
	}
	if err := batch.Error(); err != nil && len(out) < n && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
		return out, fmt.Errorf("fetch from consumer %s: %w", r.name, err)
	}
	return out, nil
}

// Close stops reading and deletes the consumer, under its own bounded
// context so that it works after the caller's context ended. Deleting a
// consumer that is already gone is not an error.
func (r *Reader) Close() error {
	r.closeOnce.Do(func() {
		r.mu.Lock()
		r.closed = true
		if r.it != nil {
			r.it.Stop()
		}
		r.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), readerDeleteTimeout)
		defer cancel()
		err := r.stream.DeleteConsumer(ctx, r.name)
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			r.closeErr = fmt.Errorf("delete consumer %s: %w", r.name, err)
		}
	})
	return r.closeErr
}

func delivery(msg jetstream.Msg) (Delivery, error) {
	md, err := msg.Metadata()
	if err != nil {
		return Delivery{}, fmt.Errorf("message without JetStream metadata: %w", err)
	}
	return Delivery{
		Seq:     md.Sequence.Stream,
		Subject: msg.Subject(),
		Time:    md.Timestamp,
		Payload: msg.Data(),
		Pending: md.NumPending,
	}, nil
}
