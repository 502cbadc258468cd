package web

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"cellos-allinone/projector"
)

func (s *Server) status(w http.ResponseWriter, r *http.Request) error {
	q, err := parseQuery(r.URL, "hash")
	if err != nil {
		return err
	}
	switch v := q.str("hash"); {
	case !q.has("hash") || v == "0":
	case v == "1":
		// Computed (or the last result kept, when the state is the one it
		// hashed or within the cooldown after it) before the status is
		// read, which then shows it: one hash at a time, bounded by the
		// request's own limit (docs/design.md §5).
		if _, err := s.proj.HashState(r.Context()); err != nil {
			if errors.Is(err, projector.ErrStateDamaged) {
				return err
			}
			if r.Context().Err() != nil {
				return Errorf(CodeUnavailable, "the state hash did not finish before the request ended: %v", err)
			}
			return Errorf(CodeUnavailable, "the state hash could not be computed: %v", err)
		}
	default:
		return Errorf(CodeBadParameter, "hash=%q: want 1 (compute the state hash) or 0", q.str("hash"))
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	st, err := s.proj.Status(ctx, s.cfg.Version)
	if errors.Is(err, projector.ErrStateDamaged) {
		// The state's counts cannot be vouched for: 503 state_damaged
		// (writeError), as every read that meets the damage answers,
		// while the repair the read asked for runs.
		return err
	}
	if err != nil {
		return Errorf(CodeUnavailable, "event log unavailable: %v", err)
	}
	writeJSON(w, http.StatusOK, statusBody{Status: st, Ingest: ingestStatus{DuplicatesByTenant: s.dups.snapshot()}})
	return nil
}

// statusBody is GET /v1/status: the projector's status and what the HTTP
// side counts itself.
type statusBody struct {
	projector.Status
	Ingest ingestStatus `json:"ingest"`
}

// ingestStatus counts what POST /v1/events answered since the process
// started.
type ingestStatus struct {
	// DuplicatesByTenant: events answered duplicate:true, by the tenant of
	// the publisher ("" for untenanted ones). Publishes over NATS are not
	// seen here.
	DuplicatesByTenant map[string]uint64 `json:"duplicatesByTenant"`
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// readyz answers 200 once the boot replay is done and while commits
// succeed. A commit that keeps failing is 503 commit_failing with the
// reason, whether the boot replay is done or not: the fold has stopped
// until a retry succeeds, and the read API serves the last commit.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	if f := s.proj.CommitFailing(); f != nil {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(time.Until(f.NextAttemptAt).Seconds())))))
		return &Error{
			Code: CodeCommitFailing,
			Message: fmt.Sprintf("the state file cannot be written since %s (%d attempts, the next at %s): %s; "+
				"the fold has stopped and reads serve the last commit until a commit succeeds",
				f.Since.UTC().Format(time.RFC3339), f.Attempts, f.NextAttemptAt.UTC().Format(time.RFC3339), f.Error),
			Extra: map[string]any{"since": f.Since.UTC(), "attempts": f.Attempts, "nextAttemptAt": f.NextAttemptAt.UTC()},
		}
	}
	if !s.proj.Ready() {
		return Errorf(CodeNotReady, "boot replay in progress")
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}
