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
	// ReaderInactiveThreshold is the safety net for a process that died
	// with readers (or followers) open: they delete their consumers at
	// once when they stop. A reader whose client takes longer than this
	// over one batch loses its consumer too, and its next batch fails.
	ReaderInactiveThreshold = 5 * time.Minute
	// ReaderBatch is the most messages one Batch asks for.
	ReaderBatch = 256
	// ReaderBufferBytes bounds one Batch in bytes: with the events of up
	// to 1 MiB that ingest accepts, a count alone would let one reader
	// hold 256 MiB. It stays above twice the largest message the NATS
	// server allows (a byte-bounded fetch must fit one).
	ReaderBufferBytes = 2 << 20
	// ReaderDescription marks the consumers of Readers on the server.
	ReaderDescription = "cellos-allinone reader (deleted when its client goes)"
	// readerFetchWait bounds one fetch: one that brings fewer messages
	// than the consumer counted (some were deleted meanwhile, or the
	// server is slow) ends after it.
	readerFetchWait = 2 * time.Second
	// consumerDeleteTimeout bounds a consumer's deletion.
	consumerDeleteTimeout = 5 * time.Second
)

// Reader reads the stream from a start sequence on, optionally filtered by
// subject, with its own ephemeral JetStream consumer: no durable name,
// acknowledgements off, state in memory. It belongs to one incarnation of
// the stream.
//
// What it hands over is checked, not assumed: the sequences are strictly
// increasing, and none that matched its filter is skipped silently. When
// the stream's first sequence overtook the reader (events expired or were
// purged before it read them) or the incarnation ended, Batch returns a
// *CursorError instead of jumping. For an unfiltered read a jump in the
// sequence is checked against the stream's first sequence read after the
// batch arrived; for a filtered read, where jumps are normal, every batch
// with a jump is checked the same way (a jump over sequences that are
// still stored, or that were deleted one by one, is no loss).
//
// A Reader is used by one goroutine at a time; Close may be called from
// any goroutine and deletes the consumer.
type Reader struct {
	log      *Stream
	inc      *Incarnation
	cons     jetstream.Consumer
	name     string
	filters  []string
	prev     uint64 // last sequence handed over, or start-1
	pending  uint64 // matching messages stored after prev, as last seen
	maxBytes int
	// confirmed: a stream info read after the consumer's first batch
	// showed the reader's incarnation (a stream recreated between the
	// caller's decision and OpenReader is caught there).
	confirmed bool

	closeOnce sync.Once
	closeErr  error
}

// ReaderConsumerConfig is the consumer configuration of a Reader starting
// at start with filters (none, or one "", reads every subject).
func ReaderConsumerConfig(start uint64, filters ...string) jetstream.ConsumerConfig {
	cfg := consumerConfig(start, "", ReaderDescription)
	switch filters = nonEmpty(filters); len(filters) {
	case 0:
	case 1:
		cfg.FilterSubject = filters[0]
	default:
		cfg.FilterSubjects = filters
	}
	return cfg
}

