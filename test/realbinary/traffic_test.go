package realbinary_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"cellos-allinone/testutil"
)

// traffic is an endless, realistic mix of events: a few formations in
// flight at once, each with its cells going through their lives in an
// interleaved order, with status changes, late no-op events, deletions,
// unknown types and malformed payloads. Formations live across rounds, so
// entities restored from a checkpoint keep changing after a restart.
type traffic struct {
	mu         sync.Mutex // next is called by several publishers
	rng        *rand.Rand
	flights    [][]testutil.Event // per formation in flight: its events still to send
	formations int
	bad        int
}

const formationsInFlight = 6

func newTraffic(seed uint64) *traffic {
	g := &traffic{rng: rand.New(rand.NewPCG(seed, 2))}
	g.flights = make([][]testutil.Event, formationsInFlight)
	for i := range g.flights {
		g.flights[i] = g.formation()
	}
	return g
}

// next returns the next event and its message id: the CloudEvent id, or a
// made-up unique one for a payload that has none.
func (g *traffic) next() (string, testutil.Event) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch n := g.rng.IntN(100); {
	case n == 0:
		return g.malformed()
	case n == 1:
		fid := fmt.Sprintf("cl-f%05d", g.formations)
		ev := testutil.Event{Subject: "cellos.events.formation." + fid + ".audit",
			Payload: testutil.CE("dev.cellos.events.formation.audit.v1.note", map[string]any{"formationId": fid}, time.Time{})}
		return ceID(ev.Payload), ev
	}
	i := g.rng.IntN(len(g.flights))
	if len(g.flights[i]) == 0 {
		g.flights[i] = g.formation()
	}
	ev := g.flights[i][0]
	g.flights[i] = g.flights[i][1:]
	return ceID(ev.Payload), ev
}

// formation returns the whole life of a new formation and its cells.
func (g *traffic) formation() []testutil.Event {
	g.formations++
	fid := fmt.Sprintf("cl-f%05d", g.formations)
	tenant := fmt.Sprintf("tenant-%d", g.rng.IntN(3))
	out := []testutil.Event{
		testutil.Formation(fid, "created", map[string]any{"name": "formation " + fid, "tenantId": tenant, "labels": map[string]any{"suite": "crashloop"}}),
		testutil.Formation(fid, "launching", nil),
		testutil.Formation(fid, "running", nil),
	}
	cells := make([][]testutil.Event, 3+g.rng.IntN(8))
	for c := range cells {
		cid := fmt.Sprintf("%s-c%02d", fid, c)
		meta := map[string]any{"formationId": fid, "specId": "spec-" + fid, "runId": "run-1"}
		if g.rng.IntN(4) == 0 {
			meta["correlation"] = map[string]any{"tenantId": tenant}
		} else {
			meta["tenantId"] = tenant
		}
		life := []testutil.Event{testutil.Cell(cid, "admitted", meta), testutil.Cell(cid, "started", nil)}
		if g.rng.IntN(5) == 0 {
			life = append(life, testutil.Cell(cid, "failed", map[string]any{"reason": "oom"}))
		} else {
			life = append(life, testutil.Cell(cid, "completed", map[string]any{"exitCode": g.rng.IntN(2)}))
		}
		life = append(life, testutil.Cell(cid, "summary", map[string]any{"passed": 12, "failed": g.rng.IntN(3)}))
		if g.rng.IntN(8) == 0 {
			life = append(life, testutil.Cell(cid, "started", nil)) // late: a no-op
		}
		cells[c] = append(life, testutil.Cell(cid, "destroyed", nil))
	}
	for left := true; left; {
		left = false
		c := g.rng.IntN(len(cells))
		for len(cells[c]) == 0 {
			c = (c + 1) % len(cells)
		}
		out = append(out, cells[c][0])
		cells[c] = cells[c][1:]
		if g.rng.IntN(30) == 0 {
			out = append(out, testutil.Formation(fid, "degraded", nil), testutil.Formation(fid, "running", nil))
		}
		for _, l := range cells {
			left = left || len(l) > 0
		}
	}
	switch g.rng.IntN(10) {
	case 0:
		out = append(out, testutil.Formation(fid, "failed", nil))
	case 1:
		out = append(out, testutil.Formation(fid, "cancelled", nil))
	default:
		out = append(out, testutil.Formation(fid, "completed", nil))
	}
	if g.rng.IntN(6) == 0 {
		out = append(out, testutil.Formation(fid, "deleted", nil))
	}
	return out
}

