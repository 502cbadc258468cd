package realbinary_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"cellos-allinone/event"
	"cellos-allinone/testutil"
)

const streamName = "CELLOS_EVENTS"

// streamIDs reads the whole stream with an ordered consumer, through the
// last sequence its info gives, and counts each Nats-Msg-Id. Call it only
// when nobody publishes.
func streamIDs(t *testing.T, nc *nats.Conn) (ids map[string]int, lastSeq, read uint64) {
	t.Helper()
	ids, lastSeq, read, _, _ = streamIDsAt(t, nc, 0)
	return ids, lastSeq, read
}

// streamIDsAt is streamIDs that also returns the identity the projector
// gives the message at sequence at (event.MessageID), "" if none is there,
// and the sequences from #1 to the last that the stream does not hold.
func streamIDsAt(t *testing.T, nc *nats.Conn, at uint64) (ids map[string]int, lastSeq, read uint64, idAt string, missing []uint64) {
	t.Helper()
	ctx := testutil.Ctx(t, 2*time.Minute)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, streamName)
	if err != nil {
		t.Fatalf("stream %s: %v", streamName, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatalf("stream %s info: %v", streamName, err)
	}
	lastSeq = info.State.LastSeq
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("ordered consumer on %s: %v", streamName, err)
	}
	ids = make(map[string]int, lastSeq)
	var seq uint64
	for seq < lastSeq {
		// Exactly what is left at most, so that the last batch ends as
		// soon as it is full instead of waiting out its expiry.
		batch, err := cons.Fetch(int(min(lastSeq-seq, 4096)), jetstream.FetchMaxWait(10*time.Second))
		if err != nil {
			t.Fatalf("fetch after #%d: %v", seq, err)
		}
		n := 0
		for m := range batch.Messages() {
			md, err := m.Metadata()
			if err != nil {
				t.Fatalf("metadata after #%d: %v", seq, err)
			}
			for s := seq + 1; s < md.Sequence.Stream; s++ {
				missing = append(missing, s)
			}
			seq = md.Sequence.Stream
			ids[m.Headers().Get(jetstream.MsgIDHeader)]++
			if seq == at {
				idAt = event.MessageID(m.Data())
			}
			n++
			read++
		}
		if err := batch.Error(); err != nil {
			t.Fatalf("fetch after #%d: %v", seq, err)
		}
		if n == 0 {
			t.Fatalf("no message after #%d within 10s, the stream ends at #%d", seq, lastSeq)
		}
	}
	return ids, lastSeq, read, idAt, missing
}
