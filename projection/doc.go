// Package projection folds the CellOS event log into a registry of
// formations and cells, exactly as the fold rules of docs/design.md §3 say.
//
// It is pure: no I/O, no clocks, no goroutines. The state after applying
// events 1..N is a function of those events alone, so a projection restored
// from a checkpoint taken at N and fed N+1.. equals one folded from scratch.
//
// A Projection is not safe for concurrent use; its owner (the projector)
// serialises access.
//
// Choices where the design is silent:
//   - fixed fields (a cell's formationId, specId, runId, tenantId,
//     correlation; a formation's name, tenantId, labels) are filled by the
//     first event that carries them, whether or not that event also moves
//     the state;
//   - an entity id that is not one NATS token (1–128 letters, digits, '-',
//     '_') makes the event malformed, like a missing one;
//   - a compliance summary stores the event's whole data object;
//   - the applied counter counts well-formed events of a known type, even
//     when they change nothing (a late or repeated event);
//   - a CloudEvent time that is not RFC 3339, or whose UTC year is outside
//     0–9999 (JSON cannot encode it), falls back to the message time;
//   - a field of the wrong JSON type reads as absent; "exitCode": null
//     leaves exitCode null;
//   - the first message applied at cursor 0 records no gap, whatever its
//     sequence (a log whose head expired is not a gap of a rebuild).
package projection
