package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// A bbolt file has two meta pages, written in turn by its commits, each
// with a checksum; a transaction starts from the valid one with the
// highest transaction id. A meta page damaged on the medium (a zeroed
// 4 KiB, a flipped bit) fails its checksum, and bbolt then silently
// starts from the other one: the commit before the last — a whole older
// state, every seal of it holding, served as if it were current
// (docs/durability.md, "Corruption"). Nothing in the file tells it apart;
// only the process that saw the newer commit can. So the Store remembers
// the newest transaction id it wrote or read in its file (lastTx), and a
// transaction that starts below it is ErrDamaged: a read answers 503
// state_damaged and the projector rebuilds the state from the stream; a
// commit is refused before it writes over the older state's freelist.
//
// After a restart the fallback is not damage: the older commit is
// consistent (bbolt never reuses a page the commit before the last still
// uses) and the boot replays the stream from its cursor.

// txFloor is the id every transaction the Store starts must reach: read
// before the transaction begins, so that only commits that ended before
// it count.
func (s *Store) txFloor() uint64 { return s.lastTx.Load() }

// checkTx fails a transaction that started from an older commit than
// floor, and else raises the floor to its commit.
func (s *Store) checkTx(tx *bolt.Tx, floor uint64) error {
	commit := uint64(tx.ID())
	if tx.Writable() {
		commit-- // a write transaction is numbered after the commit it starts from
	}
	if commit < floor {
		return fmt.Errorf("%w: the file's newest commit is transaction %d, bbolt started from %d: its newest meta page does not hold", ErrDamaged, floor, commit)
	}
	s.sawTx(commit)
	return nil
}

// sawTx raises lastTx to commit.
func (s *Store) sawTx(commit uint64) {
	for {
		cur := s.lastTx.Load()
		if commit <= cur || s.lastTx.CompareAndSwap(cur, commit) {
			return
		}
	}
}
