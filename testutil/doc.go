// Package testutil builds CellOS events and starts real embedded NATS
// servers for tests. It is imported only from _test.go files.
package testutil
