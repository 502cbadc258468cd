package projector

import (
	"testing"

	"go.uber.org/goleak"
)

// Every projector, consumer and embedded server a test starts must be gone
// when the tests end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
