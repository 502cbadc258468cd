package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"cellos-allinone/eventlog"

	"cellos-allinone/internal/sleep"
)

// hub serves the live tail of every socket from one ordered consumer
// (eventlog.Follow): each new event is read from JetStream once, framed
// once, and queued to every subscribed socket whose filter matches.
// Measured here, one JetStream consumer per socket topped out near 40,000
// deliveries/s for all sockets together (the server hands every consumer's
// messages through one internal loop), so the live side does not use one.
//
// Guarantees: frames reach a subscriber in strictly increasing sequence,
// and a subscriber gets every stored event matching its filter whose
// sequence is above the position subscribe returned, all of one stream
// incarnation. When the incarnation ends, every subscriber is dropped
// with errIncarnationEnded and the hub follows the new one from its end;
// when the floor overtakes the hub (events expired before it read them),
// every subscriber that needed one of them is dropped with the
// *eventlog.CursorError. Publishing
// into a subscriber never blocks: a subscriber whose queue would exceed
// its byte bound is dropped (the socket closes with 4408).
//
// The hub reads only while somebody listens: it starts with the first
// subscriber, and once it has had none for idleAfter, it stops (its
// consumer is deleted) and forgets its incarnation. The next subscriber wakes
// it and it starts again at the stream's end, as at its first start. A
// consumer that delivers every event to nobody cost ~12 µs of CPU per
// event beside the projector's (docs/benchmarks.md, "Experiments on the
// write path").
type hub struct {
	events     *eventlog.Stream
	log        *slog.Logger
	queueBytes int
	idleAfter  time.Duration
	wake       chan struct{} // has a value when a subscriber found the hub idle

	mu         sync.Mutex
	inc        *eventlog.Incarnation // followed; nil before the first and while idle
	changed    chan struct{}         // closed and replaced when inc changes
	pos        uint64                // every event after pos is handed to the subscribers
	subs       map[*hubSub]struct{}
	emptySince time.Time               // when subs last became empty, or the hub woke
	rest       context.CancelCauseFunc // ends the current read with errHubIdle

	cancel context.CancelFunc
	done   chan struct{}
}

// hubFrame is one event, framed for the wire. It is shared by every
// subscriber (queues hold pointers to it) and never modified.
type hubFrame struct {
	seq   uint64
	time  time.Time
	frame []byte
}

// hubNothing is the filter of a subscriber that no event matches (a tenant
// socket that asked for another sub-tree): it still learns of the end of
// its incarnation.
const hubNothing = ""

// hubSub is one socket's queue.
type hubSub struct {
	filter subjectFilter // hubNothing's matches no event
	// after: the socket needs every matching event after this sequence
	// from the hub (it has the ones before from history).
	after uint64

	mu     sync.Mutex
	queue  []*hubFrame
	bytes  int
	notify chan struct{} // has a value when queue may be non-empty
	gone   chan struct{} // closed when the hub dropped the subscriber
	why    error         // set before gone is closed
}

var (
	errQueueFull = errors.New("send queue full")
	errHubFailed = errors.New("reading the live stream failed")
	// errHubIdle ends the hub's read when nobody has listened for a while.
	errHubIdle = errors.New("no subscriber")
	// errIncarnationEnded: the stream was deleted and created again.
	errIncarnationEnded = eventlog.ErrIncarnationEnded
)

func newHub(events *eventlog.Stream, log *slog.Logger, queueBytes int, idleAfter time.Duration) *hub {
	return &hub{events: events, log: log, queueBytes: queueBytes, idleAfter: idleAfter,
		wake: make(chan struct{}, 1), changed: make(chan struct{}), subs: map[*hubSub]struct{}{}}
}

// start runs the hub until stop: it follows the stream from its end
// whenever a subscriber wants it.
func (h *hub) start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan struct{})
	go func() {
		defer close(h.done)
		h.run(ctx)
	}()
}

func (h *hub) stop() {
	if h.cancel != nil {
		h.cancel()
		<-h.done
	}
}

