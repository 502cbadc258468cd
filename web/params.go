package web

import (
	"net/url"
	"strconv"
	"unicode/utf8"

	"cellos-allinone/event"
	"cellos-allinone/projection"
)

// maxParamLen bounds every query parameter value.
const maxParamLen = 256

// maxPrefixLen bounds prefix=: an id is at most 128 characters, so a longer
// prefix could match nothing.
const maxPrefixLen = 128

// query is a request's query parameters checked against the set an
// endpoint accepts: unknown, repeated, oversized or non-UTF-8 parameters
// are errors.
type query struct{ v url.Values }

func parseQuery(u *url.URL, allowed ...string) (query, error) {
	v, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return query{}, Errorf(CodeBadParameter, "query string: %v", err)
	}
	for name, vals := range v {
		known := false
		for _, a := range allowed {
			known = known || a == name
		}
		if !known {
			return query{}, Errorf(CodeUnknownParameter, "unknown parameter %q (allowed: %v)", name, allowed)
		}
		if len(vals) > 1 {
			return query{}, Errorf(CodeBadParameter, "parameter %q given %d times", name, len(vals))
		}
		if len(vals[0]) > maxParamLen || !utf8.ValidString(vals[0]) {
			return query{}, Errorf(CodeBadParameter, "parameter %q: longer than %d bytes or not UTF-8", name, maxParamLen)
		}
	}
	return query{v: v}, nil
}

func (q query) str(name string) string { return q.v.Get(name) }

func (q query) has(name string) bool { return q.v.Has(name) }

// prefix is the id prefix of a list query ("" when absent).
func (q query) prefix() (string, error) {
	p := q.str("prefix")
	if n := utf8.RuneCountInString(p); n > maxPrefixLen {
		return "", Errorf(CodeBadParameter, "parameter \"prefix\": %d characters, at most %d (an id is at most %d)", n, maxPrefixLen, maxPrefixLen)
	}
	return p, nil
}

// ParseLimit parses a page size: 1..projection.MaxLimit, def when absent.
func ParseLimit(s string, present bool, def int) (int, error) {
	if !present {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > projection.MaxLimit {
		return 0, Errorf(CodeBadParameter, "limit must be an integer from 1 to %d, got %q", projection.MaxLimit, s)
	}
	return n, nil
}

// ParseSeq parses a stream sequence: a decimal uint64.
func ParseSeq(name, s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || s == "" || s[0] == '+' {
		return 0, Errorf(CodeBadParameter, "%s must be a decimal sequence number from 0 to 18446744073709551615, got %q", name, s)
	}
	return n, nil
}

func (q query) page(def int) (projection.Page, error) {
	limit, err := ParseLimit(q.str("limit"), q.has("limit"), def)
	if err != nil {
		return projection.Page{}, err
	}
	// after is the next of an earlier page: an id. Anything else is not
	// a cursor this server hands out (docs/design.md §4), and is refused
	// rather than used as a bound of the range.
	after := q.str("after")
	if after != "" && !event.ValidID(after) {
		return projection.Page{}, Errorf(CodeBadParameter, "after must be an id (the next of a page: 1–%d letters, digits, '-' or '_'), got %q", event.MaxIDLen, after)
	}
	return projection.Page{After: after, Limit: limit}, nil
}
