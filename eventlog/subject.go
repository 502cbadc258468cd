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

// TenantSubtree is the subject filter of a tenant's sub-tree,
// cellos.events.<tenant>.>: every event stored in the tenant form for that
// tenant (docs/design.md §2). It is how the log is filtered for a tenant:
// one JetStream filter subject.
func TenantSubtree(tenant string) string { return SubjectPrefix + tenant + ".>" }

// ScopeFilter narrows a filter inside cellos.events.> (one CheckFilter
// accepts) to the sub-tree of tenant: the filter that matches exactly the
// subjects that both filter and TenantSubtree(tenant) match. ok is false
// when no subject matches both — for example a filter of the untenanted
// form (cellos.events.cell.>) or of another tenant. A tenant reader asks
// for what it likes and is answered from its sub-tree.
func ScopeFilter(filter, tenant string) (scoped string, ok bool) {
	rest, found := strings.CutPrefix(filter, SubjectPrefix)
	if !found {
		return "", false
	}
	first, after, more := strings.Cut(rest, ".")
	switch {
	case first == ">":
		return TenantSubtree(tenant), true
	case !more:
		// cellos.events.<one token>: the sub-tree holds nothing that short.
		return "", false
	case first == "*" || first == tenant:
		return SubjectPrefix + tenant + "." + after, true
	}
	return "", false
}
