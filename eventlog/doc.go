// Package eventlog is the JetStream side of the CellOS event log: the
// CELLOS_EVENTS stream, its incarnations (epochs) and state, and reading
// it in order.
//
// It works on any *nats.Conn, so the same code serves the embedded server
// (in-process connection) and an external cluster.
//
// Incarnations: the Stream is the one place that decides the stream changed.
// Every stream info it reads is compared with the current Incarnation; a
// different creation time ends it (Watch also notices a deleted stream
// and creates it again). Readers bind their work to the incarnation they
// started in (Incarnation.Bind) and stop when it ends.
//
// Ordering guarantee of Follow: messages are handed over one at a time in
// strictly increasing stream sequence; a sequence is never repeated, and a
// sequence that is skipped was not in the stream when the consumer passed
// it (expired or deleted). Follow never stops at the end of the stream: it
// goes on with messages published later, on the same consumer. A lost
// delivery ends it with an error instead of a silent gap.
//
// Guarantee of a Reader: a batch never jumps over a retained event that
// matches its filter; when the floor overtook it, or its incarnation
// ended, Batch says so with a *CursorError.
//
// Memory: every read-ahead is bounded by bytes (FollowBufferBytes,
// ReaderBufferBytes); a Reader's batches by count (ReaderBatch) too.
package eventlog
