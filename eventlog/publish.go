package eventlog

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Published is what the stream answered to Publish.
type Published struct {
	Seq uint64
	// Duplicate is true when a message with the same id was stored inside
	// the stream's duplicate window: nothing new was stored and Seq is the
	// sequence JetStream reports for the first one.
	Duplicate bool
}

// ErrTooLarge is returned by Publish for a message that does not fit the
// NATS server's max_payload (1 MiB by default), which counts its headers
// too. Nothing was sent.
var ErrTooLarge = errors.New("message larger than the NATS server's max_payload")

// Publish stores payload on subject with msgID as its JetStream message id
// (Nats-Msg-Id), so that a retried publish of the same id inside the
// duplicate window is stored once. It waits for the stream's
// acknowledgement.
func (l *Stream) Publish(ctx context.Context, subject string, payload []byte, msgID string) (Published, error) {
	ack, err := l.js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: payload},
		jetstream.WithMsgID(msgID), jetstream.WithExpectStream(StreamName))
	if errors.Is(err, nats.ErrMaxPayload) {
		return Published{}, fmt.Errorf("publish to %s: %w: %d bytes of payload, max_payload %d bytes with the headers",
			subject, ErrTooLarge, len(payload), l.js.Conn().MaxPayload())
	}
	if err != nil {
		return Published{}, fmt.Errorf("publish to %s: %w", subject, err)
	}
	return Published{Seq: ack.Sequence, Duplicate: ack.Duplicate}, nil
}
