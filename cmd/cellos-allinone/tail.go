package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"

	"cellos-allinone/client"
	"cellos-allinone/eventlog"
)

const tailAbout = `Follows the event stream of a running server (GET /ws/events) and prints
one line per event:

  #<seq> <time> <type> key=value…
  #42 2026-11-26T10:00:00.000Z cell.lifecycle.v1.completed cell=c-1 formation=f-1 tenant=acme exitCode=0

<time> is the CloudEvent time ("-" if none), <type> the CloudEvent type
without "dev.cellos.events.", and the keys, when the event's data has them:
cell, formation, tenant, name, status, exitCode, reason, result. A stored
payload that is not a CloudEvent prints as "#<seq> - (malformed) subject=…".
-o json prints each event as the stream frames it instead, one JSON object
per line: {"seq":…,"subject":…,"event":{…}}. tail asks the server for
several events per WebSocket frame (batch=1) and prints them one by one.

Without --since only events published from now on are printed; --since N
prints every retained event after sequence N first (--since 0: the whole
retained log). --from prints the retained events stored at or after a
time first: a duration ago (--from 1h, --from 90m) or an RFC 3339 time
(--from 2026-11-26T10:00:00Z); tail asks the server for the first event at
or after it (GET /v1/events?from=…) and follows from there. --since and
--from exclude each other. When the connection drops (server restart, network), tail
reconnects with exponential backoff and jitter (at most 30s apart) and
resumes after the last event it printed: nothing twice, nothing skipped.
If the events it would resume from have expired, it says on stderr which
were lost to retention and continues with the first retained one; if the
stream was recreated, it says so and starts over with the new stream.
Ctrl-C ends it (exit 0).`

func tail(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		rm                   remote
		since, from, subject string
		count                int
	)
	fs := newFlagSet("tail", tailAbout, "cellos-allinone tail --since 0 --subject 'cell.*.failed'")
	fs.SetOutput(stderr)
	rm.bind(fs, client.DefaultServer)
	fs.StringVar(&since, "since", "", `print the events after this sequence first ("" = only new events, 0 = all retained)`)
	fs.StringVar(&from, "from", "", `print the events stored since this time first: a duration ago ("1h", "15m") or an RFC 3339 time`)
	fs.StringVar(&subject, "subject", "", `only events whose NATS subject matches this filter (wildcards * and >; the "cellos.events." prefix may be left out)`)
	fs.IntVar(&count, "count", 0, "exit after printing this many events (0 = never)")
	out := bindOutput(fs, "line", "json")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected arguments: %v", fs.Args())}
	}
	if count < 0 {
		return usageError{"--count must not be negative"}
	}
	if since != "" && from != "" {
		return usageError{"--since and --from exclude each other: --since resumes after a sequence, --from starts at a time"}
	}
	fo := client.FollowOptions{Subject: subjectFilter(subject)}
	var fromTime time.Time
	if from != "" {
		var err error
		if fromTime, err = parseFrom(from, time.Now()); err != nil {
			return usageError{err.Error()}
		}
	}
	if since != "" {
		n, err := strconv.ParseUint(since, 10, 64)
		if err != nil {
			return usageError{fmt.Sprintf("--since %q: want a sequence number (0 for the whole retained log)", since)}
		}
		fo.Since = &n
	}
	server := rm.server
	c, err := rm.client("")
	if err != nil {
		return err
	}
	if !fromTime.IsZero() {
		n, err := c.SinceAt(ctx, fromTime, fo.Subject)
		if err != nil {
			return remoteError(server, err, true)
		}
		fo.Since = &n
	}

	w := bufio.NewWriter(stdout)
	connects := 0
	fo.OnConnect = func(h client.Hello) {
		connects++
		verb := "connected to"
		if connects > 1 {
			verb = "reconnected to"
		}
		if h.LastSeq == 0 || h.FirstSeq > h.LastSeq {
			fmt.Fprintf(stderr, "tail: %s %s; the stream is empty\n", verb, server)
		} else {
			fmt.Fprintf(stderr, "tail: %s %s; the stream holds #%d..#%d\n", verb, server, h.FirstSeq, h.LastSeq)
		}
	}
	fo.OnRetry = func(err error, wait time.Duration) {
		// Flush what was printed before waiting, so a reader sees it.
		w.Flush()
		what := describeDrop(err)
		if connects == 0 {
			what = "cannot connect: " + err.Error()
		}
		fmt.Fprintf(stderr, "tail: %s; retrying in %s\n", what, wait.Round(time.Millisecond))
	}
	fo.OnLost = func(l client.Lost) {
		w.Flush()
		switch {
		case l.EpochChanged():
			fmt.Fprintf(stderr, "tail: the event stream was recreated (epoch %s, was %s): events of the old stream not yet printed are lost; continuing from #%d of the new one\n",
				l.NewEpoch, l.OldEpoch, l.To+1)
		case l.Behind:
			fmt.Fprintf(stderr, "tail: the server's stream ends before #%d, where tail was to resume (its newest events were lost, for example in a power cut, or this is another stream); continuing with new events\n", l.To)
		case l.From <= l.To:
			fmt.Fprintf(stderr, "tail: events %d..%d were lost to retention; continuing from %d\n", l.From, l.To, l.To+1)
		}
	}
	printed := 0
	err = c.Follow(ctx, fo, func(ev client.Event) error {
		var err error
		if out.value == "json" {
			err = writeFrame(w, ev)
		} else {
			_, err = fmt.Fprintln(w, eventLine(ev))
		}
		if err != nil {
			return err
		}
		printed++
		if count > 0 && printed >= count {
			return client.ErrStop
		}
		// Without this a quiet stream would keep lines in the buffer.
		return w.Flush()
	})
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	var he *client.HandshakeError
	switch {
	case err == nil, ctx.Err() != nil:
		return nil
	case errors.As(err, &he):
		return remoteError(server, he.APIError, true)
	}
	return err
}

