// Package projector keeps the projection in step with the event log: it
// boots from the bbolt checkpoint, replays what came after the cursor,
// follows the live stream on the same consumer, and checkpoints.
//
// Guarantees:
//   - One goroutine applies events, in stream-sequence order; readers see
//     the projection between two events, never in the middle of one, and
//     with the epoch it belongs to (Read gives both in one View).
//   - Until the replay has reached the stream's last sequence as read at
//     boot, or nothing is left to read, Ready is false and readers must
//     not serve the projection.
//   - When the stream is deleted and created again while serving, the old
//     view stays served (Status says stale) while the new incarnation is
//     folded beside it; the new one replaces it in one step once it has
//     caught up. No answer mixes the two.
//   - A checkpoint holds the entities and the cursor of one instant: they
//     are written in one bbolt transaction. A failed write (a full disk,
//     an I/O error) rolls back whole and stops the fold: nothing more is
//     taken from the stream, the same commit is retried with backoff
//     (100 ms doubling to 30 s), CommitFailing says since when, and reads
//     serve the previous commit, intact on disk. When a retry succeeds the
//     fold goes on where it stopped: nothing lost, nothing applied twice.
//   - The state file is compacted when its free pages exceed
//     CompactMinFree bytes and CompactFreeRatio of its pages (compact.go):
//     at boot before the replay, or while running between two commits,
//     the fold paused for the copy. Reads go on from the served file and
//     wait only for the rename that swaps the copy in; the copy holds the
//     same commit, so no answer changes with the swap.
//   - The served state is scrubbed (scrub.go): all of it every
//     ScrubInterval and once after an unclean stop, at ScrubBudget of one
//     core, each step under the lock a read takes; damage found is
//     repaired as damage a read meets (repair.go).
//   - Falling behind is said: a warning once the oldest unapplied event
//     has waited LagWarnAfter, one line when caught up again.
package projector
