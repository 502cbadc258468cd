package client

import (
	"testing"

	"go.uber.org/goleak"
)

// Follow's reconnect loop and streams must end with their context.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
