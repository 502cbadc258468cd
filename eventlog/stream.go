package eventlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Stream name and subjects of the event log (docs/design.md §2).
const (
	StreamName    = "CELLOS_EVENTS"
	SubjectPrefix = "cellos.events."
	SubjectAll    = "cellos.events.>"
)

// Config opens the log. The stream settings are what a newly created
// stream gets; an existing stream is used as it is: its configuration is
// never changed.
type Config struct {
	MaxAge     time.Duration // 0 means 90 days
	MaxBytes   int64         // 0 means no byte cap
	Duplicates time.Duration // duplicate-detection window; 0 means 2 minutes
	Replicas   int           // 0 means 1
	// AfterCreate, if set, runs right after the stream was created (by
	// Open, or by Ensure when the stream went missing while running),
	// before anything uses it; its error is Ensure's. Embedded mode makes
	// the creation durable there (embed.Server.SyncStream).
	AfterCreate func(name string) error
	// Logger receives the log's warnings (a new incarnation, the stream
	// unavailable); nil discards them.
	Logger *slog.Logger
}

// DefaultMaxAge is the retention of a new stream: 90 days, what an edge
// box keeps.
const DefaultMaxAge = 90 * 24 * time.Hour

// DefaultDuplicates is the duplicate-detection window of a new stream.
const DefaultDuplicates = 2 * time.Minute

// Stream is the opened event log: the CELLOS_EVENTS stream with its incarnations.
type Stream struct {
	js     jetstream.JetStream
	stream jetstream.Stream // a handle by name: it reaches a recreated stream too
	cfg    Config
	log    *slog.Logger

	incMu sync.Mutex
	inc   *Incarnation
	kick  chan struct{} // Check asks Watch to look now
	// Created reports whether Open created the stream.
	Created bool
}

// State is the stream's state at one moment.
type State struct {
	Epoch    string
	FirstSeq uint64
	LastSeq  uint64
	Messages uint64
	Bytes    uint64
	// Deleted counts the sequences between FirstSeq and LastSeq the
	// stream no longer holds (deleted, or lost at a power cut).
	Deleted uint64
	// MaxBytes is the stream's byte cap as configured on the server (not
	// this process's flags: an existing stream is used as it is); 0 when
	// it has none.
	MaxBytes uint64
}

// Open gets the CELLOS_EVENTS stream, creating it with cfg if it is missing.
func Open(ctx context.Context, nc *nats.Conn, cfg Config) (*Stream, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	l := newStream(js, cfg)
	if err := l.Ensure(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

// Ensure gets the stream, creating it with the configuration given to Open
// if it is missing (for example deleted while running), and refreshes the
// epoch. The stream handle is by name, so the one Open made keeps working
// for a recreated stream: Ensure never replaces it.
func (l *Stream) Ensure(ctx context.Context) error {
	gen := l.generation()
	s, err := l.js.Stream(ctx, StreamName)
	created := false
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = l.js.CreateStream(ctx, l.cfg.streamConfig())
		created = err == nil
		if created && l.cfg.AfterCreate != nil {
			if err := l.cfg.AfterCreate(StreamName); err != nil {
				return fmt.Errorf("stream %s created, but: %w", StreamName, err)
			}
		}
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			// Another process created it in between: use theirs as it is.
			s, err = l.js.Stream(ctx, StreamName)
		}
	}
	if err != nil {
		return fmt.Errorf("get or create stream %s: %w", StreamName, err)
	}
	if l.stream == nil {
		l.stream, l.Created = s, created
	}
	l.observe(gen, epochOf(s.CachedInfo()))
	return nil
}

func newStream(js jetstream.JetStream, cfg Config) *Stream {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Stream{js: js, cfg: cfg, log: log, kick: make(chan struct{}, 1)}
}

func (c Config) streamConfig() jetstream.StreamConfig {
	sc := jetstream.StreamConfig{
		Name:        StreamName,
		Description: "CellOS event log (CloudEvents 1.0)",
		Subjects:    []string{SubjectAll},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		MaxAge:      c.MaxAge,
		MaxBytes:    c.MaxBytes,
		Duplicates:  c.Duplicates,
		Replicas:    c.Replicas,
		Discard:     jetstream.DiscardOld,
	}
	if sc.MaxAge == 0 {
		sc.MaxAge = DefaultMaxAge
	}
	if sc.MaxBytes == 0 {
		sc.MaxBytes = -1
	}
	if sc.Duplicates == 0 {
		sc.Duplicates = DefaultDuplicates
	}
	if sc.Replicas == 0 {
		sc.Replicas = 1
	}
	return sc
}

