package projection

import (
	"maps"
	"time"
)

// Outcome is what Apply did with one event.
type Outcome int

// Outcomes of Apply.
const (
	Applied   Outcome = iota // well-formed event of a known type
	Ignored                  // well-formed CloudEvent of an unknown type
	Malformed                // not a usable CloudEvent; skipped
	Stale                    // sequence at or below the cursor; nothing happened
	Rejected                 // a tenant claim the fold refuses (fold v3); skipped
)

func (o Outcome) String() string {
	return [...]string{"applied", "ignored", "malformed", "stale", "rejected"}[o]
}

// Counters count events by outcome. They are part of the projection's
// state and survive restarts.
type Counters struct {
	Applied   uint64 `json:"applied"`
	Ignored   uint64 `json:"ignored"`
	Malformed uint64 `json:"malformed"`
	Rejected  uint64 `json:"rejected"`
	// UntenantedOfTenant counts, per tenant, the events of a known type
	// published in the untenanted subject form whose tenant — declared,
	// else their entity's — is that tenant: producers that should move to
	// the tenant form. Bounded (see MaxUntenantedTenants); nil until the
	// first such event.
	UntenantedOfTenant map[string]uint64 `json:"untenantedOfTenant"`
}

// Equal reports whether c and o count the same (a nil map equals an
// empty one).
func (c Counters) Equal(o Counters) bool {
	return c.Applied == o.Applied && c.Ignored == o.Ignored && c.Malformed == o.Malformed &&
		c.Rejected == o.Rejected && maps.Equal(c.UntenantedOfTenant, o.UntenantedOfTenant)
}

// Clone returns c with a map of its own.
func (c Counters) Clone() Counters {
	c.UntenantedOfTenant = maps.Clone(c.UntenantedOfTenant)
	return c
}

// Gap is a range of sequences the projection never saw (expired or deleted
// from the stream before it could be applied).
type Gap struct {
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
}

// MaxGaps bounds the gap list: the newest gaps are kept.
const MaxGaps = 100

// Message is one stored event as the projection sees it.
type Message struct {
	Seq uint64
	// Subject is the subject the event is stored under: its tenant form
	// names the event's tenant (rule 1). "" reads as the untenanted form.
	Subject string
	Time    time.Time // JetStream's storage time, the fallback timestamp
	Payload []byte
}

// Projection is a fold of the event log held in memory: the reference the
// projector's store is compared with (snapshot verify, tests), and a State
// for tools. It implements State and Reader.
type Projection struct {
	meta       Meta
	formations map[string]*Formation
	cells      map[string]*Cell

	// Derived: cell counts and members per formation id.
	counts  map[string]*CellCounts
	members map[string]map[string]struct{}
	// The counts of the pruned cells a formation still counts (Prune).
	pruned map[string]*CellCounts

	dec Decoder
}

// New returns an empty projection at cursor 0.
func New() *Projection {
	return &Projection{
		formations: map[string]*Formation{},
		cells:      map[string]*Cell{},
		counts:     map[string]*CellCounts{},
		members:    map[string]map[string]struct{}{},
		pruned:     map[string]*CellCounts{},
	}
}

// Apply decodes m and folds it.
func (p *Projection) Apply(m Message) Outcome {
	out, _ := Apply(p, p.dec.Decode(m))
	return out
}

// Skip moves the cursor to seq without applying anything (see Skip).
func (p *Projection) Skip(seq uint64) { Skip(p, seq) }

// Cursor is the last sequence applied.
func (p *Projection) Cursor() uint64 { return p.meta.Cursor }

// CursorID identifies the message at the cursor: its CloudEvent id, or a
// digest of its bytes when it was malformed.
func (p *Projection) CursorID() string { return p.meta.CursorID }

// Counters returns the outcome counters.
func (p *Projection) Counters() Counters { return p.meta.Counters.Clone() }

// Gaps returns the sequence ranges the projection skipped, oldest first.
func (p *Projection) Gaps() []Gap { return append([]Gap(nil), p.meta.Gaps...) }

// Pruned reports what the retention rule removed, and the floor it last
// pruned at.
func (p *Projection) Pruned() Pruned { return p.meta.Pruned }

// Meta implements State.
func (p *Projection) Meta() *Meta { return &p.meta }

// LoadFormation implements State: the formation as folded, tombstones
// included, without its derived counts.
func (p *Projection) LoadFormation(id string) (Formation, bool) {
	f := p.formations[id]
	if f == nil {
		return Formation{}, false
	}
	return *f, true
}

// SaveFormation implements State.
func (p *Projection) SaveFormation(f Formation) {
	f.Cells = CellCounts{} // derived, never held
	p.formations[f.ID] = &f
}

// LoadCell implements State.
func (p *Projection) LoadCell(id string) (Cell, bool) {
	c := p.cells[id]
	if c == nil {
		return Cell{}, false
	}
	return *c, true
}

// FormationCells implements State, from the derived membership.
func (p *Projection) FormationCells(id string) []string {
	ids := make([]string, 0, len(p.members[id]))
	for cid := range p.members[id] {
		ids = append(ids, cid)
	}
	return ids
}

// SaveCell implements State and keeps the per-formation counts (rule 7).
func (p *Projection) SaveCell(c Cell) {
	var old countKey
	if prev := p.cells[c.ID]; prev != nil {
		old = keyOf(*prev)
	}
	p.cells[c.ID] = &c
	if now := keyOf(c); now != old {
		p.recount(c.ID, old, now)
	}
}

// recount moves a cell between the derived per-formation counts; the zero
// key is "not counted".
func (p *Projection) recount(cellID string, old, now countKey) {
	if old.formation != "" && old.state != "" {
		p.countsFor(old.formation).Add(old.state, old.outcome, -1)
		if old.formation != now.formation {
			delete(p.members[old.formation], cellID)
		}
	}
	if now.formation != "" {
		p.countsFor(now.formation).Add(now.state, now.outcome, 1)
		m := p.members[now.formation]
		if m == nil {
			m = map[string]struct{}{}
			p.members[now.formation] = m
		}
		m[cellID] = struct{}{}
	}
}

func (p *Projection) countsFor(formationID string) *CellCounts {
	c := p.counts[formationID]
	if c == nil {
		c = &CellCounts{}
		p.counts[formationID] = c
	}
	return c
}
