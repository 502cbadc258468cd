package projector

import (
	"context"
	"time"

	"cellos-allinone/eventlog"
	"cellos-allinone/projection"
	"cellos-allinone/store"
)

// FoldLog folds the stream from its first retained sequence through seq
// (math.MaxUint64: all of it) into a fresh projection: the reference a
// checkpoint or a running projector must equal.
func FoldLog(ctx context.Context, l *eventlog.Stream, seq uint64) (*projection.Projection, error) {
	p := projection.New()
	err := l.FoldUpTo(ctx, seq, func(d eventlog.Delivery) {
		p.Apply(projection.Message{Seq: d.Seq, Subject: d.Subject, Time: d.Time, Payload: d.Payload})
	})
	return p, err
}

// FoldWindow folds the retained events through seq (math.MaxUint64: all
// of them) into a window for projection.CompareRetained, and returns the
// floor it is whole from: the stream's first sequence once the fold has
// ended (events that expired while it read are below it), or on a stream
// that holds nothing the sequence after its last.
func FoldWindow(ctx context.Context, l *eventlog.Stream, seq uint64) (*projection.Window, uint64, error) {
	w := projection.NewWindow()
	err := l.FoldUpTo(ctx, seq, func(d eventlog.Delivery) {
		w.Apply(projection.Message{Seq: d.Seq, Subject: d.Subject, Time: d.Time, Payload: d.Payload})
	})
	if err != nil {
		return nil, 0, err
	}
	st, err := l.State(ctx)
	if err != nil {
		return nil, 0, err
	}
	if st.Messages == 0 {
		return w, st.LastSeq + 1, nil
	}
	return w, st.FirstSeq, nil
}

// FoldInto folds the retained events through seq (or the stream's last,
// if smaller) into st — reset to the stream's epoch first — as a rebuild
// does: the state's own batch, committed every DefaultCheckpointEvents
// events or commitBytes of payload, pruned at the stream's first
// sequence. Its memory is the batch's, bounded whatever the length of the
// stream: a state to hash beside another (snapshot hash), where FoldLog
// would hold the registry in memory. It returns the floor, as FoldWindow.
func FoldInto(ctx context.Context, l *eventlog.Stream, seq uint64, st *store.Store) (floor uint64, err error) {
	info, err := l.State(ctx)
	if err != nil {
		return 0, err
	}
	floor = info.FirstSeq
	if info.Messages == 0 {
		floor = info.LastSeq + 1
	}
	if err := st.Reset(l.Epoch()); err != nil {
		return 0, err
	}
	b, err := st.Batch()
	if err != nil {
		return 0, err
	}
	defer b.Close()
	b.SetFloor(floor)
	var dec projection.Decoder
	var events, bytes int
	var ferr error
	err = l.FoldUpTo(ctx, seq, func(d eventlog.Delivery) {
		if ferr != nil {
			return
		}
		projection.Apply(b, dec.Decode(projection.Message{Seq: d.Seq, Subject: d.Subject, Time: d.Time, Payload: d.Payload}))
		if events, bytes = events+1, bytes+len(d.Payload); events >= DefaultCheckpointEvents || bytes >= commitBytes {
			ferr = b.Commit(time.Now())
			events, bytes = 0, 0
		}
	})
	if err == nil {
		err = ferr
	}
	if err != nil {
		return 0, err
	}
	// A cursor on a sequence deleted from the stream: the fold stands
	// there too, as the projector's does.
	projection.Skip(b, min(seq, info.LastSeq))
	return floor, b.Commit(time.Now())
}
