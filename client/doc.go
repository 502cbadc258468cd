// Package client is a small Go client of the cellos-allinone HTTP API and
// WebSocket event stream (docs/design.md §5). The command-line tools and the
// tests use it; it knows nothing of NATS or bbolt.
//
// Every call takes a context and is bounded by it. API errors come back as
// *APIError with the server's machine code; transport errors are returned
// as they are. Follow adds reconnection on top of Subscribe: it resumes
// from the last sequence it handed over, so its callback sees every event
// once, in sequence order, across server restarts.
package client
