package eventlog

import (
	"fmt"
	"math"
)

// Cursor is where a reader of the log wants to resume.
type Cursor struct {
	// Since is the last sequence the reader already has; HasSince is false
	// when it has none and wants only what is published from now on.
	Since    uint64
	HasSince bool
	// Epoch, when not "", is the stream incarnation Since belongs to.
	Epoch string
}

// CursorError says why a cursor cannot be resumed without a gap. The
// reader has to refetch a snapshot and resume from its cursor.
type CursorError struct {
	Cursor Cursor
	State  State
	Reason string
}

func (e *CursorError) Error() string { return e.Reason }

// StartSeq is the first stream sequence to deliver for a cursor: since+1
// when a cursor is given (since 0 starts at 1; the largest uint64
// saturates instead of wrapping to 0), lastSeq+1 when it is not, so that a
// reader without a cursor gets exactly the events stored after lastSeq.
// Starting by sequence instead of JetStream's "deliver new" makes the
// hand-over exact: lastSeq is the value the reader was told.
func StartSeq(since uint64, hasSince bool, lastSeq uint64) uint64 {
	base := lastSeq
	if hasSince {
		base = since
	}
	if base == math.MaxUint64 {
		return base
	}
	return base + 1
}

// Resume decides where reading after c starts on a stream in state st, or
// returns a *CursorError when it cannot start there without a gap:
//
//   - the epoch is given and is not st's: the stream was recreated;
//   - since+1 is below the first retained sequence: the events in between
//     expired or were purged (JetStream would silently start at the
//     floor, docs/design.md §9, so this is decided here by comparing
//     sequences) — except since 0: a reader that holds nothing has
//     nothing to lose, so it starts at the first retained sequence,
//     "everything retained" (docs/design.md §5);
//   - since is beyond the last sequence: the cursor belongs to another
//     incarnation or to a tail lost in a power cut, and waiting for "new"
//     sequences would hand the reader events it believes it already has.
func Resume(c Cursor, st State) (start uint64, err error) {
	start = StartSeq(c.Since, c.HasSince, st.LastSeq)
	switch {
	case c.Epoch != "" && c.Epoch != st.Epoch:
		return 0, &CursorError{c, st, fmt.Sprintf("epoch %q is not the stream's current epoch %q: the stream was recreated", c.Epoch, st.Epoch)}
	case !c.HasSince:
		return start, nil
	case c.Since == 0:
		return max(start, st.FirstSeq), nil
	case start < st.FirstSeq:
		return 0, &CursorError{c, st, fmt.Sprintf("since %d is below the retained floor: the first retained sequence is %d", c.Since, st.FirstSeq)}
	case c.Since > st.LastSeq:
		return 0, &CursorError{c, st, fmt.Sprintf("since %d is beyond the stream's last sequence %d: the cursor belongs to another stream incarnation", c.Since, st.LastSeq)}
	}
	return start, nil
}
