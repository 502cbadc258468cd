package store

import (
	"errors"
	"fmt"
	"runtime/debug"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// A write transaction on a damaged file can panic in bbolt (a page it
// cannot read while it spills or rebalances), and so can its rollback: a
// rollback reloads the freelist from its page, and a garbled freelist
// page panics there too. bbolt's Update then never releases its writer
// lock, and every later write — the final commit, Close, the Replace
// that swaps a repaired file in — waits for it for ever, with readers
// queued behind the swap (the fuzzer found it: a garbled freelist page,
// then any damage that made a commit panic, and the repair hung). So
// writes go through update, which rolls back by hand and, when the
// rollback panics too, marks the file wedged: no write is begun on it
// again (ErrDamaged, which starts a repair), and closing it abandons the
// handle instead of waiting — its descriptor and mapping stay behind
// until the process ends, once per such damage.

// errWedged is a write on a wedged file.
var errWedged = fmt.Errorf("%w: an earlier write transaction could not be rolled back; no write is begun on this file again", ErrDamaged)

// update runs fn in a write transaction and commits it, as bbolt's
// Update, but survives a panicking rollback (wedged).
func (s *Store) update(fn func(*bolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	if s.wedged.Load() {
		return errWedged
	}
	if err := s.metaOK(); err != nil {
		return err
	}
	tx, err := s.db.Begin(true)
	if err != nil {
		return err
	}
	done := false
	rollback := func() {
		defer func() {
			if r := recover(); r != nil {
				s.wedged.Store(true)
			}
		}()
		_ = tx.Rollback()
	}
	defer func() {
		r := recover()
		if r == nil && done {
			return
		}
		// fn or Commit panicked (Commit rolls back on its own errors; a
		// second Rollback then does nothing).
		rollback()
		if r != nil {
			err = fmt.Errorf("%w: %v", ErrDamaged, r)
		}
	}()
	err = checkFreelist(tx, s.path)
	if err == nil {
		err = fn(tx)
	}
	if err != nil {
		done = true
		rollback()
		return err
	}
	err = tx.Commit()
	done = true
	if err != nil {
		rollback()
	}
	return err
}

// closeDB closes the store's file, or abandons it when it is wedged.
func (s *Store) closeDB() error {
	s.metas.Swap(nil).close()
	if s.wedged.Load() {
		return nil
	}
	err := s.db.Close()
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return nil
	}
	return err
}
