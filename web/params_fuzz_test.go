package web

import (
	"errors"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/nats-io/nats-server/v2/server"

	"cellos-allinone/eventlog"
	"cellos-allinone/projection"
)

// The query-parameter parsers must never panic, must refuse with an
// *Error whose code is a 400 of the table, and must accept exactly the
// documented values (docs/websocket.md), checked here against oracles
// written independently of them.

// wantRefusal fails unless err is an *Error with one of want (each a 400
// in the codes table) and a message naming name.
func wantRefusal(t *testing.T, call string, err error, name string, want ...string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%s = %T %v, want an *Error", call, err, err)
	}
	if !slices.Contains(want, e.Code) || infoOf(e.Code).status != 400 {
		t.Fatalf("%s = %s (HTTP %d), want one of %v (HTTP 400)", call, e.Code, infoOf(e.Code).status, want)
	}
	if e.Message == "" || !strings.Contains(e.Message, name) {
		t.Fatalf("%s: message %q does not name %q", call, e.Message, name)
	}
}

// decimal reports whether s is one or more ASCII digits.
func decimal(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// canonical is the decimal s without its leading zeros.
func canonical(s string) string {
	if t := strings.TrimLeft(s, "0"); t != "" {
		return t
	}
	return "0"
}

// FuzzParseSeq: since is accepted exactly when it is ASCII digits of a
// value up to 2^64-1 (no sign, space, fraction, exponent or base prefix;
// leading zeros are accepted), and then FormatUint of the result is s
// without its leading zeros.
func FuzzParseSeq(f *testing.F) {
	for _, s := range []string{
		"0", "1", "42", "007", "00000000000000000000000018446744073709551615",
		"18446744073709551615", "18446744073709551616", "99999999999999999999",
		"", "-1", "+1", "-0", "1.5", "1e3", "0x10", "0b1", "1_000", " 1", "1 ", "١", "\xff", "1\x00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSeq("since", s)
		c := canonical(s)
		want := decimal(s) && (len(c) < 20 || len(c) == 20 && c <= strconv.FormatUint(math.MaxUint64, 10))
		if err != nil {
			if want {
				t.Fatalf("ParseSeq(%q) = %v, want %s", s, err, c)
			}
			wantRefusal(t, "ParseSeq("+strconv.Quote(s)+")", err, "since", CodeBadParameter)
			return
		}
		if !want {
			t.Fatalf("ParseSeq(%q) = %d, want a refusal", s, n)
		}
		if got := strconv.FormatUint(n, 10); got != c {
			t.Fatalf("ParseSeq(%q) = %s, want %s", s, got, c)
		}
	})
}

// FuzzParseLimit: limit is accepted exactly when it is an optional '+'
// and ASCII digits of a value from 1 to projection.MaxLimit (leading zeros
// accepted: strconv.Atoi's syntax), and then Itoa of the result is s
// without its sign and leading zeros; absent, it is the default.
func FuzzParseLimit(f *testing.F) {
	for _, s := range []string{
		"1", "10", "1000", "0001000", "+7", "0", "-0", "-1", "1001", "99999999999999999999",
		"", "+", "abc", "1.5", "1e2", "0x10", " 5", "5 ", "١", "\xff",
	} {
		f.Add(s, true)
	}
	f.Add("", false)
	f.Add("abc", false)
	f.Fuzz(func(t *testing.T, s string, present bool) {
		const def = 100
		n, err := ParseLimit(s, present, def)
		if !present {
			if n != def || err != nil {
				t.Fatalf("ParseLimit(%q, absent) = %d, %v, want %d", s, n, err, def)
			}
			return
		}
		digits := strings.TrimPrefix(s, "+")
		c := canonical(digits)
		want := decimal(digits) && len(c) <= 4 && c != "0"
		if want {
			v, _ := strconv.Atoi(c)
			want = v <= projection.MaxLimit
		}
		if err != nil {
			if want {
				t.Fatalf("ParseLimit(%q) = %v, want %s", s, err, c)
			}
			wantRefusal(t, "ParseLimit("+strconv.Quote(s)+")", err, "limit", CodeBadParameter)
			return
		}
		if !want || n < 1 || n > projection.MaxLimit {
			t.Fatalf("ParseLimit(%q) = %d, want a refusal", s, n)
		}
		if got := strconv.Itoa(n); got != c {
			t.Fatalf("ParseLimit(%q) = %s, want %s", s, got, c)
		}
	})
}