// parseFrom reads --from: a duration before now ("1h", "90m", "2h30m") or
// an RFC 3339 time.
func parseFrom(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("--from %q: want a duration ago, not a negative one", s)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--from %q: want a duration ago (1h, 15m) or an RFC 3339 time (2026-11-26T10:00:00Z)", s)
	}
	return t, nil
}

// subjectFilter lets people leave out the common prefix: "cell.*.failed"
// means "cellos.events.cell.*.failed".
func subjectFilter(s string) string {
	if s == "" || s == ">" || strings.HasPrefix(s, eventlog.SubjectPrefix) {
		return s
	}
	return eventlog.SubjectPrefix + s
}

func describeDrop(err error) string {
	if client.IsGoingAway(err) {
		return "the server is shutting down"
	}
	return "connection lost: " + err.Error()
}

func writeFrame(w io.Writer, ev client.Event) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// lineKeys are the data fields a line shows, in this order, under these names.
var lineKeys = []struct{ field, name string }{
	{"cellId", "cell"},
	{"formationId", "formation"},
	{"tenantId", "tenant"},
	{"name", "name"},
	{"status", "status"},
	{"exitCode", "exitCode"},
	{"reason", "reason"},
	{"result", "result"},
}

// eventLine is the one-line form of an event (see tailAbout).
func eventLine(ev client.Event) string {
	var ce struct {
		Type string          `json:"type"`
		Time string          `json:"time"`
		Data json.RawMessage `json:"data"`
	}
	if json.Unmarshal(ev.Event, &ce) != nil || ce.Type == "" {
		return fmt.Sprintf("#%d - (malformed) subject=%s", ev.Seq, token(ev.Subject))
	}
	var data map[string]json.RawMessage
	_ = json.Unmarshal(ce.Data, &data) // data that is not an object shows no keys
	var b strings.Builder
	fmt.Fprintf(&b, "#%d %s %s", ev.Seq, token(ce.Time), token(strings.TrimPrefix(ce.Type, "dev.cellos.events.")))
	for _, k := range lineKeys {
		v, ok := scalar(data[k.field])
		if !ok && k.field == "tenantId" {
			var corr map[string]json.RawMessage
			if json.Unmarshal(data["correlation"], &corr) == nil {
				v, ok = scalar(corr["tenantId"])
			}
		}
		if ok {
			fmt.Fprintf(&b, " %s=%s", k.name, v)
		}
	}
	return b.String()
}

// scalar renders a JSON string or number as one token; ok is false for
// anything else and for "".
func scalar(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 {
		return "", false
	}
	var s string
	if raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
		return token(s), s != ""
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String(), true
	}
	return "", false
}

// token keeps a value one space-free, printable word, so that a line
// splits on spaces and on '=' the same way whatever the event holds:
// "" becomes "-", anything with spaces, quotes, '=', backslashes or unprintable
// characters is quoted Go-style.
func token(s string) string {
	if s == "" {
		return "-"
	}
	if strings.IndexFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || !strconv.IsPrint(r) || r == '"' || r == '=' || r == '\\'
	}) >= 0 {
		return strconv.Quote(s)
	}
	return s
}
