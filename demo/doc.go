// Package demo generates realistic CellOS traffic for demos and tests: a
// pure, seeded state machine that emits CloudEvents 1.0 of the v1 event
// contract (docs/design.md §2, §3) for several tenants.
//
// Formations go created → launching → running (→ degraded → running) →
// completed, failed or cancelled, and some are deleted afterwards. Their
// cells are admitted, started, complete (with an exit code) or fail (with
// a reason), often get a compliance summary, and are destroyed. Now and
// then an event of a type the projection does not know is mixed in, as a
// newer producer would send.
//
// Determinism: the sequence of events, byte for byte, is a function of
// Options alone. Event times are Start + n·Step for the n-th event, never
// the wall clock; ids derive from the seed. A Generator is not safe for
// concurrent use.
package demo