// nonEmpty drops "" (any subject) from filters: a read with no filter left
// reads every subject.
func nonEmpty(filters []string) []string {
	out := filters[:0:0]
	for _, f := range filters {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

// consumerConfig is an ephemeral consumer without acknowledgements, its
// state in memory, from start on.
func consumerConfig(start uint64, filter, description string) jetstream.ConsumerConfig {
	if start == 0 {
		start = 1
	}
	return jetstream.ConsumerConfig{
		Description:       description,
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       start,
		AckPolicy:         jetstream.AckNonePolicy,
		ReplayPolicy:      jetstream.ReplayInstantPolicy,
		FilterSubject:     filter,
		InactiveThreshold: ReaderInactiveThreshold,
		MemoryStorage:     true,
	}
}

// OpenReader creates the consumer of a new Reader of incarnation inc that
// reads the messages matching any of filters (none: every message).
// Decide start with Resume first: this only catches the floor moving
// after that decision. Filters must not overlap (JetStream refuses a
// consumer whose filters do).
func (l *Stream) OpenReader(ctx context.Context, inc *Incarnation, start uint64, filters ...string) (*Reader, error) {
	if start == 0 {
		start = 1
	}
	if inc.Ended() {
		return nil, l.EndedError(ctx, inc)
	}
	filters = nonEmpty(filters)
	cons, err := l.stream.CreateConsumer(ctx, ReaderConsumerConfig(start, filters...))
	if err != nil {
		return nil, l.readError(ctx, inc, fmt.Errorf("create reader consumer at %d: %w", start, err))
	}
	info := cons.CachedInfo()
	return &Reader{
		log: l, inc: inc, cons: cons, name: info.Name, filters: filters,
		prev: start - 1, pending: info.NumPending,
		maxBytes: bufferBytes(ReaderBufferBytes, l.js.Conn()),
	}, nil
}

// Name is the server-side consumer's name.
func (r *Reader) Name() string { return r.name }

// Pending is how many stored messages match the reader after what it has
// handed over, as last seen.
func (r *Reader) Pending() uint64 { return r.pending }

// Batch returns the next stored messages, at most n and ReaderBufferBytes,
// in sequence order; none when nothing that matches is stored after the
// last one handed over (it never waits for new messages). It returns a
// *CursorError, with the messages that came before the problem, when the
// floor overtook the reader or its incarnation ended.
func (r *Reader) Batch(ctx context.Context, n int) ([]Delivery, error) {
	if r.inc.Ended() {
		return nil, r.log.EndedError(ctx, r.inc)
	}
	n = min(n, ReaderBatch, int(min(r.pending, ReaderBatch)))
	if n <= 0 {
		// Nothing counted: still make sure nothing was lost to the floor
		// on the way (the consumer starts at the floor without a word).
		return nil, r.verify(ctx, nil)
	}
	fctx, cancel := context.WithTimeout(ctx, readerFetchWait)
	defer cancel()
	batch, err := r.cons.Fetch(n, jetstream.FetchMaxBytes(r.maxBytes), jetstream.FetchContext(fctx))
	if err != nil {
		return nil, r.readError(ctx, fmt.Errorf("fetch from consumer %s: %w", r.name, err))
	}
	out := make([]Delivery, 0, n)
	for msg := range batch.Messages() {
		d, err := delivery(msg)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	if err := batch.Error(); err != nil && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, jetstream.ErrNoMessages) {
		return nil, r.readError(ctx, fmt.Errorf("fetch from consumer %s: %w", r.name, err))
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if len(out) == 0 {
		// Nothing came although the consumer counted matching messages:
		// they were deleted meanwhile — or the server did not hand them
		// over within the wait. Only the first may pass as "nothing left".
		if next, found, err := r.log.nextMatching(ctx, r.prev, r.filters...); err != nil {
			return nil, r.readError(ctx, err)
		} else if found {
			return nil, r.readError(ctx, fmt.Errorf("consumer %s handed over nothing within %s although message %d is stored", r.name, readerFetchWait, next))
		}
		r.pending = 0
		return nil, r.verify(ctx, nil)
	}
	if err := r.verify(ctx, out); err != nil {
		var ce *CursorError
		if errors.As(err, &ce) {
			// Hand over what came before the loss.
			kept := out[:0]
			for _, d := range out {
				if d.Seq > ce.Cursor.Since {
					break
				}
				kept = append(kept, d)
			}
			return kept, err
		}
		return nil, err
	}
	last := out[len(out)-1]
	r.prev, r.pending = last.Seq, last.Pending
	return out, nil
}

// verify checks that out follows r.prev without losing anything: a jump
// is a loss when the stream's first sequence, read now (after out
// arrived), is above the sequence after the jump's start. A loss is a
// *CursorError whose Cursor.Since is the last sequence safe to hand over.
func (r *Reader) verify(ctx context.Context, out []Delivery) error {
	prev, jump := r.prev, len(out) == 0
	for _, d := range out {
		if d.Seq != prev+1 {
			jump = true
			break
		}
		prev = d.Seq
	}
	if !jump && r.confirmed {
		return nil
	}
	st, err := r.log.State(ctx)
	if err != nil {
		return r.readError(ctx, err)
	}
	if st.Epoch != r.inc.Epoch {
		return r.log.EndedError(ctx, r.inc)
	}
	r.confirmed = true
	prev = r.prev
	for _, d := range append(out, Delivery{Seq: st.LastSeq + 1}) {
		if d.Seq > prev+1 && st.FirstSeq > prev+1 {
			return &CursorError{
				Cursor: Cursor{Since: prev, HasSince: true},
				State:  st,
				Reason: fmt.Sprintf("the events after %d expired or were purged while they were being read: the first retained sequence is now %d", prev, st.FirstSeq),
			}
		}
		if d.Seq > st.LastSeq {
			break
		}
		prev = d.Seq
	}
	return nil
}

// readError turns a failed read into the *CursorError of an ended
// incarnation when the stream was deleted under it, else returns err.
func (r *Reader) readError(ctx context.Context, err error) error {
	return r.log.readError(ctx, r.inc, err)
}

// readError turns a failed read into the *CursorError of the ended
// incarnation when the stream was deleted under it, else returns err.
func (l *Stream) readError(ctx context.Context, inc *Incarnation, err error) error {
	if l.Settle(ctx, inc) {
		return l.EndedError(ctx, inc)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// Close deletes the consumer, under its own bounded context so that it
// works after the caller's context ended. Deleting a consumer that is
// already gone is not an error.
func (r *Reader) Close() error {
	r.closeOnce.Do(func() { r.closeErr = r.log.deleteConsumer(r.name) })
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
