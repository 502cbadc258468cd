// Package projection folds the CellOS event log into a registry of
// formations and cells, exactly as the fold rules of docs/design.md §3 say.
//
// It is pure: no I/O, no clocks, no goroutines. The state after applying
// events 1..N is a function of those events alone, so a projection restored
// from a checkpoint taken at N and fed N+1.. equals one folded from scratch.
//
// The retention rule (docs/design.md §3) is Prune: an entity's Span says
// where it lies in the log, and what ended before the floor leaves the
// registry. A pruned state is a function of the events applied and the
// floors it was pruned at; CompareRetained says what a fold of the
// retained events alone proves of it.
//
// Hash is the state hash (docs/design.md §5): one digest of the registry
// a state holds at its cursor, over a Walker — the Projection, or the
// store's View — so that a state file and a fold of the log compare by one
// value.
//
// A Projection is not safe for concurrent use; its owner (the projector)
// serialises access.
//
// Choices where the design is silent:
//   - fixed fields (a cell's formationId, specId, runId, tenantId,
//     correlation; a formation's name, tenantId, labels) are filled by the
//     first event that carries them, whether or not that event also moves
//     the state (an event of another tenant is rejected, see below);
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
//
// Choices of fold v3 (tenants) where the design is silent:
//   - a Message without a subject reads as the untenanted form (tools and
//     tests that fold payloads alone get fold v2's tenants);
//   - rule a looks at data.tenantId and data.correlation.tenantId each:
//     either one naming another tenant than the subject's rejects;
//   - a malformed event or one of an unknown type is counted as such,
//     never as rejected: its data is not read;
//   - a rejected event changes nothing, also none of the fields it carries
//     that the entity lacks;
//   - rule c judges the formation the event names, also when the cell
//     already belongs to another (whose formationId it keeps); the cell's
//     tenant there is the event's, else the one the cell has;
//   - a cell that named a formation before the formation had a tenant,
//     and has a tenant of its own, keeps it when the formation gets
//     another: the formation counts it, and its later events that name the
//     formation are rejected (rule c);
//   - a formation deleted with its first tenant (a "deleted" that carries
//     one) hands that tenant to its cells like any first tenant;
//   - untenantedOfTenant counts the applied and the rejected events of a
//     known type in the untenanted form, under the tenant they declare,
//     else their entity's as the event leaves it (a cell that inherits at
//     creation counts under the inherited tenant); an event is counted
//     when it is folded, never again when its entity gets a tenant later;
//   - it names at most MaxUntenantedTenants tenants, the first met in the
//     log, so that it is the same in every fold of one log; the others
//     count under "*" (which a tenant declared as "*" in data shares).
//
// Rejection codes, as logged: subject_tenant (rule a), entity_tenant
// (rule b), formation_tenant (rule c).
package projection