func (h *hub) run(ctx context.Context) {
	const backoff = time.Second
	wanted := false // a subscriber woke the hub, and it has not rested since
	for ctx.Err() == nil {
		if !wanted {
			select {
			case <-h.wake:
				wanted = true
			case <-ctx.Done():
				return
			}
		}
		inc := h.events.Current()
		st, err := h.events.State(ctx)
		if err != nil {
			h.log.Warn("WebSocket hub: reading the stream state", "err", err)
			_ = sleep.For(ctx, backoff)
			continue
		}
		if st.Epoch != inc.Epoch {
			continue // the state read moved the log on: follow the new one
		}
		h.mu.Lock()
		if h.inc != inc {
			// The first incarnation, or a new one: its live tail starts at
			// its end.
			h.inc, h.pos = inc, st.LastSeq
			close(h.changed)
			h.changed = make(chan struct{})
		}
		from := h.pos + 1
		rctx, rest := context.WithCancelCause(ctx)
		h.rest = rest
		if len(h.subs) == 0 {
			h.restLaterLocked() // whoever woke the hub left already
		}
		h.mu.Unlock()
		fctx, stop := inc.Bind(rctx)
		err = h.events.Follow(fctx, inc, from, func(d eventlog.Delivery) error { return h.deliver(ctx, inc, d) })
		stop()
		rest(nil)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(context.Cause(rctx), errHubIdle):
			wanted = !h.idle()
			continue
		case h.events.Settle(ctx, inc):
			h.log.Info("WebSocket hub: the stream was recreated; closing the live sockets of the old incarnation with 4410", "epoch", inc.Epoch)
			h.dropAll(errIncarnationEnded)
			continue
		case ctx.Err() != nil:
			return
		}
		// The subscribers cannot be sure to get every event any more: drop
		// them (they reconnect with their cursor) and follow again.
		h.log.Error("WebSocket hub: following the stream failed; closing live sockets", "err", err)
		h.dropAll(errHubFailed)
		_ = sleep.For(ctx, backoff)
	}
}

// idle lets the hub rest unless a subscriber came meanwhile (then it goes
// on from its position), and reports whether it rests. Subscribers waiting
// for an incarnation learn that the hub has none and wake it.
func (h *hub) idle() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) > 0 {
		return false
	}
	h.inc = nil
	close(h.changed)
	h.changed = make(chan struct{})
	return true
}

// deliver hands one event to every matching subscriber. A jump in the
// sequence is checked against the stream's first sequence: when the floor
// passed the hub's position, the subscribers that needed events below the
// floor missed them, matched or not, and are dropped with 4410 instead —
// every one registered when the event is handed out, under the same lock.
// A subscriber whose history reached the floor already missed nothing (a
// hub that starts following late sees such a jump). A check that cannot
// be made ends the hub's read (its subscribers get 1011).
func (h *hub) deliver(ctx context.Context, inc *eventlog.Incarnation, d eventlog.Delivery) error {
	h.mu.Lock()
	prev, n := h.pos, len(h.subs)
	if n == 0 {
		h.pos = d.Seq
	}
	h.mu.Unlock()
	if n == 0 {
		return nil
	}
	var lost *eventlog.CursorError
	if d.Seq > prev+1 {
		st, err := h.events.State(ctx)
		switch {
		case err != nil:
			return fmt.Errorf("check the floor after a jump from %d to %d: %w", prev, d.Seq, err)
		case st.Epoch != inc.Epoch:
			return h.events.EndedError(ctx, inc)
		case st.FirstSeq > prev+1:
			h.log.Warn("WebSocket hub: events expired before they were read; closing the live sockets with 4410",
				"from", prev+1, "to", st.FirstSeq-1)
			lost = &eventlog.CursorError{
				Cursor: eventlog.Cursor{Since: prev, HasSince: true},
				State:  st,
				Reason: fmt.Sprintf("the live events after %d expired before they could be sent: the first retained sequence is now %d", prev, st.FirstSeq),
			}
		}
	}
	// Framed outside the lock; a subscriber that registers meanwhile has a
	// position below d.Seq and gets the frame below (or is dropped with
	// the others when events were lost).
	f := &hubFrame{seq: d.Seq, time: d.Time, frame: appendEventFrame(nil, d)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if lost != nil {
		for s := range h.subs {
			if s.after+1 < lost.State.FirstSeq {
				h.dropLocked(s, lost)
			}
		}
	}
	h.pos = d.Seq
	tokens := strings.Split(d.Subject, ".")
	for s := range h.subs {
		if !s.filter.matches(tokens) {
			continue
		}
		if !s.push(f, h.queueBytes) {
			h.dropLocked(s, errQueueFull)
		}
	}
	return nil
}

// subscribe registers a subscriber for filter once the hub follows
// incarnation inc, and returns its position: the subscriber gets every
// matching event of inc after it. covered is the sequence up to which the
// subscriber has every event already (0 for none): a jump of the hub
// below it is no loss to the subscriber. It fails with
// errIncarnationEnded when inc has ended.
func (h *hub) subscribe(ctx context.Context, filter string, inc *eventlog.Incarnation, covered uint64) (*hubSub, uint64, error) {
	for {
		h.mu.Lock()
		cur, changed := h.inc, h.changed
		if cur == inc && inc.Ended() {
			// Its subscribers are being dropped: refuse, under the same
			// lock as the drop, so that none joins after it.
			h.mu.Unlock()
			return nil, 0, errIncarnationEnded
		}
		if cur == inc {
			pos := h.pos
			s := &hubSub{filter: compileFilter(filter), after: max(pos, covered), notify: make(chan struct{}, 1), gone: make(chan struct{})}
			h.subs[s] = struct{}{}
			h.mu.Unlock()
			return s, pos, nil
		}
		h.mu.Unlock()
		if inc.Ended() {
			return nil, 0, errIncarnationEnded
		}
		if cur == nil {
			select {
			case h.wake <- struct{}{}:
			default:
			}
		}
		// The hub has not reached inc yet (it is idle, it starts, or it is
		// moving on).
		select {
		case <-changed:
		case <-inc.Done():
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
	}
}

func (h *hub) unsubscribe(s *hubSub) {
	h.mu.Lock()
	h.removeLocked(s)
	h.mu.Unlock()
}

func (h *hub) removeLocked(s *hubSub) {
	if _, ok := h.subs[s]; !ok {
		return
	}
	delete(h.subs, s)
	if len(h.subs) == 0 {
		h.restLaterLocked()
	}
}

// restLaterLocked notes that the hub has no subscriber from now on and
// ends its read idleAfter later unless one came meanwhile.
func (h *hub) restLaterLocked() {
	h.emptySince = time.Now()
	time.AfterFunc(h.idleAfter, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.subs) == 0 && time.Since(h.emptySince) >= h.idleAfter && h.rest != nil {
			h.rest(errHubIdle)
		}
	})
}

