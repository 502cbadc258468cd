package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"cellos-allinone/app"
	"cellos-allinone/eventlog"
	"cellos-allinone/projection"
	"cellos-allinone/projector"
	"cellos-allinone/store"
)

// snapshot hash: the state hash (docs/design.md §5, "The state hash") of
// a state — the state file of a stopped server, or what a running server
// serves — beside the hash of a fold of its stream up to the same cursor:
// "is this box what a rebuild would build", and, with --at, a value two
// servers of one stream compare at one cursor (docs/durability.md, "The
// state hash").

// hashReport is what snapshot hash found (-o json).
type hashReport struct {
	// State is the hash of the state file or of the served state; null
	// with --at and no state at that cursor to compare.
	State *hashSide `json:"state"`
	// Fold is the hash of a fold of the stream (the retained events from
	// its first sequence) up to the state's cursor or --at; null with
	// --fold=false.
	Fold *hashSide `json:"fold"`
	// Compared: both are of one cursor and the fold can equal the state
	// (nothing the state folded has expired); Equal then says whether
	// they are.
	Compared bool `json:"compared"`
	Equal    bool `json:"equal"`
	// Difference names the first entity that differs, when cheap to
	// find (--data-dir); "" otherwise.
	Difference string `json:"difference"`
	// Note says why the two were not compared, or what equal means.
	Note string `json:"note"`
}

// hashSide is one hash: projection.StateHash and where it comes from.
type hashSide struct {
	projection.StateHash
	Source string `json:"source"`
	Epoch  string `json:"epoch"`
	// Floor is the stream's first sequence when folded: the fold holds
	// the events from it to the cursor.
	Floor uint64 `json:"floor,omitempty"`
	// Events counts the events the state or the fold folded (applied,
	// ignored, malformed, rejected); 0 for a running server's hash when
	// its cursor moved on before its counters were read.
	Events uint64 `json:"events,omitempty"`
	// DurationMs is how long the hash took (the fold's: fold and hash).
	DurationMs int64 `json:"durationMs"`
}

func snapshotHash(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("snapshot hash",
		"Prints the state hash (cellos-state-hash/v1, docs/design.md §5) of the checkpoint of a stopped\n"+
			"server (--data-dir) or of what a running server serves (--server, GET /v1/status?hash=1), and\n"+
			"the hash of a fold of the stream up to the same cursor — what a rebuild would build — saying\n"+
			"whether they are equal. --at SEQ folds the stream up to SEQ instead: a value servers of one\n"+
			"stream compare at one cursor. Once events the state folded have expired, a fold of the\n"+
			"retained events cannot equal it: that is said, not reported as a difference (snapshot verify\n"+
			"compares what the retained log proves). Exit 1 when the two are comparable and differ.",
		"cellos-allinone snapshot hash --data-dir ./cellos-data")
	fs.SetOutput(stderr)
	dataDir := dataDirFlag(fs)
	var rm remote
	rm.bind(fs, "")
	fs.Lookup("server").Usage = "ask this running server for its state hash instead of reading a stopped data dir"
	natsURL := fs.String("nats-url", "nats://127.0.0.1:4222", "NATS of the running server, for the fold (with --server)")
	fold := fs.String("fold", "auto", "fold the stream and compare: true, false, or auto (with --data-dir or --at, not with --server alone)")
	at := fs.String("at", "", "fold the stream up to this sequence (default: the state's cursor)")
	scratch := fs.String("scratch-dir", "", "where the fold's scratch state file goes, removed afterwards (default: the data dir; with --server the system's temporary directory)")
	out := bindOutput(fs, "text", "json")
	if err := parse(fs, args); err != nil {
		return err
	}
	var atSeq uint64
	if *at != "" {
		n, err := strconv.ParseUint(*at, 10, 64)
		if err != nil || n == 0 {
			return usageError{fmt.Sprintf("--at %q: want a stream sequence (1 or more)", *at)}
		}
		atSeq = n
	}
	var folding bool
	switch *fold {
	case "auto":
		folding = rm.server == "" || atSeq != 0
	case "true", "false":
		folding = *fold == "true"
	default:
		return usageError{fmt.Sprintf("--fold %q: want true, false or auto", *fold)}
	}
	if atSeq != 0 && !folding {
		return usageError{"--at folds the stream: it cannot go with --fold=false"}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	var rep hashReport
	var err error
	if rm.server != "" {
		rep, err = hashServer(ctx, &rm, *natsURL, cmp.Or(*scratch, os.TempDir()), folding, atSeq)
	} else {
		rep, err = hashDataDir(ctx, *dataDir, cmp.Or(*scratch, *dataDir), folding, atSeq)
	}
	if err != nil {
		return err
	}
	if out.value == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printHashReport(stdout, &rep)
	}
	if rep.Compared && !rep.Equal {
		return errors.New("the state hash differs from a fold of the stream at the same cursor: the state is not what a rebuild would build" +
			differenceHint(&rep))
	}
	return nil
}

