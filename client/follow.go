package client

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"cellos-allinone/internal/sleep"
)

// Backoff bounds of Follow's reconnection (exponential, with jitter).
const (
	DefaultMinBackoff = 250 * time.Millisecond
	DefaultMaxBackoff = 30 * time.Second
)

// ErrStop, returned by a Follow callback, ends Follow without an error.
var ErrStop = errors.New("stop following")

// FollowOptions configure Follow.
type FollowOptions struct {
	// Since: start after this sequence; nil: with events published after
	// the first connection opened.
	Since *uint64
	// Subject filters by NATS subject, "" = all.
	Subject string

	// MinBackoff and MaxBackoff bound the wait between reconnection
	// attempts; zero means DefaultMinBackoff / DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration

	// OnConnect is called with the hello frame of every connection.
	OnConnect func(Hello)
	// OnLost is called when events cannot be delivered: they expired
	// (retention) or the stream was recreated (new epoch). Follow goes on
	// with the first retained event.
	OnLost func(Lost)
	// OnRetry is called before each wait for a reconnection.
	OnRetry func(err error, wait time.Duration)
}

// Lost describes events Follow could not deliver.
type Lost struct {
	// From..To are the sequences lost to retention; From > To when none
	// were (an epoch change with nothing missing).
	From, To uint64
	// OldEpoch != NewEpoch when the stream was deleted and created again:
	// sequences start over, and everything not yet seen of the old
	// incarnation is gone.
	OldEpoch, NewEpoch string
	// Behind: the stream now ends before the last sequence handed over
	// (its newest events were lost, for example in a power cut, and their
	// sequence numbers may be reused). Follow goes on with events
	// published from then on.
	Behind bool
}

// EpochChanged reports whether the stream was recreated.
func (l Lost) EpochChanged() bool { return l.OldEpoch != "" && l.OldEpoch != l.NewEpoch }

// Follow streams events to fn until ctx ends (it returns ctx's error), fn
// returns an error (ErrStop: nil, else that error), or the server refuses
// the request for good (HTTP 4xx at the upgrade). Connection losses are
// retried with exponential backoff and jitter; each new connection resumes
// after the last sequence handed to fn and sends the epoch it saw, so fn
// sees no event twice and none is skipped unless OnLost said so. Sequences
// handed to fn strictly increase within an epoch. It asks for batch frames
// (batch=1; a server that does not know the parameter is asked again
// without it) and hands their events to fn one by one.
func (c *Client) Follow(ctx context.Context, fo FollowOptions, fn func(Event) error) error {
	if fo.MinBackoff <= 0 {
		fo.MinBackoff = DefaultMinBackoff
	}
	if fo.MaxBackoff <= 0 {
		fo.MaxBackoff = DefaultMaxBackoff
	}
	f := &follower{c: c, fo: fo, fn: fn, haveCursor: fo.Since != nil}
	if fo.Since != nil {
		f.cursor = *fo.Since
	}
	failures := 0
	expiredBefore := false // the previous attempt ended in a 4410 too
	for {
		connected, err := f.once(ctx)
		if !f.noBatch && batchRefused(err) {
			// A server older than batch=1: ask it for single frames.
			f.noBatch = true
			continue
		}
		var (
			exp *ExpiredError
			cb  callbackError
		)
		switch {
		case errors.Is(err, ErrStop):
			return nil
		case errors.As(err, &cb):
			return cb.err
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, &exp):
			f.expired(exp)
			if !expiredBefore {
				// The new cursor is expected to work: retry at once.
				expiredBefore, failures = true, 0
				continue
			}
			// 4410 again right away: a server that keeps refusing must
			// not make this a busy loop.
		case permanent(err):
			return err
		}
		if exp == nil {
			expiredBefore = false
		}
		if connected && exp == nil {
			failures = 0
		}
		wait := backoff(failures, fo.MinBackoff, fo.MaxBackoff)
		failures++
		if fo.OnRetry != nil {
			fo.OnRetry(err, wait)
		}
		if err := sleep.For(ctx, wait); err != nil {
			return err
		}
	}
}

