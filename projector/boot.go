package projector

import (
	"context"
	"fmt"
	"time"

	"cellos-allinone/event"
	"cellos-allinone/eventlog"
	"cellos-allinone/projection"
	"cellos-allinone/store"
)

// Boot describes how the projector started (the boot object of /v1/status).
type Boot struct {
	// CheckpointCursor is the cursor of the checkpoint the projection was
	// restored from; 0 when it was built from scratch.
	CheckpointCursor uint64 `json:"checkpointCursor"`
	ReplayFrom       uint64 `json:"replayFrom"`
	// ReplayTo is the stream's last sequence as read at boot: replay ends there.
	ReplayTo   uint64 `json:"replayTo"`
	Replayed   uint64 `json:"replayed"`
	DurationMs int64  `json:"durationMs"`
	// Rebuild is "" or why the checkpoint was discarded.
	Rebuild string `json:"rebuild"`
}

// Reasons a checkpoint is discarded (the prefix of Boot.Rebuild).
const (
	RebuildUnreadable  = "checkpoint_unreadable"
	RebuildOldSchema   = "schema_old"
	RebuildNewSchema   = "schema_new"
	RebuildEpoch       = "epoch_changed"
	RebuildBeyond      = "cursor_beyond_stream"
	RebuildMsgMismatch = "cursor_message_changed"
	RebuildHole        = "hole_below_cursor"
)

// start judges the state file against the stream, starts it over when it
// cannot be used, and decides the replay range.
func (p *Projector) start(ctx context.Context) error {
	p.bootStart = time.Now()
	state, err := p.events.State(ctx)
	if err != nil {
		return err
	}
	p.noteFloor(state)
	reason, cpAt, err := restore(ctx, p.served, p.events, state)
	if err != nil {
		return err
	}
	if reason == "" && p.cfg.StoreAside != "" {
		reason = fmt.Sprintf("%s: bbolt could not open it (moved aside to %s)", RebuildUnreadable, p.cfg.StoreAside)
	}
	if reason != "" {
		p.log.Warn("checkpoint discarded; rebuilding from the stream", "reason", reason)
	}
	p.compactAtBoot()
	if p.batch, err = p.served.Batch(); err != nil {
		return err
	}
	cpCursor := p.batch.Meta().Cursor
	if state.FirstSeq > cpCursor+1 && state.Messages > 0 || state.Messages == 0 && state.LastSeq > cpCursor {
		// Events after the cursor expired before we saw them.
		skipTo := state.FirstSeq - 1
		if state.Messages == 0 {
			skipTo = state.LastSeq
		}
		if cpCursor > 0 {
			p.log.Warn("events expired before they were projected", "from", cpCursor+1, "to", skipTo)
		}
		projection.Skip(p.batch, skipTo)
	}
	epoch := state.Epoch
	p.followed.Store(&epoch)
	cursor := p.batch.Meta().Cursor
	p.cpCursor.Store(cpCursor)
	p.cpAt.Store(cpAt)
	p.lastSeen.Store(cursor)
	p.bootMu.Lock()
	p.boot = Boot{CheckpointCursor: cpCursor, ReplayFrom: cursor + 1, ReplayTo: state.LastSeq, Rebuild: reason}
	p.bootMu.Unlock()
	p.log.Info("boot", "checkpoint_cursor", cpCursor, "replay_from", cursor+1, "replay_to", state.LastSeq,
		"epoch", state.Epoch, "rebuild", reason)
	if cursor >= state.LastSeq || !p.leftToRead(ctx) {
		// Nothing to replay (also when the events after the cursor were
		// deleted: the last sequence stays above it).
		if err := p.commit(); err != nil {
			// Damage (a page the commit met): commit asked for the
			// repair, which starts the state over and replays the
			// stream (startOver) — failing the start instead would be
			// a crash loop. Any other error is retried by the apply
			// goroutine before anything else (stall.go). Either way the
			// commit that succeeds makes it ready.
			p.readyPending = true
			return nil
		}
		p.markReady()
	}
	return nil
}

