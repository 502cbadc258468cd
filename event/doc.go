// Package event is the CellOS event contract (docs/design.md, "The event
// log"): CloudEvents 1.0 in structured JSON mode, the v1 types the
// projection understands, entity ids, and the subject an event is stored
// under — cellos.events.<formation|cell>.<id>.<phase>.
//
// It is the one place that says whether an event is valid and where it
// goes: Check (the strict rules of POST /v1/events) and Route (how a
// supervisor routes any event of the CellOS namespace, known type or not)
// are used by ingest, the demo generator, the command line and the tests;
// Decode is the lenient reading the fold uses.
package event
