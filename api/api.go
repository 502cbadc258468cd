// Package api declares the wire shapes of the HTTP and WebSocket API
// (docs/design.md, "HTTP and WebSocket"), once: the server encodes them
// (package web) and the client decodes them (package client). JSON names
// are camelCase; absent optional strings are "", never null.
package api

import (
	"encoding/json"
	"time"

	"cellos-allinone/projection"
)

// FormationList is GET /v1/formations: one page, ordered by id; Next is
// the After of the following page, "" on the last.
type FormationList struct {
	Cursor     uint64                 `json:"cursor"`
	Epoch      string                 `json:"epoch"`
	Formations []projection.Formation `json:"formations"`
	Next       string                 `json:"next"`
}

// FormationDetail is GET /v1/formations/{id}: the formation and the first
// page of its cells, ordered by id; CellsNext is the After of the next
// page of GET /v1/cells?formation={id}, "" on the last.
type FormationDetail struct {
	Cursor    uint64               `json:"cursor"`
	Epoch     string               `json:"epoch"`
	Formation projection.Formation `json:"formation"`
	Cells     []projection.Cell    `json:"cells"`
	CellsNext string               `json:"cellsNext"`
}

// CellList is GET /v1/cells: one page, ordered by id.
type CellList struct {
	Cursor uint64            `json:"cursor"`
	Epoch  string            `json:"epoch"`
	Cells  []projection.Cell `json:"cells"`
	Next   string            `json:"next"`
}

// CellDetail is GET /v1/cells/{id}.
type CellDetail struct {
	Cursor uint64          `json:"cursor"`
	Epoch  string          `json:"epoch"`
	Cell   projection.Cell `json:"cell"`
}

// Summary is GET /v1/summary: the registry in numbers, at one cursor. The
// counts sit beside cursor and epoch: {cursor, epoch, formations:{total,
// byStatus}, cells:{total, byState, byOutcome}, tenants:[{id, formations,
// cells, failed}]}.
type Summary struct {
	Cursor uint64 `json:"cursor"`
	Epoch  string `json:"epoch"`
	projection.Summary
}

// Event is one stored event as /v1/events pages and /ws/events frames
// carry it: the CloudEvent as stored, or a JSON string of the stored bytes
// when they are not a JSON object.
type Event struct {
	Seq     uint64          `json:"seq"`
	Subject string          `json:"subject"`
	Event   json.RawMessage `json:"event"`
}

// EventPage is GET /v1/events: the events after since; Next is the since
// of the following page.
type EventPage struct {
	FirstSeq uint64  `json:"firstSeq"`
	LastSeq  uint64  `json:"lastSeq"`
	Epoch    string  `json:"epoch"`
	Events   []Event `json:"events"`
	Next     uint64  `json:"next"`
}

// Hello is the first frame of every /ws/events socket (Type "hello").
type Hello struct {
	Type     string `json:"type"`
	FirstSeq uint64 `json:"firstSeq"`
	LastSeq  uint64 `json:"lastSeq"`
	Epoch    string `json:"epoch"`
}

// Published is the answer to POST /v1/events.
type Published struct {
	Seq       uint64 `json:"seq"`
	Subject   string `json:"subject"`
	Duplicate bool   `json:"duplicate"`
}

// Batch is the answer to a batch POST /v1/events
// (application/cloudevents-batch+json): one result per event, in the
// order of the batch.
type Batch struct {
	Results []BatchResult `json:"results"`
}

// BatchResult is one event's answer in a Batch: where it was stored
// (Published), or why it was refused (Error); never both.
type BatchResult struct {
	*Published
	Error *ItemError `json:"error,omitempty"`
}

// ItemError is why one event of a batch was refused: the code and message
// the same event would get alone.
type ItemError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Whoami is GET /v1/whoami: who the server takes the caller for. Without
// an auth file (a loopback server) every caller is an untenanted admin
// with an empty name and AuthRequired false.
type Whoami struct {
	Name         string   `json:"name"`
	Roles        []string `json:"roles"`
	Tenant       string   `json:"tenant"`
	AuthRequired bool     `json:"authRequired"`
}

// StateHash is integrity.hash of GET /v1/status: the last state hash the
// server computed (GET /v1/status?hash=1 computes one), with the epoch of
// the state it hashed, when that state was read and how long the hash
// took (docs/design.md §5, "The state hash").
type StateHash struct {
	projection.StateHash
	Epoch      string    `json:"epoch"`
	At         time.Time `json:"at"`
	DurationMs int64     `json:"durationMs"`
}