// follower is the state Follow keeps across connections.
type follower struct {
	c  *Client
	fo FollowOptions
	fn func(Event) error

	cursor     uint64 // last sequence handed to fn (or known to be before the start)
	haveCursor bool
	epoch      string // of the last hello; "" before the first
	noBatch    bool   // the server does not know batch=1
}

// callbackError carries fn's error out of Follow unchanged.
type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }
func (e callbackError) Unwrap() error { return e.err }

// once runs one connection until it fails; connected reports whether it
// got as far as the hello frame.
func (f *follower) once(ctx context.Context) (connected bool, err error) {
	so := StreamOptions{Subject: f.fo.Subject, Epoch: f.epoch, Batch: !f.noBatch}
	if f.haveCursor {
		so.Since = &f.cursor
	}
	s, err := f.c.Stream(ctx, so)
	if err != nil {
		return false, err
	}
	defer s.Close()
	if f.epoch != "" && s.Hello.Epoch != f.epoch {
		// A server that ignored the epoch parameter: treat it as the 4410
		// it should have sent.
		return true, &ExpiredError{FirstSeq: s.Hello.FirstSeq, Epoch: s.Hello.Epoch}
	}
	f.epoch = s.Hello.Epoch
	if !f.haveCursor {
		// "Only new events": from now on the cursor is where the stream
		// stood when the first connection opened.
		f.cursor, f.haveCursor = s.Hello.LastSeq, true
	}
	if f.fo.OnConnect != nil {
		f.fo.OnConnect(s.Hello)
	}
	for {
		ev, err := s.Next(ctx)
		if err != nil {
			return true, err
		}
		if ev.Seq <= f.cursor {
			// Already handed over: never twice.
			continue
		}
		if err := f.fn(ev); err != nil {
			if errors.Is(err, ErrStop) {
				return true, ErrStop
			}
			return true, callbackError{err}
		}
		f.cursor = ev.Seq
	}
}

// expired reports the loss a 4410 close means and moves the cursor to just
// before the first retained event.
func (f *follower) expired(exp *ExpiredError) {
	lost := Lost{From: f.cursor + 1, To: exp.FirstSeq - 1, OldEpoch: f.epoch, NewEpoch: exp.Epoch}
	if exp.FirstSeq == 0 {
		lost.To = 0
	}
	switch {
	case lost.EpochChanged():
		// A new incarnation numbers from 1 again: whatever it holds
		// before its first retained event is gone.
		lost.From = 1
	case exp.FirstSeq <= f.cursor:
		// Same stream, cursor not below its floor: the server refused a
		// cursor beyond its end. Resuming from an earlier sequence would
		// repeat what was handed over; only new events are certain.
		lost = Lost{From: f.cursor + 1, To: f.cursor, OldEpoch: f.epoch, NewEpoch: exp.Epoch, Behind: true}
	}
	if f.fo.OnLost != nil {
		f.fo.OnLost(lost)
	}
	f.epoch = exp.Epoch
	if lost.Behind {
		f.haveCursor = false
		return
	}
	f.cursor, f.haveCursor = lost.To, true
}

// batchRefused reports whether err is a server's refusal of batch=1 as an
// unknown parameter.
func batchRefused(err error) bool {
	var he *HandshakeError
	return errors.As(err, &he) && he.Status == http.StatusBadRequest && he.Code == "unknown_parameter" &&
		strings.Contains(he.Message, `"batch"`)
}

// permanent reports whether retrying cannot help: the server understood
// the request and refused it (bad parameter, no such endpoint, forbidden).
func permanent(err error) bool {
	var ue *UnauthorizedError
	if errors.As(err, &ue) {
		return true
	}
	var he *HandshakeError
	if !errors.As(err, &he) {
		return false
	}
	s := he.Status
	return s >= 400 && s < 500 && s != http.StatusRequestTimeout && s != http.StatusTooManyRequests
}

// backoff is the wait before reconnection attempt n (0-based): the
// exponential step min·2ⁿ capped at max, of which a random half is waited
// ("equal jitter"), so clients dropped together do not return together.
func backoff(n int, minB, maxB time.Duration) time.Duration {
	d := minB
	for i := 0; i < n && d < maxB; i++ {
		d *= 2
	}
	d = min(d, maxB)
	half := d / 2
	return half + rand.N(half+1)
}
