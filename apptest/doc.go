// Package apptest runs the whole program (package app) in-process for
// tests: on a temporary data dir and free loopback ports, ready to serve,
// and closed when the test ends. It also publishes as a supervisor does,
// waits for the projection, stops the program cleanly or as a crash would,
// and checks that a test left no goroutine behind.
//
// It is imported only from _test.go files.
package apptest