// malformed returns a payload the projection must count and skip.
func (g *traffic) malformed() (string, testutil.Event) {
	g.bad++
	id := fmt.Sprintf("cl-bad-%d", g.bad)
	switch g.bad % 3 {
	case 0:
		return id, testutil.Raw("not json " + id)
	case 1: // a CloudEvent without an id
		return id, testutil.Raw(`{"specversion":"1.0","source":"/test","type":"` + testutil.CellType + `started","data":{"cellId":"c-none"}}`)
	}
	// A known type without the entity id it needs.
	ev := testutil.Event{Subject: "cellos.events.cell.nobody.started",
		Payload: testutil.CE(testutil.CellType+"started", map[string]any{"exitCode": 1}, time.Time{})}
	return ceID(ev.Payload), ev
}

func ceID(payload []byte) string {
	var ce struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(payload, &ce); err != nil || ce.ID == "" {
		panic(fmt.Sprintf("payload without id: %s", payload))
	}
	return ce.ID
}

// publisher publishes traffic at full speed with PublishAsync, each event
// with its id as Nats-Msg-Id, and records the ids the server acknowledged.
type publisher struct {
	js   jetstream.JetStream
	gen  *traffic
	stop atomic.Bool
	sent atomic.Int64
	done chan struct{}
	// firstAck is closed by the first acknowledgement.
	firstAck     chan struct{}
	firstAckOnce sync.Once
	err          error // why the loop ended, once done is closed

	mu      sync.Mutex
	acked   []string
	ackedAt []time.Time // when each of acked was acknowledged
	failed  int
}

func startPublisher(t *testing.T, nc *nats.Conn, gen *traffic) *publisher {
	t.Helper()
	p := &publisher{gen: gen, done: make(chan struct{}), firstAck: make(chan struct{})}
	js, err := jetstream.New(nc,
		// JetStream stores every message queued for a stream before it
		// sends their acks, and with --sync always each store is an
		// fsync (about 1 ms here): the window bounds the ack latency.
		jetstream.WithPublishAsyncMaxPending(256),
		// The backstop for a publish that went out while the connection
		// was already dropping: it then never gets an answer.
		jetstream.WithPublishAsyncTimeout(3*time.Second),
		jetstream.WithPublishAsyncAckHandler(func(_ jetstream.JetStream, m *nats.Msg, _ *jetstream.PubAck) {
			p.mu.Lock()
			p.acked = append(p.acked, m.Header.Get(jetstream.MsgIDHeader))
			p.ackedAt = append(p.ackedAt, time.Now())
			p.mu.Unlock()
			p.firstAckOnce.Do(func() { close(p.firstAck) })
		}),
		jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) {
			p.mu.Lock()
			p.failed++
			p.mu.Unlock()
		}),
	)
	if err != nil {
		t.Fatal(err)
	}
	p.js = js
	go p.loop()
	return p
}

func (p *publisher) loop() {
	defer close(p.done)
	for !p.stop.Load() {
		id, ev := p.gen.next()
		for {
			_, err := p.js.PublishAsync(ev.Subject, ev.Payload, jetstream.WithMsgID(id))
			if err == nil {
				p.sent.Add(1)
				break
			}
			if errors.Is(err, jetstream.ErrTooManyStalledMsgs) && !p.stop.Load() {
				continue // the window is full: the same event again
			}
			p.err = err
			return
		}
	}
}

// finish stops publishing and waits until every publish has been
// acknowledged or has failed; it returns the acknowledged ids.
func (p *publisher) finish(t *testing.T) (acked []string, failed int) {
	t.Helper()
	p.stop.Store(true)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the publisher did not stop within 10s")
	}
	// Not PublishAsyncComplete: it can report done before the last
	// callbacks have run.
	sent := int(p.sent.Load())
	if !testutil.Poll(10*time.Second, 5*time.Millisecond, func() bool {
		p.mu.Lock()
		acked, failed = slices.Clone(p.acked), p.failed
		p.mu.Unlock()
		// ≥, not =: a PublishAsync that returned an error (the connection
		// dropping under it) can still get its error callback.
		return len(acked)+failed >= sent
	}) {
		t.Fatalf("%d of %d publishes neither acknowledged nor failed within 10s", sent-len(acked)-failed, sent)
	}
	return acked, failed
}

// ackTimes returns when each id finish returned was acknowledged, in the
// same order. Call it after finish.
func (p *publisher) ackTimes() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.ackedAt)
}
