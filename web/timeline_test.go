package web_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"cellos-allinone/testutil"
	"cellos-allinone/web"
)

// getPage GETs path?query and decodes a page of events.
func (e *wsEnv) getPage(t testing.TB, path, query string) eventPage {
	t.Helper()
	status, body := e.do(t, "GET", path+"?"+query, "", nil)
	if status != http.StatusOK {
		t.Fatalf("GET %s?%s = %d %s, want 200", path, query, status, body)
	}
	var p eventPage
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("GET %s?%s: %v", path, query, err)
	}
	return p
}

// pageAll follows next from since=0 with limit and returns every sequence.
func (e *wsEnv) pageAll(t testing.TB, path string, limit int) []uint64 {
	t.Helper()
	var got []uint64
	since := uint64(0)
	for range 100 {
		p := e.getPage(t, path, "since="+itoa(since)+"&limit="+itoa(uint64(limit)))
		if len(p.Events) > limit {
			t.Fatalf("%s: page of %d events, limit %d", path, len(p.Events), limit)
		}
		got = append(got, seqsOf(p.Events)...)
		if len(p.Events) == 0 || p.Next == p.LastSeq {
			return got
		}
		since = p.Next
	}
	t.Fatalf("%s: paging did not end", path)
	return nil
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// A timeline holds its entity's events and nothing else (not those of an
// id it is a prefix of, not the other kind's with the same id), paged.
func TestTimelineHoldsOnlyItsEntity(t *testing.T) {
	e := wsStart(t, web.WSConfig{})
	var c1, f1 []uint64
	seqs := e.a.Publish(
		testutil.Formation("f1", "created", map[string]any{"name": "F one"}),
		testutil.Cell("c1", "admitted", map[string]any{"formationId": "f1"}),
		testutil.Cell("c10", "admitted", nil),
		testutil.Formation("c1", "created", nil),
		testutil.Cell("c1", "started", nil),
		testutil.Cell("c2", "admitted", map[string]any{"formationId": "f1"}),
		testutil.Formation("f1", "running", nil),
		testutil.Cell("c1", "summary", nil),
		testutil.Cell("c1", "completed", map[string]any{"exitCode": 0}),
	)
	c1 = []uint64{seqs[1], seqs[4], seqs[7], seqs[8]}
	f1 = []uint64{seqs[0], seqs[6]}
	for _, limit := range []int{100, 3, 1} {
		if got := e.pageAll(t, "/v1/cells/c1/events", limit); !slices.Equal(got, c1) {
			t.Errorf("cell c1, limit %d: %v, want %v", limit, got, c1)
		}
		if got := e.pageAll(t, "/v1/formations/f1/events", limit); !slices.Equal(got, f1) {
			t.Errorf("formation f1, limit %d: %v, want %v", limit, got, f1)
		}
	}
	p := e.getPage(t, "/v1/cells/c1/events", "limit=2")
	if p.FirstSeq != 1 || p.LastSeq != 9 || p.Epoch != e.a.Events.Epoch() || p.Next != c1[1] {
		t.Errorf("first page: bounds %d..%d epoch %q next %d; want 1..9, the stream's epoch, next %d", p.FirstSeq, p.LastSeq, p.Epoch, p.Next, c1[1])
	}
	for _, f := range p.Events {
		if !strings.HasPrefix(f.Subject, "cellos.events.cell.c1.") || len(f.Event) == 0 || f.Event[0] != '{' {
			t.Errorf("event %+v, want a c1 subject and the CloudEvent object", f)
		}
	}
	// The last page of a timeline moves next to the stream's end.
	if p := e.getPage(t, "/v1/cells/c1/events", "since="+itoa(c1[3])); len(p.Events) != 0 || p.Next != 9 {
		t.Errorf("after the last c1 event: %d events, next %d; want none, next 9", len(p.Events), p.Next)
	}
	if n := e.consumers(t); n != 0 {
		t.Errorf("reader consumers after the timelines = %d, want 0", n)
	}
}

// An entity neither the registry nor the log knows is 404; one the
// registry knows whose events are gone has an empty timeline.
func TestTimelineUnknownEntity(t *testing.T) {
	e := wsStart(t, web.WSConfig{})
	seqs := e.a.Publish(testutil.Cell("gone", "admitted", nil), testutil.Formation("fgone", "created", nil), testutil.Cell("kept", "admitted", nil))
	e.a.WaitCursor(seqs[2])
	if err := e.a.Events.Handle().Purge(testutil.Ctx(t, 5*time.Second), jetstream.WithPurgeSequence(seqs[2])); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/v1/cells/nope/events", "/v1/formations/nope/events", "/v1/formations/kept/events", "/v1/cells/fgone/events", "/v1/cells/bad%20id/events"} {
		status, body := e.do(t, "GET", path, "", nil)
		if status != http.StatusNotFound || decodeError(t, string(body)).Error.Code != "not_found" {
			t.Errorf("GET %s = %d %s, want 404 not_found", path, status, body)
		}
	}
	for _, path := range []string{"/v1/cells/gone/events", "/v1/formations/fgone/events"} {
		if p := e.getPage(t, path, ""); len(p.Events) != 0 || p.FirstSeq != seqs[2] || p.Next != seqs[2] {
			t.Errorf("%s after its events were purged: %+v, want an empty page from the floor", path, p)
		}
	}
	if p := e.getPage(t, "/v1/cells/kept/events", ""); !slices.Equal(seqsOf(p.Events), seqs[2:]) {
		t.Errorf("kept: %v, want %v", seqsOf(p.Events), seqs[2:])
	}
}