// checkFilter fails unless an accepted subject filter is inside
// cellos.events.> with no empty token, wildcards only as whole tokens, '>'
// only last, no whitespace or control characters, and valid for
// nats-server and for nats.go's consumer creation (which would otherwise
// fail after the request was accepted).
func checkFilter(t *testing.T, call, filter string) {
	t.Helper()
	tokens := strings.Split(filter, ".")
	if len(tokens) < 3 || tokens[0] != "cellos" || tokens[1] != "events" || !utf8.ValidString(filter) {
		t.Fatalf("%s accepted %q: not inside %s", call, filter, eventlog.SubjectAll)
	}
	for i, tok := range tokens {
		switch {
		case tok == "":
			t.Fatalf("%s accepted %q: empty token %d", call, filter, i)
		case tok == ">" && i != len(tokens)-1:
			t.Fatalf("%s accepted %q: '>' is not the last token", call, filter)
		case tok != "*" && tok != ">" && strings.ContainsAny(tok, "*>"):
			t.Fatalf("%s accepted %q: a wildcard inside token %q", call, filter, tok)
		case strings.ContainsFunc(tok, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
			t.Fatalf("%s accepted %q: whitespace or a control character", call, filter)
		}
	}
	if !server.IsValidSubject(filter) {
		t.Fatalf("%s accepted %q, which nats-server refuses", call, filter)
	}
	// nats.go's check of a consumer's FilterSubject (jetstream.validateSubject).
	if i := strings.IndexByte(filter, '>'); strings.ContainsRune(filter, ' ') || i >= 0 && i != len(filter)-1 {
		t.Fatalf("%s accepted %q, which nats.go refuses as a consumer filter", call, filter)
	}
}

// FuzzSubjectFilter: a subject filter is accepted only inside
// cellos.events.> and valid for NATS (checkFilter), refused with
// bad_parameter naming "subject" otherwise; and the WebSocket hub's own
// matcher agrees with nats-server's on every valid subject.
func FuzzSubjectFilter(f *testing.F) {
	for _, s := range []string{
		"cellos.events.>", "cellos.events.*", "cellos.events.cell.>", "cellos.events.cell.*.started",
		"cellos.events.*.*.*", "cellos.events.formation.f-1.created", "cellos.events.é.x",
		"cellos.events.>.x", "cellos.events.*x", "cellos.events.x>", "cellos.>", "cellos.*.x",
		"foo.bar", "cellos.events", "cellos.events.", "cellos.events..x", "cellos.events.x.",
		"cellos.events.a b", "cellos.events.a\tb", "cellos.events.a\u00a0b", "cellos.events.a\x00b",
		"cellos.events.\xff", ">", "*", "", ".cellos.events.x", "CELLOS.EVENTS.>",
	} {
		f.Add(s, "cellos.events.cell.c-1.started")
	}
	f.Add("cellos.events.*.>", "cellos.events.cell")
	f.Add("cellos.events.cell.*", "cellos.events.cell.c-1.x")
	f.Add("cellos.events.>", "cellos.events")
	f.Fuzz(func(t *testing.T, s, subject string) {
		call := "parseFilter(" + strconv.Quote(s) + ")"
		filter, err := parseFilter(query{v: url.Values{"subject": {s}}})
		if err != nil {
			wantRefusal(t, call, err, "subject", CodeBadParameter)
			return
		}
		if filter != s {
			t.Fatalf("%s = %q, want it unchanged", call, filter)
		}
		checkFilter(t, call, filter)
		if server.IsValidPublishSubject(subject) {
			if got, want := subjectMatches(filter, subject), server.SubjectMatchesFilter(subject, filter); got != want {
				t.Fatalf("subjectMatches(%q, %q) = %v, nats-server says %v", filter, subject, got, want)
			}
		}
	})
}

// The parameters each endpoint accepts (registry.go, events.go, ws.go).
var endpointParams = [][]string{
	{"tenant", "status", "limit", "after"},
	{"tenant", "formation", "state", "limit", "after"},
	{"since", "limit", "subject"},
	{"since", "subject", "epoch", "batch"},
	nil,
}

// FuzzQuery: parseQuery accepts a raw query string exactly when it parses
// and every parameter is one the endpoint takes, given once, at most 256
// bytes of UTF-8; it refuses the rest with bad_parameter or
// unknown_parameter. parseWSParams, the whole check of /ws/events before
// the upgrade, refuses with the same codes and accepts only a canonical
// since, a filter inside cellos.events.> and a batch of 1 or 0.
func FuzzQuery(f *testing.F) {
	for _, s := range []string{
		"", "limit=10", "limit=10&after=f-1", "tenant=t&status=running", "since=0&subject=cellos.events.%3E",
		"since=5&epoch=2026-01-01T00%3A00%3A00Z", "subject=cellos.events.cell.*.started",
		"limit=1&limit=2", "colour=red", "limit", "limit=", "=", "&&", "a=1;b=2", "%zz=1", "limit=%zz",
		"since=%ff", "%ff=1", "since=-1", "since=18446744073709551616", "subject=cellos.events.%3E.x",
		"subject=cellos.events..x", "subject=foo.bar", "epoch=", "since=1&since=1", "Since=1",
		"limit=+5", "since=+1", "since=%2B1", "after=" + strings.Repeat("x", 300),
		"batch=1", "since=0&batch=0", "batch=", "batch=2", "batch=01",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u := &url.URL{RawQuery: raw}
		parsed, perr := url.ParseQuery(raw)
		for _, allowed := range endpointParams {
			call := "parseQuery(" + strconv.Quote(raw) + ", " + strings.Join(allowed, ",") + ")"
			want := perr == nil
			for name, vals := range parsed {
				want = want && slices.Contains(allowed, name) && len(vals) == 1 &&
					len(vals[0]) <= maxParamLen && utf8.ValidString(vals[0])
			}
			q, err := parseQuery(u, allowed...)
			if err != nil {
				if want {
					t.Fatalf("%s = %v, want it accepted", call, err)
				}
				wantRefusal(t, call, err, "", CodeBadParameter, CodeUnknownParameter)
				continue
			}
			if !want {
				t.Fatalf("%s accepted %v", call, q.v)
			}
			for name, vals := range parsed {
				if !q.has(name) || q.str(name) != vals[0] {
					t.Fatalf("%s: %s = %q, want %q", call, name, q.str(name), vals[0])
				}
			}
		}

		call := "parseWSParams(" + strconv.Quote(raw) + ")"
		p, err := parseWSParams(u)
		if err != nil {
			wantRefusal(t, call, err, "", CodeBadParameter, CodeUnknownParameter)
			return
		}
		if since := parsed.Get("since"); p.cursor.HasSince != parsed.Has("since") ||
			p.cursor.HasSince && strconv.FormatUint(p.cursor.Since, 10) != canonical(since) {
			t.Fatalf("%s: cursor %+v from since %q", call, p.cursor, since)
		}
		if p.cursor.Epoch != parsed.Get("epoch") || parsed.Has("epoch") && p.cursor.Epoch == "" {
			t.Fatalf("%s: epoch %q from %q", call, p.cursor.Epoch, parsed.Get("epoch"))
		}
		if b := parsed.Get("batch"); p.batch != (b == "1") || parsed.Has("batch") && b != "1" && b != "0" {
			t.Fatalf("%s: batch %v from %q", call, p.batch, b)
		}
		if !parsed.Has("subject") {
			if p.filter != eventlog.SubjectAll {
				t.Fatalf("%s: filter %q without subject, want %s", call, p.filter, eventlog.SubjectAll)
			}
			return
		}
		checkFilter(t, call, p.filter)
	})
}