func differenceHint(rep *hashReport) string {
	if rep.Difference != "" {
		return fmt.Sprintf(" (first: %s); snapshot verify lists the differences", rep.Difference)
	}
	return "; snapshot verify lists the differences"
}

func printHashReport(w io.Writer, rep *hashReport) {
	line := func(what string, s *hashSide) {
		fmt.Fprintf(w, "%-6s %s (%d ms)\n       %s at cursor %d (epoch %s): %d formations (tombstones included), %d cells",
			what, s.Source, s.DurationMs, s.Value, s.Cursor, s.Epoch, s.Formations, s.Cells)
		if s.Events > 0 {
			fmt.Fprintf(w, ", %d events folded", s.Events)
		}
		if s.Floor > 1 {
			fmt.Fprintf(w, ", from #%d (events 1..%d expired)", s.Floor, s.Floor-1)
		}
		fmt.Fprintln(w)
	}
	if rep.State != nil {
		line("state", rep.State)
	}
	if rep.Fold != nil {
		line("fold", rep.Fold)
	}
	switch {
	case rep.Compared && rep.Equal:
		fmt.Fprintf(w, "equal: %s\n", rep.Note)
	case rep.Compared && rep.Difference != "":
		fmt.Fprintf(w, "DIFFERENT: %s\n", rep.Difference)
	case rep.Compared:
		fmt.Fprintln(w, "DIFFERENT")
	case rep.Note != "":
		fmt.Fprintf(w, "not compared: %s\n", rep.Note)
	}
}

// eventsOf counts the events a fold folded, whatever their outcome.
func eventsOf(c projection.Counters) uint64 { return c.Applied + c.Ignored + c.Malformed + c.Rejected }

