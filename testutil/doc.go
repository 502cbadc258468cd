// Package testutil builds CellOS events, starts real embedded NATS servers
// and publishes into them, bounds contexts and waits, and collects output
// for tests. It is imported only from _test.go files and from the apptest
// kit, which runs the whole program on it.
package testutil
