package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"cellos-allinone/projection"
)

// SchemaVersion is the layout this binary writes. An older one is
// discarded and rebuilt; a newer one is moved aside.
const SchemaVersion = 6

var (
	keySchema   = []byte("schema")
	keyEpoch    = []byte("epoch")
	keyCursor   = []byte("cursor")
	keyPosition = []byte("position")
	// The untenanted-form counts per tenant (projection.Counters) are
	// kept beside the position, not in it: every read decodes the
	// position, and only the status asks for them.
	keyUntenanted = []byte("untenanted")
	keyAt         = []byte("at")
	// sealedMetaKeys are the meta entries but the schema (this binary's,
	// not sealed): putMeta writes each, readInfo reads them, and the
	// scrub takes any other meta key for damage.
	sealedMetaKeys = [][]byte{keyEpoch, keyCursor, keyPosition, keyUntenanted, keyAt}
)

// ErrLocked means another process holds the checkpoint file.
var ErrLocked = errors.New("checkpoint file is locked by another process (is another cellos-allinone using this data dir?)")

// Store is an open checkpoint file.
type Store struct {
	path string
	db   *bolt.DB
	keys atomic.Pointer[keyTable] // of the open file
	// gen counts the states the store has opened (use): a scrub that
	// sees it move checked part of a state no longer served (scrub.go).
	// A compaction's swap (SwapIn) brings the same commit in another
	// file, which a scrub goes on with.
	gen atomic.Uint64
	// lastTx is the newest commit of db this Store wrote or read (txfloor.go).
	lastTx atomic.Uint64
	// wedged: a write transaction of db could not be rolled back (wedge.go).
	wedged atomic.Bool
	// metas reads db's meta pages before a transaction begins (metapage.go).
	metas atomic.Pointer[metaPages]
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
	if err == nil {
		s = &Store{path: path}
		if err = s.use(db); err == nil {
			return s, "", nil
		}
		// The key table does not read: the file is damaged.
	}
	aside, mvErr := moveAside(path)
	if mvErr != nil {
		return nil, "", fmt.Errorf("checkpoint %s unreadable (%v) and could not be moved aside: %w", path, err, mvErr)
	}
	if db, err = openBolt(path); err != nil {
		return nil, aside, fmt.Errorf("open checkpoint %s: %w", path, err)
	}
	s = &Store{path: path}
	if err := s.use(db); err != nil {
		return nil, aside, fmt.Errorf("open checkpoint %s: %w", path, err)
	}
	return s, aside, nil
}

// use makes db the store's file, with its key table. On an error db is
// closed.
func (s *Store) use(db *bolt.DB) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer guard(&err)
	var keys *keyTable
	pageSize := 0
	err = db.View(func(tx *bolt.Tx) error {
		// bbolt has read the freelist page: one it cannot trust would
		// have later commits overwrite live pages (freelist.go).
		if err := checkFreelist(tx, s.path); err != nil {
			return err
		}
		pageSize = tx.DB().Info().PageSize
		keys, err = loadKeys(tx)
		return err
	})
	if err != nil {
		db.Close()
		return fmt.Errorf("key table: %w", err)
	}
	metas, err := openMetaPages(s.path, pageSize)
	if err != nil {
		db.Close()
		return err
	}
	s.metas.Swap(metas).close()
	s.db = db
	s.keys.Store(keys)
	s.gen.Add(1)
	s.lastTx.Store(0) // another file: its own transaction ids
	s.wedged.Store(false)
	return nil
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
		*err = fmt.Errorf("%w: %v", ErrDamaged, r)
	}
}

