package eventlog

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// msgGetRequest is the part of the JetStream API's message get request
// (STREAM.MSG.GET) that a time lookup sends: nats.go's Stream.GetMsg has
// no option for start_time.
type msgGetRequest struct {
	StartTime time.Time `json:"start_time"`
	NextFor   string    `json:"next_by_subj"`
	NoHeaders bool      `json:"no_hdr"`
}

type msgGetResponse struct {
	Error   *jetstream.APIError `json:"error,omitempty"`
	Message *struct {
		Sequence uint64 `json:"seq"`
	} `json:"message,omitempty"`
}

// SeqAtTime returns the sequence of the first stored message at or after t
// (the time JetStream stored it) whose subject matches any of filters
// (none, or "", = any); found is false when there is none. The server
// finds it by its time index (a binary search over the message blocks),
// not by scanning the stream: one lookup per filter.
func (l *Stream) SeqAtTime(ctx context.Context, t time.Time, filters ...string) (seq uint64, found bool, err error) {
	filters = nonEmpty(filters)
	if len(filters) == 0 {
		filters = []string{SubjectAll}
	}
	for _, f := range filters {
		s, ok, err := l.seqAtTime(ctx, t, f)
		if err != nil {
			return 0, false, err
		}
		if ok && (!found || s < seq) {
			seq, found = s, true
		}
	}
	return seq, found, nil
}

func (l *Stream) seqAtTime(ctx context.Context, t time.Time, filter string) (seq uint64, found bool, err error) {
	prefix := l.js.Options().APIPrefix
	if prefix == "" {
		prefix = jetstream.DefaultAPIPrefix
	} else if !strings.HasSuffix(prefix, ".") {
		prefix += "."
	}
	req, err := json.Marshal(msgGetRequest{StartTime: t.UTC(), NextFor: filter, NoHeaders: true})
	if err != nil {
		return 0, false, err
	}
	msg, err := l.js.Conn().RequestWithContext(ctx, prefix+"STREAM.MSG.GET."+StreamName, req)
	if err != nil {
		return 0, false, fmt.Errorf("find the first message at %s: %w", t.Format(time.RFC3339Nano), err)
	}
	var resp msgGetResponse
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return 0, false, fmt.Errorf("find the first message at %s: answer: %w", t.Format(time.RFC3339Nano), err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound:
		return 0, false, nil
	case resp.Error != nil:
		return 0, false, fmt.Errorf("find the first message at %s: %w", t.Format(time.RFC3339Nano), resp.Error)
	case resp.Message == nil:
		return 0, false, fmt.Errorf("find the first message at %s: %w", t.Format(time.RFC3339Nano), jetstream.ErrInvalidJetStreamResponse)
	}
	return resp.Message.Sequence, true, nil
}

// Holds reports whether the stream stores any message whose subject
// matches filter: a lookup by subject, not a scan.
//
// With several filters it reports whether any of them matches.
func (l *Stream) Holds(ctx context.Context, filters ...string) (bool, error) {
	_, found, err := l.nextMatching(ctx, 0, filters...)
	return found, err
}
