package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"cellos-allinone/projector"
)

// Read-your-writes (docs/design.md §5): every registry read takes
// min_seq=N and answers from a state whose cursor is N or later, waiting
// up to wait for the projector to commit one.

// Bounds of wait=.
const (
	DefaultWait = 5 * time.Second
	MaxWait     = 30 * time.Second
)

// parseRead parses the query of a registry read: its own parameters
// (names) and min_seq and wait, which every one takes.
func parseRead(u *url.URL, names ...string) (query, consistency, error) {
	q, err := parseQuery(u, append([]string{"min_seq", "wait"}, names...)...)
	if err != nil {
		return q, consistency{}, err
	}
	c, err := q.consistency()
	return q, c, err
}

// consistency is a read's min_seq and wait; zero when min_seq is absent.
type consistency struct {
	minSeq uint64
	wait   time.Duration
	given  bool
}

func (q query) consistency() (consistency, error) {
	c := consistency{wait: DefaultWait}
	if q.has("wait") {
		if !q.has("min_seq") {
			return c, Errorf(CodeBadParameter, "wait applies only with min_seq")
		}
		var err error
		if c.wait, err = ParseWait(q.str("wait")); err != nil {
			return c, err
		}
	}
	if !q.has("min_seq") {
		return c, nil
	}
	n, err := ParseSeq("min_seq", q.str("min_seq"))
	if err != nil {
		return c, err
	}
	c.minSeq, c.given = n, true
	return c, nil
}

// ParseWait parses wait=: a duration from 0 to MaxWait ("500ms", "5s").
func ParseWait(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || d > MaxWait {
		return 0, Errorf(CodeBadParameter, "wait must be a duration from 0s to %v such as 500ms or 5s, got %q", MaxWait, s)
	}
	return d, nil
}

// read calls fn with one view of the registry: the last commit or, with
// min_seq, one that holds it. Past wait the answer is 503 not_caught_up
// with the cursor served and Retry-After; a server shutting down ends the
// wait too.
func (s *Server) read(w http.ResponseWriter, r *http.Request, c consistency, fn func(projector.View)) error {
	if !c.given {
		return s.proj.Read(fn)
	}
	s.metrics.waiting.Inc()
	defer s.metrics.waiting.Dec()
	ctx, cancel := context.WithTimeout(r.Context(), c.wait)
	defer cancel()
	defer context.AfterFunc(s.closing, cancel)()
	err := s.proj.ReadFrom(ctx, c.minSeq, fn)
	var nc *projector.NotCaughtUpError
	if !errors.As(err, &nc) {
		return err
	}
	if s.closing.Err() != nil {
		return Errorf(CodeShuttingDown, "the server is shutting down")
	}
	w.Header().Set("Retry-After", "1")
	return &Error{
		Code: CodeNotCaughtUp,
		Message: fmt.Sprintf("the registry holds the events up to %d, not yet %d, after waiting %v; retry, or wait longer with wait= (at most %v)",
			nc.Cursor, nc.Seq, c.wait, MaxWait),
		Extra: map[string]any{"cursor": nc.Cursor},
	}
}
