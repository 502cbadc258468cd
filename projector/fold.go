package projector

import (
	"context"

	"cellos-allinone/eventlog"
	"cellos-allinone/projection"
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
