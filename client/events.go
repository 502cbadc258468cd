package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"cellos-allinone/api"
)

// Event is one event of the log as the API frames it: its stream sequence,
// its NATS subject and the CloudEvent as stored (a JSON string when the
// stored payload is not a JSON object).
type Event = api.Event

// Published is the answer to POST /v1/events, with the body as sent.
type Published struct {
	api.Published
	Raw json.RawMessage `json:"-"`
}

// Publish posts one CloudEvent (a JSON object). A repeat of an event id
// inside the server's duplicate window is not an error: it comes back with
// Duplicate set and the sequence of the first copy.
func (c *Client) Publish(ctx context.Context, event []byte) (*Published, error) {
	status, raw, err := c.do(ctx, http.MethodPost, "/v1/events", nil, event)
	if err != nil {
		return nil, err
	}
	var out Published
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("POST /v1/events: answer (HTTP %d) is not the expected JSON: %v", status, err)
	}
	out.Raw = raw
	return &out, nil
}

// EventsQuery selects a page of GET /v1/events: the events after Since,
// or, when From is set, from the first retained event stored at or after
// From (Since is then not sent); at most Limit (0 = the server's
// default), matching Subject ("" = all).
type EventsQuery struct {
	Since   uint64
	From    time.Time
	Limit   int
	Subject string
}

// EventPage is one page of the log, with the body as sent.
type EventPage struct {
	api.EventPage
	Raw json.RawMessage `json:"-"`
}

// Events reads one page of the log. A Since below the retained floor is an
// *APIError with status 410 and FirstSeq set.
func (c *Client) Events(ctx context.Context, eq EventsQuery) (*EventPage, error) {
	q := url.Values{}
	if eq.From.IsZero() {
		q.Set("since", strconv.FormatUint(eq.Since, 10))
	} else {
		q.Set("from", eq.From.UTC().Format(time.RFC3339Nano))
	}
	if eq.Limit > 0 {
		q.Set("limit", strconv.Itoa(eq.Limit))
	}
	if eq.Subject != "" {
		q.Set("subject", eq.Subject)
	}
	var out EventPage
	raw, err := c.getJSON(ctx, "/v1/events", q, &out)
	if err != nil {
		return nil, err
	}
	out.Raw = raw
	return &out, nil
}

// SinceAt is the sequence to resume after (a Since for Follow or Events)
// so that the first event delivered is the first retained one stored at
// or after t matching subject: one GET /v1/events?from=… of one event.
// When there is none yet, it is the stream's last sequence: only events
// published from then on follow.
func (c *Client) SinceAt(ctx context.Context, t time.Time, subject string) (uint64, error) {
	p, err := c.Events(ctx, EventsQuery{From: t, Limit: 1, Subject: subject})
	if err != nil {
		return 0, err
	}
	if len(p.Events) == 0 {
		return p.Next, nil
	}
	return p.Events[0].Seq - 1, nil
}