// Below the floor a timeline answers 410 like /v1/events; since=0 and no
// since start at the floor.
func TestTimelineBelowTheFloorIs410(t *testing.T) {
	e := wsStart(t, web.WSConfig{})
	seqs := e.publish(t, "cellos.events.cell.c1.started", 10)
	if err := e.a.Events.Handle().Purge(testutil.Ctx(t, 5*time.Second), jetstream.WithPurgeSequence(6)); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"since=1", "since=4", "since=11", "since=5&epoch=2026-01-01T00:00:00Z"} {
		status, body := e.do(t, "GET", "/v1/cells/c1/events?"+q, "", nil)
		if status != http.StatusGone {
			t.Errorf("?%s after the purge = %d %s, want 410", q, status, body)
			continue
		}
		if got := decodeError(t, string(body)); got.Error.Code != "cursor_expired" || got.Error.FirstSeq != 6 {
			t.Errorf("?%s: %s, want cursor_expired with firstSeq 6", q, body)
		}
	}
	for _, q := range []string{"since=5", "since=0", ""} {
		if p := e.getPage(t, "/v1/cells/c1/events", q); !slices.Equal(seqsOf(p.Events), seqs[5:]) {
			t.Errorf("?%s: %v, want %v", q, seqsOf(p.Events), seqs[5:])
		}
	}
}