func (h *hub) dropLocked(s *hubSub, why error) {
	h.removeLocked(s)
	s.mu.Lock()
	s.why = why
	s.queue, s.bytes = nil, 0
	s.mu.Unlock()
	close(s.gone)
}

func (h *hub) dropAll(why error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		h.dropLocked(s, why)
	}
}

// push queues f unless that would exceed limit bytes.
func (s *hubSub) push(f *hubFrame, limit int) bool {
	s.mu.Lock()
	if s.bytes+len(f.frame) > limit && len(s.queue) > 0 {
		s.mu.Unlock()
		return false
	}
	s.queue = append(s.queue, f)
	s.bytes += len(f.frame)
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
	return true
}

// take waits for queued frames and returns them all. The queue itself is
// handed over, and spare (an empty slice the caller is done with, such as
// what take returned before) becomes the new queue: nothing is copied.
func (s *hubSub) take(ctx context.Context, spare []*hubFrame) ([]*hubFrame, error) {
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			out := s.queue
			s.queue, s.bytes = spare[:0], 0
			s.mu.Unlock()
			return out, nil
		}
		s.mu.Unlock()
		select {
		case <-s.notify:
		case <-s.gone:
			return nil, s.why
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// subjectFilter is a NATS subject filter split into its tokens once, so
// that the hub matches each event against every socket's filter without
// parsing either again. Its matching equals nats-server's
// (server.SubjectMatchesFilter), which FuzzSubjectFilter (params_fuzz_test.go) proves.
type subjectFilter struct {
	all    bool // cellos.events.>: every stored subject
	tokens []string
}

// compileFilter splits filter; hubNothing compiles to a filter that
// matches nothing.
func compileFilter(filter string) subjectFilter {
	if filter == eventlog.SubjectAll {
		return subjectFilter{all: true}
	}
	if filter == hubNothing {
		return subjectFilter{}
	}
	return subjectFilter{tokens: strings.Split(filter, ".")}
}

// matches reports whether a subject, split into tokens, matches: '*'
// stands for one token, '>' (last) for one or more.
func (f subjectFilter) matches(tokens []string) bool {
	if f.all {
		// Every subject the stream stores is inside cellos.events.>.
		return len(tokens) > 2 && tokens[0] == "cellos" && tokens[1] == "events"
	}
	if len(f.tokens) == 0 {
		return false
	}
	for i, ft := range f.tokens {
		switch {
		case ft == ">":
			return len(tokens) > i
		case i >= len(tokens):
			return false
		case ft != "*" && ft != tokens[i]:
			return false
		}
	}
	return len(tokens) == len(f.tokens)
}

// subjectMatches reports whether subject matches filter, as a socket's
// compiled filter does.
func subjectMatches(filter, subject string) bool {
	return compileFilter(filter).matches(strings.Split(subject, "."))
}
