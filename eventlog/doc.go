// Package eventlog is the JetStream side of the CellOS event log: the
// CELLOS_EVENTS stream, its identity (epoch) and state, and reading it in
// order.
//
// It works on any *nats.Conn, so the same code serves the embedded server
// (in-process connection) and an external cluster.
//
// Ordering guarantee of Follow: messages are handed over one at a time in
// strictly increasing stream sequence; a sequence is never repeated, and a
// sequence that is skipped was not in the stream when the consumer passed
// it (expired or deleted). Follow never stops at the end of the stream: it
// goes on with messages published later, on the same consumer.
package eventlog
