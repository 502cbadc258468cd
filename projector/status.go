package projector

import (
	"context"
	"time"

	"cellos-allinone/eventlog"
	"cellos-allinone/projection"
)

// Status is the body of GET /v1/status (DESIGN.md §6).
type Status struct {
	Version    string              `json:"version"`
	Ready      bool                `json:"ready"`
	Cursor     uint64              `json:"cursor"`
	Epoch      string              `json:"epoch"`
	Lag        uint64              `json:"lag"`
	Stream     StreamStatus        `json:"stream"`
	Boot       Boot                `json:"boot"`
	Checkpoint CheckpointStatus    `json:"checkpoint"`
	Events     projection.Counters `json:"events"`
	Gaps       []projection.Gap    `json:"gaps"`
	Registry   RegistryStatus      `json:"registry"`
}

// StreamStatus is the stream part of Status.
type StreamStatus struct {
	Name     string `json:"name"`
	FirstSeq uint64 `json:"firstSeq"`
	LastSeq  uint64 `json:"lastSeq"`
	Messages uint64 `json:"messages"`
	Bytes    uint64 `json:"bytes"`
}

// CheckpointStatus is the last checkpoint written by this process (or
// restored at boot).
type CheckpointStatus struct {
	Cursor uint64     `json:"cursor"`
	At     *time.Time `json:"at"`
	// Failures counts failed checkpoint writes since start; LastError is
	// the latest one, "" once a write succeeded again.
	Failures  uint64 `json:"failures"`
	LastError string `json:"lastError"`
}

// RegistryStatus counts what the projection holds.
type RegistryStatus struct {
	Formations int `json:"formations"`
	Cells      int `json:"cells"`
}

// Status reads the stream's state and reports the projector's.
func (p *Projector) Status(ctx context.Context, version string) (Status, error) {
	st, err := p.log.State(ctx)
	if err != nil {
		return Status{}, err
	}
	p.streamEnd.Store(max(p.streamEnd.Load(), st.LastSeq))
	s := Status{
		Version: version,
		Ready:   p.Ready(),
		Epoch:   p.Epoch(),
		Stream: StreamStatus{
			Name: eventlog.StreamName, FirstSeq: st.FirstSeq, LastSeq: st.LastSeq,
			Messages: st.Messages, Bytes: st.Bytes,
		},
		Boot:       p.BootInfo(),
		Checkpoint: CheckpointStatus{Cursor: p.cpCursor.Load(), At: p.cpAt.Load(), Failures: p.cpFails.Load()},
	}
	if e := p.cpErr.Load(); e != nil {
		s.Checkpoint.LastError = *e
	}
	p.Read(func(pr *projection.Projection) {
		s.Cursor = pr.Cursor()
		s.Events = pr.Counters()
		s.Gaps = pr.Gaps()
		s.Registry.Formations, s.Registry.Cells = pr.Size()
	})
	if s.Gaps == nil {
		s.Gaps = []projection.Gap{}
	}
	if st.LastSeq > s.Cursor {
		s.Lag = st.LastSeq - s.Cursor
	}
	return s, nil
}
