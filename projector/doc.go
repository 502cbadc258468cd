// Package projector keeps the projection in step with the event log: it
// boots from the bbolt checkpoint, replays what came after the cursor,
// follows the live stream on the same consumer, and checkpoints.
//
// Guarantees:
//   - One goroutine applies events, in stream-sequence order; readers see
//     the projection between two events, never in the middle of one.
//   - Until the replay has reached the stream's last sequence as read at
//     boot, Ready is false and readers must not serve the projection.
//   - A checkpoint holds the entities and the cursor of one instant: they
//     are taken together under the projection's lock and written in one
//     bbolt transaction. A failed write is retried with the next
//     checkpoint; the previous checkpoint on disk stays intact.
package projector
