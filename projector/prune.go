package projector

import "cellos-allinone/eventlog"

// The retention rule (docs/design.md §3) runs in the store's commit: a
// commit prunes at the floor the batch was told. The floor is the first
// sequence of the stream incarnation the batch folds, read at boot and
// then every second with the lag (monitor.go); a floor read of another
// incarnation is never told to a batch.

// floorMark is the first sequence of one stream incarnation, as last read.
type floorMark struct {
	epoch string
	seq   uint64
}

// noteFloor records the floor of st's incarnation: its first sequence, or
// on a stream that holds nothing the one after its last.
func (p *Projector) noteFloor(st eventlog.State) {
	if st.Epoch == "" {
		return
	}
	seq := st.FirstSeq
	if st.Messages == 0 {
		seq = st.LastSeq + 1
	}
	for {
		old := p.floor.Load()
		if old != nil && old.epoch == st.Epoch && old.seq >= seq {
			return
		}
		if p.floor.CompareAndSwap(old, &floorMark{epoch: st.Epoch, seq: seq}) {
			return
		}
	}
}

// tellFloor tells the batch the floor of its incarnation, if one was
// read; it runs on the apply goroutine, before a commit.
func (p *Projector) tellFloor() {
	if m := p.floor.Load(); m != nil && m.epoch == p.batch.Epoch() {
		p.batch.SetFloor(m.seq)
	}
}

// pruneDue reports whether a commit would prune although nothing else is
// pending: the floor moved past an entity the rule removes.
func (p *Projector) pruneDue() bool {
	p.tellFloor()
	return p.batch.PruneDue()
}
