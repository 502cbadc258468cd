package main

import (
	"testing"

	"go.uber.org/goleak"
)

// Every command run in a test, and every server it starts, must be gone
// when the tests end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
