// Package web serves the HTTP API (DESIGN.md §6): the read API over the
// projection, status, health and metrics.
//
// Every error body is {"error":{"code","message"}}; codes map to HTTP
// statuses in one table (errors.go). Every request passes through one
// authorisation point (auth.go) before it reaches a handler.
package web