// hashDataDir hashes the checkpoint of a stopped server — in one read
// transaction, streaming — and, when folding, a fold of the data dir's
// stream up to its cursor (or atSeq).
func hashDataDir(ctx context.Context, dataDir, scratch string, folding bool, atSeq uint64) (hashReport, error) {
	st, err := openCheckpoint(dataDir)
	if err != nil {
		return hashReport{}, err
	}
	defer st.Close()
	cp, found, err := st.Info()
	if err != nil || !found || cp.Schema != store.SchemaVersion {
		return hashReport{}, fmt.Errorf("no usable checkpoint (found %v, schema %d, err %v): nothing to hash", found, cp.Schema, err)
	}
	state := &hashSide{Source: st.Path(), Epoch: cp.Epoch, Events: eventsOf(cp.Meta.Counters)}
	start := time.Now()
	err = st.View(func(v *store.View) (err error) {
		state.StateHash, err = projection.Hash(v)
		return err
	})
	if err != nil {
		return hashReport{}, fmt.Errorf("checkpoint records unreadable: %w (the next start rebuilds the state)", err)
	}
	state.DurationMs = time.Since(start).Milliseconds()
	rep := hashReport{State: state}
	if !folding {
		return rep, nil
	}
	l, stop, err := offlineLog(ctx, dataDir)
	if err != nil {
		return hashReport{}, err
	}
	defer stop()
	if l.Epoch() != cp.Epoch {
		rep.Note = fmt.Sprintf("the checkpoint is of stream epoch %s, the stream's is %s: the next start rebuilds", cp.Epoch, l.Epoch())
		return rep, nil
	}
	fold, done, err := foldTo(ctx, l, cmp.Or(atSeq, cp.Meta.Cursor), scratch, &rep)
	if err != nil {
		return expiredFold(&rep, err, atSeq)
	}
	defer done()
	// The event counters count every event folded, expired or not: equal
	// ones say the state folded no event the fold lacks.
	folded, retained := state.Events, rep.Fold.Events
	compare(&rep, rep.Fold.Floor <= 1 || folded == retained,
		expiredNote(rep.Fold.Floor, fmt.Sprintf("the state folded %d events where %d are retained", folded, retained)))
	if rep.Compared && !rep.Equal {
		// Cheap: both walk in id order, side by side. The state walks on
		// this goroutine, where a fault in its mapped file is damage
		// (store.View), the fresh fold beside it.
		err := fold.View(func(want *store.View) error {
			return st.View(func(got *store.View) (err error) {
				rep.Difference, err = projection.FirstDifference(want, got)
				return err
			})
		})
		if err != nil {
			return hashReport{}, fmt.Errorf("compare the state with the fold: %w", err)
		}
	}
	return rep, nil
}

// hashServer asks a running server for its state hash and, when folding,
// folds the server's stream (through natsURL) up to the hash's cursor (or
// atSeq).
func hashServer(ctx context.Context, rm *remote, natsURL, scratch string, folding bool, atSeq uint64) (hashReport, error) {
	c, err := rm.client("")
	if err != nil {
		return hashReport{}, err
	}
	ans, err := c.StateHash(ctx)
	if err != nil {
		return hashReport{}, remoteError(rm.server, err, false)
	}
	h := &ans.Hash
	rep := hashReport{State: &hashSide{StateHash: h.StateHash, Source: rm.server, Epoch: h.Epoch, DurationMs: h.DurationMs}}
	// The status read after the hash counts the events of the hashed
	// state when it is at the same cursor: no event moves it without
	// moving the cursor.
	if ans.Cursor == h.Cursor {
		rep.State.Events = eventsOf(ans.Events)
	}
	if !folding {
		return rep, nil
	}
	nc, err := rm.connectNATS(natsURL, "cellos-allinone snapshot hash")
	if err != nil {
		return hashReport{}, err
	}
	defer nc.Close()
	l, err := eventlog.Attach(ctx, nc)
	if err != nil {
		return hashReport{}, err
	}
	if l.Epoch() != h.Epoch {
		rep.Note = fmt.Sprintf("the server hashed a state of stream epoch %s, the stream at %s is of epoch %s", h.Epoch, natsURL, l.Epoch())
		return rep, nil
	}
	_, done, err := foldTo(ctx, l, cmp.Or(atSeq, h.Cursor), scratch, &rep)
	if err != nil {
		return expiredFold(&rep, err, atSeq)
	}
	done()
	// Without the state's event counters (the server's cursor moved on
	// between the hash and the status read), comparable when nothing
	// expired.
	if rep.State.Events == 0 {
		compare(&rep, rep.Fold.Floor <= 1, expiredNote(rep.Fold.Floor,
			"the server's cursor moved on before its event counters were read: hash again while the stream is quiet"))
	} else {
		compare(&rep, rep.Fold.Floor <= 1 || rep.State.Events == rep.Fold.Events, expiredNote(rep.Fold.Floor,
			fmt.Sprintf("the state folded %d events where %d are retained", rep.State.Events, rep.Fold.Events)))
	}
	return rep, nil
}