func openBolt(path string) (db *bolt.DB, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if db != nil {
				db.Close()
			}
			db, err = nil, fmt.Errorf("%w: %v", ErrDamaged, r)
		}
	}()
	db, err = bolt.Open(path, 0o600, boltOptions())
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, ErrLocked
	}
	if err != nil {
		return nil, err
	}
	db.AllocSize = allocSize
	// A file cut short (a torn copy, a full disk) can have intact meta
	// pages pointing past its end; reading there would fault. Its
	// high-water mark says how long it must be: a cheap check, whatever the
	// file's size.
	if fi, err := os.Stat(path); err == nil {
		var want int64
		_ = db.View(func(tx *bolt.Tx) error { want = tx.Size(); return nil })
		if fi.Size() < want {
			db.Close()
			return nil, fmt.Errorf("truncated: %d bytes of %d", fi.Size(), want)
		}
	}
	// A file that has every bucket is opened without a write: opening is
	// a moment (a compaction's swap waits for it), and a full disk is
	// met by the first commit, which waits for room (projector).
	missing := false
	_ = db.View(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			missing = missing || tx.Bucket(b) == nil
		}
		return nil
	})
	if missing {
		err = db.Update(func(tx *bolt.Tx) error {
			for _, b := range allBuckets {
				if _, err := tx.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	// bbolt syncs the file, never its directory: a file just created (a
	// first start, Renew, Quarantine) or the rename that moved the old one
	// aside would not survive a power cut, and every later commit would go
	// to a file that then vanishes (docs/durability.md).
	if err := syncDir(filepath.Dir(path)); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// boltOptions are the options every state file is opened with.
func boltOptions() *bolt.Options {
	return &bolt.Options{
		Timeout:      time.Second,
		FreelistType: bolt.FreelistMapType,
		// Mapped once large enough that a growing file rarely makes
		// readers wait for a remap; address space only, not memory.
		InitialMmapSize: initialMmapSize,
	}
}

// allocSize: the file grows by this much at a time (bbolt's default is
// 16 MiB): less slack at its end, for a truncate and fsync every 4 MiB of
// growth.
const allocSize = 4 << 20

// asideName is where a file that cannot serve is kept for a post-mortem.
func asideName(path string) string {
	return fmt.Sprintf("%s.bad-%s", path, time.Now().UTC().Format("20060102T150405.000000000"))
}

func moveAside(path string) (string, error) {
	aside := asideName(path)
	if err := os.Rename(path, aside); err != nil {
		return "", err
	}
	return aside, nil
}

// Path is the checkpoint file's path.
func (s *Store) Path() string { return s.path }

// Close closes the file. A copy SwapIn took in has no file of its own
// any more: closing it does nothing.
func (s *Store) Close() error {
	if s.db == nil {
		return nil
	}
	return s.closeDB()
}

// Quarantine moves the current file aside and starts an empty one: used when
// the checkpoint's content turns out unusable.
func (s *Store) Quarantine() (aside string, err error) {
	if err := s.closeDB(); err != nil {
		return "", err
	}
	if aside, err = moveAside(s.path); err != nil {
		return "", err
	}
	db, err := openBolt(s.path)
	if err != nil {
		return aside, err
	}
	return aside, s.use(db)
}

// Renew replaces the file with an empty one whose state is the start of a
// fold of epoch: a rebuild from scratch writes into a file without the old
// state's pages. keepAside moves the old file aside instead of removing
// it.
func (s *Store) Renew(epoch string, keepAside bool) error {
	if err := s.closeDB(); err != nil {
		return err
	}
	if keepAside {
		if _, err := moveAside(s.path); err != nil {
			return err
		}
	} else if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", s.path, err)
	}
	db, err := openBolt(s.path)
	if err != nil {
		return err
	}
	if err := s.use(db); err != nil {
		return err
	}
	return s.Reset(epoch)
}

// Replace makes the file of src the file of dst: src is closed and its file
// renamed over dst's, which dst then opens. Used when a state built beside
// the served one takes its place; the caller keeps readers away from dst
// meanwhile. keepAside keeps dst's old file as a .bad-<time> file
// (returned): a hard link, or a copy where links are not possible.
//
// An error that is ErrNotReplaced leaves dst untouched and src open again:
// the caller can go on with both and try later.
func Replace(dst, src *Store, keepAside bool) (aside string, err error) {
	if err := src.closeDB(); err != nil {
		return "", err
	}
	if keepAside {
		aside = asideName(dst.path)
		if err := os.Link(dst.path, aside); err != nil {
			if err := copyFile(dst.path, aside); err != nil {
				aside = ""
			}
		}
	}
	if err := os.Rename(src.path, dst.path); err != nil {
		err = fmt.Errorf("rename %s to %s: %w", src.path, dst.path, err)
		if aside != "" {
			_ = os.Remove(aside)
		}
		db, oerr := openBolt(src.path)
		if oerr != nil {
			return "", fmt.Errorf("%w; reopening %s: %v", err, src.path, oerr)
		}
		if uerr := src.use(db); uerr != nil {
			return "", fmt.Errorf("%w; reopening %s: %v", err, src.path, uerr)
		}
		return "", fmt.Errorf("%w: %w", ErrNotReplaced, err)
	}
	if err := syncDir(filepath.Dir(dst.path)); err != nil {
		return aside, err
	}
	if err := dst.closeDB(); err != nil {
		return aside, err
	}
	db, err := openBolt(dst.path)
	if err != nil {
		return aside, err
	}
	return aside, dst.use(db)
}

// ErrNotReplaced is a Replace that changed nothing.
var ErrNotReplaced = errors.New("the state file was not replaced")

// copyFile copies the file at from to a new file to, synced.
func copyFile(from, to string) (err error) {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(to)
		}
	}()
	if _, err = io.Copy(out, in); err != nil {
		return err
	}
	return out.Sync()
}

// syncDir makes a rename or a new file in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// Size is the file's size in bytes.
func (s *Store) Size() int64 {
	var n int64
	if s.metaOK() != nil {
		return 0
	}
	_ = s.db.View(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
	return n
}

// Info reads the position the file holds. found is false when nothing
// was ever committed.
func (s *Store) Info() (cp Checkpoint, found bool, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer guard(&err)
	if err := s.metaOK(); err != nil {
		return cp, false, err
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		if cp, found, err = readInfo(tx); err != nil || cp.Schema != SchemaVersion {
			return err
		}
		cp.Meta.Counters.UntenantedOfTenant, err = readUntenanted(tx)
		return err
	})
	return cp, found, err
}

// readUntenanted reads the untenanted-form counts the meta bucket keeps
// beside the position.
func readUntenanted(tx *bolt.Tx) (map[string]uint64, error) {
	var m map[string]uint64
	if raw := tx.Bucket(bucketMeta).Get(keyUntenanted); raw != nil {
		raw, ok := unseal(keyUntenanted, raw)
		if !ok {
			return nil, errSeal("meta", keyUntenanted)
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("untenanted counts: %w", err)
		}
	}
	return m, nil
}

// readInfo reads the meta bucket but the untenanted counts
// (readUntenanted). A schema other than this binary's comes back with only
// Schema set.
func readInfo(tx *bolt.Tx) (cp Checkpoint, found bool, err error) {
	m := tx.Bucket(bucketMeta)
	raw := m.Get(keySchema)
	if raw == nil {
		return cp, false, nil
	}
	if len(raw) != 8 {
		return cp, true, fmt.Errorf("schema key has %d bytes", len(raw))
	}
	cp.Schema = binary.BigEndian.Uint64(raw)
	if cp.Schema != SchemaVersion {
		return cp, true, nil
	}
	// Every entry but the schema is sealed (seal.go).
	get := func(k []byte) ([]byte, error) {
		raw := m.Get(k)
		if raw == nil {
			return nil, nil
		}
		v, ok := unseal(k, raw)
		if !ok {
			return nil, errSeal("meta", k)
		}
		return v, nil
	}
	epoch, err := get(keyEpoch)
	if err != nil {
		return cp, true, err
	}
	cp.Epoch = string(epoch)
	pos, err := get(keyPosition)
	if err != nil {
		return cp, true, err
	}
	if err := json.Unmarshal(pos, &cp.Meta); err != nil {
		return cp, true, fmt.Errorf("position: %w", err)
	}
	if c, err := get(keyCursor); err != nil {
		return cp, true, err
	} else if len(c) != 8 || binary.BigEndian.Uint64(c) != cp.Meta.Cursor {
		return cp, true, errors.New("cursor key disagrees with position")
	}
	at, err := get(keyAt)
	if err != nil {
		return cp, true, err
	}
	if at != nil {
		if cp.At, err = time.Parse(time.RFC3339Nano, string(at)); err != nil {
			return cp, true, fmt.Errorf("at: %w", err)
		}
	}
	return cp, true, nil
}

// be64 encodes the cursor as the meta bucket holds it.
func be64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

// initialMmapSize is 1 GiB where the address space allows it.
var initialMmapSize = func() int {
	if strconv.IntSize == 32 {
		return 64 << 20
	}
	return 1 << 30
}()

// Reset empties the state and records epoch with a zero position: a
// rebuild starts from it. Done in one transaction.
func (s *Store) Reset(epoch string) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer guard(&err)
	err = s.update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if err := tx.DeleteBucket(b); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
				return err
			}
			if _, err := tx.CreateBucket(b); err != nil {
				return err
			}
		}
		return putMeta(tx, epoch, projection.Meta{}, time.Now())
	})
	if err == nil {
		fresh := &keyTable{ids: map[string]uint64{}}
		fresh.names.Store(new([]string))
		s.keys.Store(fresh)
	}
	return err
}

