package projection

import (
	"time"

	"cellos-allinone/event"
)

// Outcome is what Apply did with one event.
type Outcome int

// Outcomes of Apply.
const (
	Applied   Outcome = iota // well-formed event of a known type
	Ignored                  // well-formed CloudEvent of an unknown type
	Malformed                // not a usable CloudEvent; skipped
	Stale                    // sequence at or below the cursor; nothing happened
)

func (o Outcome) String() string {
	return [...]string{"applied", "ignored", "malformed", "stale"}[o]
}

// Counters count events by outcome. They are part of the projection and
// are checkpointed with it.
type Counters struct {
	Applied   uint64 `json:"applied"`
	Ignored   uint64 `json:"ignored"`
	Malformed uint64 `json:"malformed"`
}

// Gap is a range of sequences the projection never saw (expired or deleted
// from the stream before it could be applied).
type Gap struct {
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
}

// maxGaps bounds the gap list: the newest gaps are kept.
const maxGaps = 100

// Message is one stored event as the projection sees it.
type Message struct {
	Seq     uint64
	Time    time.Time // JetStream's storage time, the fallback timestamp
	Payload []byte
}

// Projection is the folded state of the event log.
type Projection struct {
	cursor     uint64
	cursorID   string
	counters   Counters
	gaps       []Gap
	formations map[string]*Formation
	cells      map[string]*Cell

	// Derived, never stored: cell counts and members per formation id.
	counts  map[string]*CellCounts
	members map[string]map[string]struct{}

	// Changed since the last TakeChanges.
	dirtyFormations map[string]struct{}
	dirtyCells      map[string]struct{}
	reset           bool
}

// New returns an empty projection at cursor 0.
func New() *Projection {
	return &Projection{
		formations:      map[string]*Formation{},
		cells:           map[string]*Cell{},
		counts:          map[string]*CellCounts{},
		members:         map[string]map[string]struct{}{},
		dirtyFormations: map[string]struct{}{},
		dirtyCells:      map[string]struct{}{},
	}
}

// Cursor is the last sequence applied.
func (p *Projection) Cursor() uint64 { return p.cursor }

// CursorID identifies the message at the cursor: its CloudEvent id, or a
// digest of its bytes when it was malformed. Boot compares it with what the
// stream now holds at that sequence.
func (p *Projection) CursorID() string { return p.cursorID }

// Counters returns the outcome counters.
func (p *Projection) Counters() Counters { return p.counters }

// Gaps returns the sequence ranges the projection skipped, oldest first.
func (p *Projection) Gaps() []Gap { return append([]Gap(nil), p.gaps...) }

// Apply folds one message into the projection. Messages at or below the
// cursor are no-ops (Stale). It never panics on any payload.
func (p *Projection) Apply(m Message) Outcome {
	if m.Seq <= p.cursor {
		return Stale
	}
	p.Skip(m.Seq - 1)
	p.cursor = m.Seq
	out, id := p.fold(m)
	p.cursorID = id
	switch out {
	case Applied:
		p.counters.Applied++
	case Ignored:
		p.counters.Ignored++
	case Malformed:
		p.counters.Malformed++
	}
	return out
}

func (p *Projection) fold(m Message) (Outcome, string) {
	env, err := event.Decode(m.Payload)
	if err != nil {
		return Malformed, event.MessageID(m.Payload)
	}
	kind, phase, ok := event.Classify(env.Type)
	if !ok {
		return Ignored, env.ID
	}
	data := decodeData(env.Data)
	id := data.str(event.EntityIDField(kind))
	if !event.ValidID(id) {
		return Malformed, env.ID
	}
	ev := change{seq: m.Seq, at: eventTime(env.Time, m.Time), phase: phase, data: data}
	if kind == event.KindFormation {
		p.applyFormation(id, ev)
	} else {
		p.applyCell(id, ev)
	}
	return Applied, env.ID
}

// change is a decoded, known event about to be folded.
type change struct {
	seq   uint64
	at    time.Time
	phase string
	data  eventData
}

// Skip moves the cursor to seq without applying anything: the stream no
// longer holds cursor+1..seq (they expired before this projection saw
// them). The skipped range is recorded as a gap.
func (p *Projection) Skip(seq uint64) {
	if seq <= p.cursor {
		return
	}
	if p.cursor > 0 {
		p.gaps = append(p.gaps, Gap{From: p.cursor + 1, To: seq})
		if len(p.gaps) > maxGaps {
			p.gaps = append(p.gaps[:0:0], p.gaps[len(p.gaps)-maxGaps:]...)
		}
	}
	p.cursor, p.cursorID = seq, ""
}