// restore judges the state file against the stream as it is now and, when
// it cannot be used, starts it over for the stream's epoch (moving an
// unreadable or newer file aside first). It returns why it started over
// ("" when the file is used, or there was none) and the time of the
// commit continued from.
func restore(ctx context.Context, st *store.Store, events *eventlog.Stream, state eventlog.State) (string, *time.Time, error) {
	startOver := func(reason string, renew bool) (string, *time.Time, error) {
		var err error
		if renew {
			err = st.Renew(state.Epoch, false)
		} else {
			err = st.Reset(state.Epoch)
		}
		return reason, nil, err
	}
	quarantine := func(reason string, cause error) (string, *time.Time, error) {
		aside, err := st.Quarantine()
		if err != nil {
			return "", nil, fmt.Errorf("%s (%v); moving it aside failed: %w", reason, cause, err)
		}
		return startOver(fmt.Sprintf("%s: %v (moved aside to %s)", reason, cause, aside), false)
	}
	cp, found, err := st.Info()
	if err != nil {
		return quarantine(RebuildUnreadable, err)
	}
	if !found {
		return startOver("", false)
	}
	switch {
	case cp.Schema < store.SchemaVersion:
		return startOver(fmt.Sprintf("%s: checkpoint schema %d, this binary writes %d", RebuildOldSchema, cp.Schema, store.SchemaVersion), true)
	case cp.Schema > store.SchemaVersion:
		return quarantine(RebuildNewSchema, fmt.Errorf("checkpoint schema %d is newer than %d", cp.Schema, store.SchemaVersion))
	}
	var idAtCursor string
	var held bool
	if cp.Meta.Cursor > 0 && cp.Meta.Cursor >= state.FirstSeq && cp.Meta.Cursor <= state.LastSeq {
		msg, ok, err := events.Get(ctx, cp.Meta.Cursor)
		if err != nil {
			return "", nil, err
		}
		if ok {
			idAtCursor, held = event.MessageID(msg.Data), true
		}
	}
	if reason := judge(cp, state, idAtCursor, held); reason != "" {
		return startOver(reason, true)
	}
	if state.Deleted > 0 {
		deleted, err := events.DeletedSeqs(ctx)
		if err != nil {
			return "", nil, err
		}
		if reason := holeBelowCursor(cp.Meta, deleted); reason != "" {
			return startOver(reason, true)
		}
	}
	return "", &cp.At, nil
}

// holeBelowCursor finds a sequence the checkpoint folded that the stream
// no longer holds. After a power cut under --sync interval a later block
// can keep unsynced pages that an earlier block lost (the kernel writes
// pages back in any order): the stream then has a hole below an intact
// cursor, and the checkpoint shows events the log lost. A sequence the
// fold itself skipped (a recorded gap) is no such hole; when the gap list
// is full its oldest gaps are forgotten, so sequences before the oldest
// kept one are not judged.
func holeBelowCursor(m projection.Meta, deleted []uint64) string {
	var from uint64
	if len(m.Gaps) >= projection.MaxGaps {
		from = m.Gaps[0].From
	}
	for _, seq := range deleted {
		if seq > m.Cursor || seq < from {
			continue
		}
		skipped := false
		for _, g := range m.Gaps {
			skipped = skipped || seq >= g.From && seq <= g.To
		}
		if !skipped {
			return fmt.Sprintf("%s: the stream no longer holds sequence %d, which the checkpoint at %d folded", RebuildHole, seq, m.Cursor)
		}
	}
	return ""
}

// judge compares a readable checkpoint of the current schema with the
// stream. idAtCursor is the identity of the message the stream holds at the
// checkpoint's cursor, if held.
func judge(cp store.Checkpoint, state eventlog.State, idAtCursor string, held bool) string {
	switch {
	case cp.Epoch != state.Epoch:
		return fmt.Sprintf("%s: checkpoint belongs to the stream created %s, the stream now was created %s", RebuildEpoch, cp.Epoch, state.Epoch)
	case cp.Meta.Cursor > state.LastSeq:
		return fmt.Sprintf("%s: checkpoint cursor %d, stream last sequence %d", RebuildBeyond, cp.Meta.Cursor, state.LastSeq)
	case held && cp.Meta.CursorID != "" && idAtCursor != cp.Meta.CursorID:
		return fmt.Sprintf("%s: sequence %d held %q at checkpoint, now %q", RebuildMsgMismatch, cp.Meta.Cursor, cp.Meta.CursorID, idAtCursor)
	}
	return ""
}