// from= starts at the first event stored at or after a time, on the log
// and on timelines.
func TestEventsFrom(t *testing.T) {
	e := wsStart(t, web.WSConfig{})
	before := append(e.publish(t, "cellos.events.cell.c1.started", 3), e.publish(t, "cellos.events.cell.c2.started", 2)...)
	// Every event above is acknowledged, so stored, before mid is read;
	// every event below is published after it.
	mid := time.Now()
	testutil.WaitFor(t, time.Second, "the clock to move past mid", func() bool { return time.Now().After(mid) })
	after := append(e.publish(t, "cellos.events.cell.c2.started", 2), e.publish(t, "cellos.events.cell.c1.started", 3)...)
	last := after[len(after)-1]
	at := func(tm time.Time) string { return "from=" + url.QueryEscape(tm.Format(time.RFC3339Nano)) }

	p := e.getEvents(t, at(mid))
	if !slices.Equal(seqsOf(p.Events), after) || p.Next != last {
		t.Errorf("from mid: %v next %d, want %v next %d", seqsOf(p.Events), p.Next, after, last)
	}
	if p := e.getEvents(t, at(mid)+"&limit=2"); !slices.Equal(seqsOf(p.Events), after[:2]) || p.Next != after[1] {
		t.Errorf("from mid, limit 2: %v next %d, want %v next %d", seqsOf(p.Events), p.Next, after[:2], after[1])
	}
	if p := e.getEvents(t, at(mid)+"&subject=cellos.events.cell.c1.%3E"); !slices.Equal(seqsOf(p.Events), after[2:]) {
		t.Errorf("from mid, c1 only: %v, want %v", seqsOf(p.Events), after[2:])
	}
	if p := e.getEvents(t, at(mid.Add(-time.Hour))); !slices.Equal(seqsOf(p.Events), append(before, after...)) {
		t.Errorf("from an hour before: %v, want everything", seqsOf(p.Events))
	}
	// An offset other than Z names the same instant.
	if p := e.getEvents(t, at(mid.In(time.FixedZone("", 5*3600+1800)))); !slices.Equal(seqsOf(p.Events), after) {
		t.Errorf("from mid at +05:30: %v, want %v", seqsOf(p.Events), after)
	}
	if p := e.getEvents(t, at(time.Now().Add(time.Hour))); len(p.Events) != 0 || p.Next != last {
		t.Errorf("from the future: %v next %d, want none, next %d (where new events come)", seqsOf(p.Events), p.Next, last)
	}
	if p := e.getPage(t, "/v1/cells/c1/events", at(mid)); !slices.Equal(seqsOf(p.Events), after[2:]) || p.Next != last {
		t.Errorf("c1's timeline from mid: %v next %d, want %v next %d", seqsOf(p.Events), p.Next, after[2:], last)
	}
	if p := e.getPage(t, "/v1/cells/c2/events", at(mid)); !slices.Equal(seqsOf(p.Events), after[:2]) {
		t.Errorf("c2's timeline from mid: %v, want %v", seqsOf(p.Events), after[:2])
	}
	// The floor above the time: from starts at the floor, never a 410.
	if err := e.a.Events.Handle().Purge(testutil.Ctx(t, 5*time.Second), jetstream.WithPurgeSequence(after[1])); err != nil {
		t.Fatal(err)
	}
	if p := e.getEvents(t, at(mid)); !slices.Equal(seqsOf(p.Events), after[1:]) {
		t.Errorf("from mid after a purge to %d: %v, want %v", after[1], seqsOf(p.Events), after[1:])
	}
}

func TestTimelineBadParameters(t *testing.T) {
	e := wsStart(t, web.WSConfig{})
	e.a.Publish(testutil.Cell("c1", "admitted", nil), testutil.Formation("f1", "created", nil))
	for _, path := range []string{"/v1/events", "/v1/cells/c1/events", "/v1/formations/f1/events"} {
		for q, want := range map[string]string{
			"since=1&from=2026-01-01T00:00:00Z": "bad_parameter",
			"from=yesterday":                    "bad_parameter",
			"from=2026-01-01":                   "bad_parameter",
			"from=2026-01-01T00:00:00":          "bad_parameter",
			"from=":                             "bad_parameter",
			"since=x":                           "bad_parameter",
			"limit=0":                           "bad_parameter",
			"epoch=":                            "bad_parameter",
			"until=1":                           "unknown_parameter",
		} {
			status, body := e.do(t, "GET", path+"?"+q, "", nil)
			got := decodeError(t, string(body))
			if status != http.StatusBadRequest || got.Error.Code != want {
				t.Errorf("%s?%s = %d %s, want 400 %s", path, q, status, body, want)
			}
			if strings.HasPrefix(q, "from=") && !strings.Contains(got.Error.Message, "RFC 3339") {
				t.Errorf("%s?%s: message %q does not name the format", path, q, got.Error.Message)
			}
		}
	}
	for _, path := range []string{"/v1/cells/c1/events", "/v1/formations/f1/events"} {
		status, body := e.do(t, "GET", path+"?subject=cellos.events.%3E", "", nil)
		if status != http.StatusBadRequest || decodeError(t, string(body)).Error.Code != "unknown_parameter" {
			t.Errorf("%s?subject= = %d %s, want 400 unknown_parameter (a timeline's subject is its entity's)", path, status, body)
		}
	}
}
