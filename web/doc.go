// Package web serves everything HTTP of one process (docs/design.md §5): the
// read API over the projection, event paging and ingest (/v1/events), the
// WebSocket event bridge (/ws/events), status, health, metrics, and the
// embedded web view (/).
//
// Every error body is {"error":{"code","message"}}; codes map to HTTP
// statuses and WebSocket close codes in one table (errors.go). Every
// request passes through one authorisation point (auth.go) before it
// reaches a handler.
//
// WebSocket ordering: each socket receives events in strictly increasing
// stream sequence with no gap among the retained events matching its
// filter and no duplicate, across the hand-over from its history consumer
// to the shared live fan-out (ws_hub.go). Memory per socket is bounded: a
// socket whose queue passes its bound, or that falls too far behind, is
// closed with 4408 (docs/websocket.md).
package web
