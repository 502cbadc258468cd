package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"cellos-allinone/testutil"
	"cellos-allinone/web"
)

type eventPage struct {
	FirstSeq uint64    `json:"firstSeq"`
	LastSeq  uint64    `json:"lastSeq"`
	Epoch    string    `json:"epoch"`
	Events   []wsFrame `json:"events"`
	Next     uint64    `json:"next"`
}

func (e *wsEnv) getEvents(t testing.TB, query string) eventPage {
	t.Helper()
	status, body := e.do(t, "GET", "/v1/events?"+query, "", nil)
	if status != http.StatusOK {
		t.Fatalf("GET /v1/events?%s = %d %s, want 200", query, status, body)
	}
	var p eventPage
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("GET /v1/events?%s: %v", query, err)
	}
	return p
}

func TestEventsPaging(t *testing.T) {
	e := wsStart(t, web.WSConfig{})
	e.publish(t, "cellos.events.cell.c1.started", 250)
	var got []uint64
	since, pages := uint64(0), 0
	for {
		p := e.getEvents(t, fmt.Sprintf("since=%d", since))
		if p.FirstSeq != 1 || p.LastSeq != 250 {
			t.Fatalf("page bounds = %d..%d, want 1..250", p.FirstSeq, p.LastSeq)
		}
		if len(p.Events) == 0 {
			if p.Next != since {
				t.Errorf("empty page next = %d, want %d", p.Next, since)
			}
			break
		}
		pages++
		if len(p.Events) > 100 {
			t.Fatalf("page of %d events, want the default limit 100", len(p.Events))
		}
		for _, f := range p.Events {
			if f.Subject != "cellos.events.cell.c1.started" || len(f.Event) == 0 || f.Event[0] != '{' {
				t.Fatalf("event %+v, want the subject and the CloudEvent object", f)
			}
		}
		got = append(got, seqsOf(p.Events)...)
		since = p.Next
	}
	if !slices.Equal(got, testutil.SeqRange(1, 250)) || pages != 3 {
		t.Errorf("paged %d events in %d pages, want 1..250 in 3", len(got), pages)
	}
	if p := e.getEvents(t, "since=10&limit=1000"); len(p.Events) != 240 || p.Next != 250 {
		t.Errorf("limit=1000: %d events, next %d; want 240, next 250", len(p.Events), p.Next)
	}
	if p := e.getEvents(t, "limit=1"); len(p.Events) != 1 || p.Events[0].Seq != 1 || p.Next != 1 {
		t.Errorf("no since, limit=1: %+v, want event 1, next 1", p)
	}
	if n := e.consumers(t); n != 0 {
		t.Errorf("consumers after paging = %d, want 0 (deleted after each page)", n)
	}
}

func TestEventsSubjectFilterMovesNextToTheEnd(t *testing.T) {
	e := wsStart(t, web.WSConfig{})
	want := e.publish(t, "cellos.events.formation.f1.created", 2)
	e.publish(t, "cellos.events.cell.c1.started", 5)
	p := e.getEvents(t, "since=0&subject=cellos.events.formation.%3E")
	if !slices.Equal(seqsOf(p.Events), want) || p.Next != 7 {
		t.Errorf("filtered page: %v next %d, want %v next 7 (nothing else matches up to the end)", seqsOf(p.Events), p.Next, want)
	}
	p = e.getEvents(t, "since=2&subject=cellos.events.formation.%3E")
	if len(p.Events) != 0 || p.Next != 7 {
		t.Errorf("filtered page with no match: %d events next %d, want none, next 7", len(p.Events), p.Next)
	}
	p = e.getEvents(t, "since=7")
	if len(p.Events) != 0 || p.Next != 7 {
		t.Errorf("caught up: %d events next %d, want none, next 7", len(p.Events), p.Next)
	}
}

// A since below the floor is 410 with the floor to resume from, except
// since=0: a client that holds nothing starts at the floor.
func TestEventsBelowTheFloorIs410(t *testing.T) {
	e := wsStart(t, web.WSConfig{})
	e.publish(t, "cellos.events.cell.c1.started", 10)
	if err := e.a.Events.Handle().Purge(testutil.Ctx(t, 5*time.Second), jetstream.WithPurgeSequence(6)); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"since=1", "since=4", "since=11"} {
		status, body := e.do(t, "GET", "/v1/events?"+q, "", nil)
		if status != http.StatusGone {
			t.Errorf("?%s after the purge = %d %s, want 410", q, status, body)
			continue
		}
		if got := decodeError(t, string(body)); got.Error.Code != "cursor_expired" || got.Error.FirstSeq != 6 {
			t.Errorf("?%s: %s, want cursor_expired with firstSeq 6", q, body)
		}
	}
	// The floor resumes; since=0 and no since (a client that holds
	// nothing) start there.
	for _, q := range []string{"since=5", "since=0", ""} {
		if p := e.getEvents(t, q); !slices.Equal(seqsOf(p.Events), testutil.SeqRange(6, 10)) || p.FirstSeq != 6 {
			t.Errorf("?%s (the floor): %v firstSeq %d, want 6..10, firstSeq 6", q, seqsOf(p.Events), p.FirstSeq)
		}
	}
}

// A page of another incarnation's cursor is refused with 410 naming the
// current epoch; the current epoch is accepted and answered with.
func TestEventsEpoch(t *testing.T) {
	e := wsStart(t, web.WSConfig{})
	e.publish(t, "cellos.events.cell.c-1.started", 3)
	epoch := e.a.Events.Epoch()
	status, body := e.do(t, "GET", "/v1/events?since=0&epoch=2026-01-01T00:00:00Z", "", nil)
	if status != http.StatusGone || !strings.Contains(string(body), epoch) {
		t.Fatalf("?epoch=<another> = %d %s, want 410 naming the epoch %s", status, body, epoch)
	}
	if p := e.getEvents(t, "since=0&epoch="+url.QueryEscape(epoch)); p.Epoch != epoch || len(p.Events) != 3 {
		t.Fatalf("?epoch=<current>: epoch %q, %d events; want %s and 3", p.Epoch, len(p.Events), epoch)
	}
}

func TestEventsBadParameters(t *testing.T) {
	e := wsStart(t, web.WSConfig{})
	for _, q := range []string{
		"since=-1", "since=x", "since=18446744073709551616", "since=",
		"limit=0", "limit=1001", "limit=-5", "limit=a",
		"subject=foo.%3E", "subject=cellos.events.a%20b", "epoch=",
	} {
		status, body := e.do(t, "GET", "/v1/events?"+q, "", nil)
		if status != http.StatusBadRequest {
			t.Errorf("?%s = %d %s, want 400", q, status, body)
			continue
		}
		decodeError(t, string(body))
	}
}
