package projection

import "fmt"

// DecodeError says why a payload is not a usable CloudEvent.
type DecodeError struct{ msg string }

func (e *DecodeError) Error() string { return e.msg }

func errorf(format string, args ...any) error {
	return &DecodeError{msg: fmt.Sprintf(format, args...)}
}
