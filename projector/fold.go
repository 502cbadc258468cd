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
