package app_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every process a test starts (HTTP, projector, NATS) must be gone when the
// tests end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
