package store

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"syscall"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// OpenReadOnly opens the checkpoint file at path for reading only, for
// the diagnostics (snapshot inspect, verify, hash): they must never change
// a data dir. Unlike Open it creates nothing, moves nothing aside and
// writes nothing (not even a missing bucket): a file it cannot read is an
// error, left as it is for the next start to deal with.
//
// bbolt takes a shared lock on the file, where a server holds an
// exclusive one: while a server runs on the file this is ErrLocked (after
// the same one-second wait as Open), and a server that starts while a
// read-only open holds it waits as long and fails with ErrLocked too.
// Read-only opens do not exclude each other.
func OpenReadOnly(path string) (*Store, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("open checkpoint %s: %w", path, err)
	}
	if fi.Size() == 0 {
		// bbolt would initialise it: a write.
		return nil, fmt.Errorf("open checkpoint %s: an empty file, no checkpoint", path)
	}
	db, err := openBoltReadOnly(path)
	if errors.Is(err, ErrLocked) {
		return nil, err
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return nil, fmt.Errorf("open checkpoint %s: %w (%s)", path, err, accessHint(errno))
	}
	if err != nil {
		return nil, fmt.Errorf("open checkpoint %s: %w; nothing was moved or changed", path, err)
	}
	s := &Store{path: path}
	if err := s.use(db); err != nil {
		return nil, fmt.Errorf("open checkpoint %s: %w; nothing was moved or changed", path, err)
	}
	return s, nil
}

// openBoltReadOnly is openBolt's read-only form: the same checks of a
// file cut short, and a file that lacks a bucket is damaged rather than
// completed.
func openBoltReadOnly(path string) (db *bolt.DB, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if db != nil {
				db.Close()
			}
			db, err = nil, fmt.Errorf("%w: %v", ErrDamaged, r)
		}
	}()
	opts := boltOptions()
	opts.ReadOnly = true
	// Read, never written: the free pages FileStats counts (bbolt loads
	// them only for a writer unless asked).
	opts.PreLoadFreelist = true
	db, err = bolt.Open(path, 0o600, opts)
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, ErrLocked
	}
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*bolt.DB, error) {
		db.Close()
		return nil, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fail(err)
	}
	var want int64
	var missing []byte
	_ = db.View(func(tx *bolt.Tx) error {
		want = tx.Size()
		for _, b := range allBuckets {
			if missing == nil && tx.Bucket(b) == nil {
				missing = b
			}
		}
		return nil
	})
	if fi.Size() < want {
		return fail(fmt.Errorf("%w: truncated: %d bytes of %d", ErrDamaged, fi.Size(), want))
	}
	if missing != nil {
		return fail(fmt.Errorf("%w: no bucket %q", ErrDamaged, missing))
	}
	return db, nil
}