// epochOf names the stream incarnation by its creation time: a stream that
// is deleted and created again gets a new one.
func epochOf(info *jetstream.StreamInfo) string {
	return info.Created.UTC().Format(time.RFC3339Nano)
}

// JetStream is the JetStream context the log was opened with.
func (l *Stream) JetStream() jetstream.JetStream { return l.js }

// Handle is the CELLOS_EVENTS stream handle of nats.go: for tools and tests that need the JetStream API itself.
func (l *Stream) Handle() jetstream.Stream { return l.stream }

// State asks the server for the stream's current state.
func (l *Stream) State(ctx context.Context) (State, error) {
	gen := l.generation()
	info, err := l.stream.Info(ctx)
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			l.Check()
		}
		return State{}, fmt.Errorf("stream %s info: %w", StreamName, err)
	}
	l.observe(gen, epochOf(info))
	return State{
		Epoch:    epochOf(info),
		FirstSeq: info.State.FirstSeq,
		LastSeq:  info.State.LastSeq,
		Messages: info.State.Msgs,
		Bytes:    info.State.Bytes,
		Deleted:  uint64(info.State.NumDeleted),
		MaxBytes: uint64(max(info.Config.MaxBytes, 0)), // -1: no cap
	}, nil
}

// DeletedSeqs lists the sequences between the stream's first and last
// that it no longer holds: deleted messages, or a range lost at a power
// cut when a later block survived an earlier one's tail.
func (l *Stream) DeletedSeqs(ctx context.Context) ([]uint64, error) {
	info, err := l.stream.Info(ctx, jetstream.WithDeletedDetails(true))
	if err != nil {
		return nil, fmt.Errorf("stream %s info: %w", StreamName, err)
	}
	return info.State.Deleted, nil
}

// Get returns the stored message at seq; found is false when the stream
// does not hold it (never written, expired or deleted).
func (l *Stream) Get(ctx context.Context, seq uint64) (msg *jetstream.RawStreamMsg, found bool, err error) {
	msg, err = l.stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("get message %d: %w", seq, err)
	}
	return msg, true, nil
}

// NextAfter returns the first message the stream holds after seq, of any
// subject; found is false when there is none: nothing is left to read
// after seq (also when the sequences above seq were deleted).
func (l *Stream) NextAfter(ctx context.Context, seq uint64) (msg *jetstream.RawStreamMsg, found bool, err error) {
	if seq == math.MaxUint64 {
		return nil, false, nil
	}
	msg, err = l.stream.GetMsg(ctx, seq+1, jetstream.WithGetMsgSubject(SubjectAll))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("get the message after %d: %w", seq, err)
	}
	return msg, true, nil
}

// nextMatching returns the sequence of the first message after seq whose
// subject matches any of filters (none = any subject).
func (l *Stream) nextMatching(ctx context.Context, seq uint64, filters ...string) (next uint64, found bool, err error) {
	filters = nonEmpty(filters)
	if len(filters) == 0 {
		filters = []string{SubjectAll}
	}
	for _, f := range filters {
		n, ok, err := l.nextMatchingOne(ctx, seq, f)
		if err != nil {
			return 0, false, err
		}
		if ok && (!found || n < next) {
			next, found = n, true
		}
	}
	return next, found, nil
}

func (l *Stream) nextMatchingOne(ctx context.Context, seq uint64, filter string) (next uint64, found bool, err error) {
	msg, err := l.stream.GetMsg(ctx, seq+1, jetstream.WithGetMsgSubject(filter))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("get the message after %d on %s: %w", seq, filter, err)
	}
	return msg.Sequence, true, nil
}

// Attach gets the existing CELLOS_EVENTS stream without ever creating it:
// for tools that inspect a log someone else owns.
func Attach(ctx context.Context, nc *nats.Conn) (*Stream, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	s, err := js.Stream(ctx, StreamName)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", StreamName, err)
	}
	l := newStream(js, Config{})
	l.stream = s
	l.observe(0, epochOf(s.CachedInfo()))
	return l, nil
}

// FoldUpTo reads the stream from its first sequence through seq (or its
// last, if smaller) and calls fn for each message in order.
func (l *Stream) FoldUpTo(ctx context.Context, seq uint64, fn func(Delivery)) error {
	st, err := l.State(ctx)
	if err != nil {
		return err
	}
	end := min(seq, st.LastSeq)
	if st.Messages == 0 || end < st.FirstSeq {
		return nil
	}
	errEnd := errors.New("end")
	err = l.Follow(ctx, l.Current(), st.FirstSeq, func(d Delivery) error {
		if d.Seq > end {
			return errEnd
		}
		fn(d)
		if d.Seq == end || d.Pending == 0 {
			return errEnd
		}
		return nil
	})
	if errors.Is(err, errEnd) {
		return nil
	}
	return err
}
