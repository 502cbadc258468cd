package eventlog

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// CheckFilter reports why s is not a subject filter inside
// cellos.events.>: it must be a valid NATS subject (non-empty tokens
// without whitespace; '*' and '>' only as whole tokens, '>' only last)
// whose first two tokens are literally "cellos.events" and which has at
// least one token after them.
func CheckFilter(s string) error {
	if !strings.HasPrefix(s, SubjectPrefix) || len(s) == len(SubjectPrefix) {
		return fmt.Errorf("subject %q is not inside %s", s, SubjectAll)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("subject %q is not UTF-8", s)
	}
	tokens := strings.Split(s, ".")
	for i, t := range tokens {
		switch {
		case t == "":
			return fmt.Errorf("subject %q has an empty token", s)
		case t == ">" && i != len(tokens)-1:
			return fmt.Errorf("subject %q: '>' must be the last token", s)
		case t == "*" || t == ">":
			continue
		case strings.ContainsAny(t, "*>"):
			return fmt.Errorf("subject %q: wildcards must be whole tokens", s)
		case strings.IndexFunc(t, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
			return fmt.Errorf("subject %q contains whitespace or control characters", s)
		}
	}
	return nil
}