// putMeta writes the position beside the state it describes.
func putMeta(tx *bolt.Tx, epoch string, m projection.Meta, at time.Time) error {
	untenanted, err := json.Marshal(m.Counters.UntenantedOfTenant)
	if err != nil {
		return err
	}
	m.Counters.UntenantedOfTenant = nil // kept apart
	pos, err := json.Marshal(m)
	if err != nil {
		return err
	}
	vals := map[string][]byte{
		string(keyEpoch):      []byte(epoch),
		string(keyCursor):     be64(m.Cursor),
		string(keyPosition):   pos,
		string(keyUntenanted): untenanted,
		string(keyAt):         []byte(at.UTC().Format(time.RFC3339Nano)),
	}
	mb := tx.Bucket(bucketMeta)
	if err := mb.Put(keySchema, be64(SchemaVersion)); err != nil {
		return err
	}
	for _, k := range sealedMetaKeys {
		v, ok := vals[string(k)]
		if !ok {
			return fmt.Errorf("store: no value for meta key %q", k)
		}
		if err := mb.Put(k, sealed(k, v)); err != nil {
			return err
		}
	}
	if len(vals) != len(sealedMetaKeys) {
		return fmt.Errorf("store: %d meta values for %d keys", len(vals), len(sealedMetaKeys))
	}
	return nil
}
