package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"cellos-allinone/projection"
)

// SchemaVersion is the layout this binary writes. An older checkpoint is
// discarded and rebuilt; a newer one is moved aside.
const SchemaVersion = 2

var (
	bucketMeta       = []byte("meta")
	bucketFormations = []byte("formations")
	bucketCells      = []byte("cells")

	keySchema   = []byte("schema")
	keyEpoch    = []byte("epoch")
	keyCursor   = []byte("cursor")
	keyPosition = []byte("position")
	keyAt       = []byte("at")
)

// ErrLocked means another process holds the checkpoint file.
var ErrLocked = errors.New("checkpoint file is locked by another process (is another cellos-allinone using this data dir?)")

// Store is an open checkpoint file.
type Store struct {
	path string
	db   *bolt.DB
}

// Checkpoint describes the stored checkpoint.
type Checkpoint struct {
	Schema uint64
	Epoch  string
	Meta   projection.Meta
	At     time.Time
}

// Open opens (or creates) the checkpoint file at path. A file bbolt opened
// but could not read as a checkpoint (foreign, garbage, truncated) is
// moved aside and replaced; aside names the moved file ("" if none). A
// file the operating system would not let it open — no permission, a
// read-only mount, a full disk — is an error that names the file and the
// cause, and nothing is moved or deleted: replaying the whole log would
// not fix it.
func Open(path string) (s *Store, aside string, err error) {
	db, err := openBolt(path)
	if errors.Is(err, ErrLocked) {
		return nil, "", err
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return nil, "", fmt.Errorf("open checkpoint %s: %w (%s); nothing was moved or deleted", path, err, accessHint(errno))
	}
	if err != nil {
		aside, mvErr := moveAside(path)
		if mvErr != nil {
			return nil, "", fmt.Errorf("checkpoint %s unreadable (%v) and could not be moved aside: %w", path, err, mvErr)
		}
		if db, err = openBolt(path); err != nil {
			return nil, aside, fmt.Errorf("open checkpoint %s: %w", path, err)
		}
		return &Store{path: path, db: db}, aside, nil
	}
	return &Store{path: path, db: db}, "", nil
}

// accessHint says what to check for an operating-system error on the
// checkpoint file.
func accessHint(errno syscall.Errno) string {
	switch errno {
	case syscall.EACCES, syscall.EPERM:
		return "the process may not open it for writing: was it created by another user, for example under sudo? fix its owner or mode"
	case syscall.EROFS:
		return "the data dir is on a read-only file system"
	case syscall.ENOSPC, syscall.EDQUOT:
		return "the disk is full"
	}
	return "the operating system refused it"
}

// guard turns the panics bbolt raises on damaged files, and the memory
// faults of reading a truncated memory-mapped file (SIGBUS, which would
// otherwise kill the process), into an error.
func guard(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("damaged file: %v", r)
	}
}

func openBolt(path string) (db *bolt.DB, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if db != nil {
				db.Close()
			}
			db, err = nil, fmt.Errorf("damaged file: %v", r)
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, ErrLocked
	}
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketFormations, bucketCells} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func moveAside(path string) (string, error) {
	aside := fmt.Sprintf("%s.bad-%s", path, time.Now().UTC().Format("20060102T150405.000000000"))
	if err := os.Rename(path, aside); err != nil {
		return "", err
	}
	return aside, nil
}

// Path is the checkpoint file's path.
func (s *Store) Path() string { return s.path }

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

// Quarantine moves the current file aside and starts an empty one: used when
// the checkpoint's content turns out unusable.
func (s *Store) Quarantine() (aside string, err error) {
	if err := s.db.Close(); err != nil {
		return "", err
	}
	if aside, err = moveAside(s.path); err != nil {
		return "", err
	}
	s.db, err = openBolt(s.path)
	return aside, err
}

// Size is the file's size in bytes.
func (s *Store) Size() int64 {
	var n int64
	_ = s.db.View(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
	return n
}

// Info reads the checkpoint's header. found is false when nothing was ever
// committed.
func (s *Store) Info() (cp Checkpoint, found bool, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer guard(&err)
	err = s.db.View(func(tx *bolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		raw := m.Get(keySchema)
		if raw == nil {
			return nil
		}
		found = true
		if len(raw) != 8 {
			return fmt.Errorf("schema key has %d bytes", len(raw))
		}
		cp.Schema = binary.BigEndian.Uint64(raw)
		if cp.Schema != SchemaVersion {
			return nil
		}
		cp.Epoch = string(m.Get(keyEpoch))
		if err := json.Unmarshal(m.Get(keyPosition), &cp.Meta); err != nil {
			return fmt.Errorf("position: %w", err)
		}
		if c := m.Get(keyCursor); len(c) != 8 || binary.BigEndian.Uint64(c) != cp.Meta.Cursor {
			return errors.New("cursor key disagrees with position")
		}
		if at := m.Get(keyAt); at != nil {
			if cp.At, err = time.Parse(time.RFC3339Nano, string(at)); err != nil {
				return fmt.Errorf("at: %w", err)
			}
		}
		return nil
	})
	return cp, found, err
}

// Load restores the projection stored with cp (from Info).
func (s *Store) Load(cp Checkpoint) (p *projection.Projection, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer guard(&err)
	err = s.db.View(func(tx *bolt.Tx) error {
		p, err = projection.Restore(cp.Meta, each(tx, bucketFormations), each(tx, bucketCells))
		return err
	})
	return p, err
}

func each(tx *bolt.Tx, bucket []byte) func(func(string, []byte) error) error {
	return func(yield func(string, []byte) error) error {
		return tx.Bucket(bucket).ForEach(func(k, v []byte) error { return yield(string(k), v) })
	}
}

// Save commits a change set and the position it belongs to in one
// transaction. On error nothing of it is stored and the previous
// checkpoint stays intact.
func (s *Store) Save(epoch string, ch projection.Changes, at time.Time) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer guard(&err)
	return s.db.Update(func(tx *bolt.Tx) error {
		if ch.Reset {
			for _, b := range [][]byte{bucketFormations, bucketCells} {
				if err := tx.DeleteBucket(b); err != nil {
					return err
				}
				if _, err := tx.CreateBucket(b); err != nil {
					return err
				}
			}
		}
		if err := putAll(tx.Bucket(bucketFormations), ch.Formations); err != nil {
			return err
		}
		if err := putAll(tx.Bucket(bucketCells), ch.Cells); err != nil {
			return err
		}
		pos, err := json.Marshal(ch.Meta)
		if err != nil {
			return err
		}
		m := tx.Bucket(bucketMeta)
		for _, kv := range []struct{ k, v []byte }{
			{keySchema, be64(SchemaVersion)},
			{keyEpoch, []byte(epoch)},
			{keyCursor, be64(ch.Meta.Cursor)},
			{keyPosition, pos},
			{keyAt, []byte(at.UTC().Format(time.RFC3339Nano))},
		} {
			if err := m.Put(kv.k, kv.v); err != nil {
				return err
			}
		}
		return nil
	})
}

func putAll(b *bolt.Bucket, recs map[string][]byte) error {
	for id, rec := range recs {
		if err := b.Put([]byte(id), rec); err != nil {
			return err
		}
	}
	return nil
}

func be64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}
