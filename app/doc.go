// Package app wires one cellos-allinone process: checkpoint store, NATS
// (embedded or external), event log, projector and HTTP server, started
// and stopped in the right order. Tests use it to run the whole program
// in-process.
//
// Start order: checkpoint file, NATS, stream, HTTP listener (so health and
// status answer during a long replay), projector. Close order: stop
// accepting HTTP, stop the projector and write the final checkpoint, close
// the NATS connection, shut the embedded server down, close bbolt.
package app