// errExpired: no fold reaches the cursor asked for.
var errExpired = errors.New("expired")

// expiredFold turns errExpired into rep's note when the cursor was the
// state's (nothing to compare), and keeps it an error for --at.
func expiredFold(rep *hashReport, err error, atSeq uint64) (hashReport, error) {
	if errors.Is(err, errExpired) && atSeq == 0 {
		rep.Note = strings.TrimPrefix(err.Error(), errExpired.Error()+": ") + "; nothing the stream holds folds to the state's cursor"
		return *rep, nil
	}
	return hashReport{}, err
}

// foldTo folds the retained events of l up to seq into a scratch state
// file in a new directory under scratch — bounded memory, as a rebuild —
// and sets rep.Fold with its hash. The caller calls done, which removes
// the scratch file.
func foldTo(ctx context.Context, l *eventlog.Stream, seq uint64, scratch string, rep *hashReport) (_ *store.Store, done func(), err error) {
	st, err := l.State(ctx)
	if err != nil {
		return nil, nil, err
	}
	if seq > st.LastSeq {
		return nil, nil, fmt.Errorf("the stream ends at #%d: nothing to fold up to #%d", st.LastSeq, seq)
	}
	if st.Messages > 0 && seq+1 < st.FirstSeq {
		return nil, nil, fmt.Errorf("%w: the events up to #%d have expired (the stream starts at #%d): no fold reaches #%d", errExpired, st.FirstSeq-1, st.FirstSeq, seq)
	}
	dir, err := os.MkdirTemp(scratch, ".snapshot-hash-")
	if err != nil {
		return nil, nil, fmt.Errorf("a scratch directory for the fold (--scratch-dir): %w", err)
	}
	fold, _, err := store.Open(filepath.Join(dir, app.CheckpointFile))
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	done = func() { fold.Close(); os.RemoveAll(dir) }
	start := time.Now()
	floor, err := projector.FoldInto(ctx, l, seq, fold)
	if err != nil {
		done()
		return nil, nil, fmt.Errorf("fold of the stream: %w", err)
	}
	side := &hashSide{Source: "a fold of the stream " + eventlog.StreamName, Epoch: l.Epoch(), Floor: floor}
	err = fold.View(func(v *store.View) (err error) {
		side.Events = eventsOf(v.Counters())
		side.StateHash, err = projection.Hash(v)
		return err
	})
	if err != nil {
		done()
		return nil, nil, err
	}
	side.DurationMs = time.Since(start).Milliseconds()
	rep.Fold = side
	return fold, done, nil
}

// compare decides whether the state and the fold compare, and whether
// they are equal. The fold holds the retained events only: it can equal
// the state when the state folded the same events — none that has since
// expired. comparable says so; why says why not.
func compare(rep *hashReport, comparable bool, why string) {
	s, f := rep.State, rep.Fold
	switch {
	case s.Cursor != f.Cursor:
		rep.Note = fmt.Sprintf("the state is at cursor %d, the fold at %d: hash the other side at #%d to compare", s.Cursor, f.Cursor, f.Cursor)
	case s.Value == f.Value:
		rep.Compared, rep.Equal = true, true
		rep.Note = "the state is what a rebuild from the stream would build"
	case !comparable:
		rep.Note = why
	default:
		rep.Compared = true
	}
}

// expiredNote says why a fold of the retained events cannot equal a
// state that folded events now expired.
func expiredNote(floor uint64, how string) string {
	return fmt.Sprintf("events 1..%d have expired and %s: a fold of the retained events cannot equal the state "+
		"(it lacks what only expired events said); snapshot verify --data-dir compares what the retained log proves "+
		"(docs/durability.md, \"The state hash\")", floor-1, how)
}
