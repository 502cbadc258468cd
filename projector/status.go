package projector

import (
	"context"
	"time"

	"cellos-allinone/eventlog"
	"cellos-allinone/projection"
)

// Status is the body of GET /v1/status (docs/design.md §5).
type Status struct {
	Version string `json:"version"`
	Ready   bool   `json:"ready"`
	Cursor  uint64 `json:"cursor"`
	Epoch   string `json:"epoch"`
	Lag     uint64 `json:"lag"`
	// LagSeconds is the age of the oldest event not yet applied; 0 when
	// none is waiting.
	LagSeconds float64      `json:"lagSeconds"`
	Stream     StreamStatus `json:"stream"`
	// Stale is true while the state is being rebuilt from the stream (a
	// new stream incarnation, or a damaged record met): the answers are
	// still those of the old state (its epoch and cursor).
	Stale bool `json:"stale"`
	// Rebuild describes the latest rebuild while running (the stream was
	// deleted and created again, or the state file met damage); null when
	// there was none.
	Rebuild    *RebuildStatus      `json:"rebuild"`
	Boot       Boot                `json:"boot"`
	Checkpoint CheckpointStatus    `json:"checkpoint"`
	StateFile  StateFileStatus     `json:"stateFile"`
	Events     projection.Counters `json:"events"`
	Gaps       []projection.Gap    `json:"gaps"`
	Registry   RegistryStatus      `json:"registry"`
	// Integrity is what the scrub found, and when it runs (scrub.go),
	// and the last state hash (hash.go).
	Integrity IntegrityStatus `json:"integrity"`
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
	// Failing is the commit that keeps failing, null while commits
	// succeed: the fold has stopped since then and retries it; reads
	// serve the last commit (Cursor).
	Failing *CommitFailure `json:"failing"`
}

// RebuildStatus is a rebuild from the stream while running.
type RebuildStatus struct {
	Reason string `json:"reason"`
	Epoch  string `json:"epoch"`
	// Cursor is how far the new projection has got.
	Cursor     uint64     `json:"cursor"`
	StartedAt  time.Time  `json:"startedAt"`
	FinishedAt *time.Time `json:"finishedAt"`
}

// RegistryStatus counts what the projection holds, and what the
// retention rule removed from it (docs/design.md §3).
type RegistryStatus struct {
	Formations int               `json:"formations"`
	Cells      int               `json:"cells"`
	Pruned     projection.Pruned `json:"pruned"`
}

// Status reads the stream's state and reports the projector's.
func (p *Projector) Status(ctx context.Context, version string) (Status, error) {
	st, err := p.events.State(ctx)
	if err != nil {
		return Status{}, err
	}
	p.noteFloor(st)
	s := Status{
		Version: version,
		Ready:   p.Ready(),
		Stream: StreamStatus{
			Name: eventlog.StreamName, FirstSeq: st.FirstSeq, LastSeq: st.LastSeq,
			Messages: st.Messages, Bytes: st.Bytes,
		},
		Boot:       p.BootInfo(),
		Checkpoint: CheckpointStatus{At: p.cpAt.Load(), Failures: p.cpFails.Load(), Failing: p.CommitFailing()},
	}
	if e := p.cpErr.Load(); e != nil {
		s.Checkpoint.LastError = *e
	}
	s.StateFile = p.compacted.status()
	s.Integrity = p.integ.status()
	if fs, err := p.fileStats(); err == nil {
		s.StateFile.FileStats = fs
	}
	err = p.Read(func(v View) {
		s.Epoch, s.Cursor = v.Epoch, v.Cursor()
		// The served state is the last commit: its cursor is the
		// checkpoint's, read with it (cpCursor is stored just after the
		// commit, which readers may already see).
		s.Checkpoint.Cursor = v.Cursor()
		s.Events, s.Gaps = v.Counters(), v.Gaps()
		s.Registry.Formations, s.Registry.Cells = v.Size()
		s.Registry.Pruned = v.Pruned()
		// Read with the state: a rebuilt state takes the served one's
		// place and stops being stale in one step (promote).
		// A state that met damage is stale too, also before its
		// repair could start.
		s.Stale = p.rebuilding.Load() || p.broken.Load() || p.repair.active()
		p.rebuildMu.Lock()
		if r := p.lastRebuild; r != nil {
			rs := *r
			rs.Cursor = p.lastSeen.Load()
			if !s.Stale && rs.FinishedAt != nil {
				rs.Cursor = s.Cursor
			}
			s.Rebuild = &rs
		}
		p.rebuildMu.Unlock()
	})
	if err != nil {
		return Status{}, err
	}
	if s.Gaps == nil {
		s.Gaps = []projection.Gap{}
	}
	if s.Events.UntenantedOfTenant == nil {
		s.Events.UntenantedOfTenant = map[string]uint64{}
	}
	// Lag is measured against what the consumer feeds (the rebuilt
	// projection while rebuilding, else the served one), and only when
	// the stream read is that incarnation: another one's last sequence
	// means nothing next to this cursor. Sequences deleted after the
	// cursor are not waiting: nothing stored after it is no lag.
	applied, epoch := s.Cursor, s.Epoch
	if s.Stale {
		applied, epoch = p.lastSeen.Load(), p.followedEpoch()
	}
	if st.LastSeq > applied && st.Epoch == epoch {
		if age, found := p.oldestUnapplied(ctx, applied); found {
			s.Lag = st.LastSeq - applied
			s.LagSeconds = age.Seconds()
		}
	}
	s.Integrity.Hash = p.lastHash()
	return s, nil
}
