package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// bbolt never gives pages back to the file system: a page a commit frees
// (an entity deleted, a page copied on write) goes to its free list and is
// reused by later commits, but the file keeps its size. Compact writes the
// state densely into a new file beside the served one, which SwapIn then
// renames over it; the served file is only read until that rename.

// FileStats is how the state file's pages are used.
type FileStats struct {
	// FileBytes is the file's size. bbolt grows it ahead of its use, so
	// it can exceed LiveBytes + FreeBytes by a few MiB.
	FileBytes int64 `json:"fileBytes"`
	// LiveBytes is what the state's pages take.
	LiveBytes int64 `json:"liveBytes"`
	// FreeBytes is what pages freed by earlier commits take: free and
	// pending pages × page size. Commits reuse them; only a compaction
	// gives them back.
	FreeBytes int64 `json:"freeBytes"`
	// PageSize is the size of one page; LivePages and FreePages count
	// the pages of LiveBytes and FreeBytes.
	PageSize  int64 `json:"pageSize"`
	LivePages int64 `json:"livePages"`
	FreePages int64 `json:"freePages"`
}

// FileStats reads how the file's pages are used (a read transaction and
// the free list's counts: cheap, whatever the file's size).
func (s *Store) FileStats() (FileStats, error) {
	var fs FileStats
	var used int64
	if err := s.metaOK(); err != nil {
		return fs, err
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		used = tx.Size()
		// bbolt's Info reads the mapping unlocked: inside a read
		// transaction, which Close waits for, it cannot race a Close.
		fs.PageSize = int64(tx.DB().Info().PageSize)
		return nil
	})
	if err != nil {
		return fs, err
	}
	st := s.db.Stats()
	fs.FreePages = int64(st.FreePageN + st.PendingPageN)
	fs.LivePages = max(0, used/fs.PageSize-fs.FreePages)
	fs.FreeBytes = fs.FreePages * fs.PageSize
	fs.LiveBytes = fs.LivePages * fs.PageSize
	fs.FileBytes = used
	if fi, err := os.Stat(s.path); err == nil {
		fs.FileBytes = fi.Size()
	}
	return fs, nil
}

// CompactSuffix names the file Compact writes beside the state file. A
// file of that name left by a crash is incomplete or unused: the next
// Compact (or anyone) may remove it.
const CompactSuffix = ".compact"

// compactTxBytes bounds what one transaction of the copy holds in memory;
// the copy commits that often (its file is not served until the swap).
const compactTxBytes = 32 << 20

// ErrNoRoom is a compaction not tried: the file system has not room for
// the copy.
var ErrNoRoom = errors.New("not enough free space for a compacted copy of the state file")

// Compact copies the state of the last commit, densely, into a new file
// beside the served one and returns it open, for SwapIn to swap in. The
// served file is only read: reads go on meanwhile, and a crash at any
// point leaves it as it was. The caller must not commit meanwhile; a copy
// whose position differs from the served file's at its end is discarded
// with an error. The copy is refused (ErrNoRoom) unless the file system
// has room for the live state and a margin.
func (s *Store) Compact() (c *Store, err error) {
	path := s.path + CompactSuffix
	var dst *bolt.DB
	defer func() { // last: after guard has made a panic the error
		if err == nil {
			return
		}
		if c != nil {
			c.db.Close()
		} else if dst != nil {
			dst.Close()
		}
		os.Remove(path)
		c = nil
	}()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer guard(&err)
	before, err := s.FileStats()
	if err != nil {
		return nil, err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := checkRoom(filepath.Dir(path), before.LiveBytes); err != nil {
		return nil, err
	}
	want, _, err := s.Info()
	if err != nil {
		return nil, err
	}
	if dst, err = bolt.Open(path, 0o600, boltOptions()); err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	dst.AllocSize = allocSize
	if err := s.metaOK(); err != nil {
		return nil, err
	}
	if err := bolt.Compact(dst, s.db, compactTxBytes); err != nil {
		return nil, fmt.Errorf("compact into %s: %w", path, err)
	}
	if compactHook != nil {
		compactHook()
	}
	if err := dst.Close(); err != nil {
		return nil, err
	}
	db, err := openBolt(path) // and fsync the directory that holds it
	if err != nil {
		return nil, err
	}
	c = &Store{path: path}
	if err := c.use(db); err != nil {
		return nil, err
	}
	got, _, err := c.Info()
	switch {
	case err != nil:
		return c, fmt.Errorf("the compacted copy: %w", err)
	case got.Epoch != want.Epoch || got.Meta.Cursor != want.Meta.Cursor || !got.At.Equal(want.At):
		return c, fmt.Errorf("the compacted copy holds cursor %d of %s, the state file cursor %d of %s: committed meanwhile",
			got.Meta.Cursor, got.At, want.Meta.Cursor, want.At)
	}
	if now, _, err := s.Info(); err != nil || now.Meta.Cursor != want.Meta.Cursor || !now.At.Equal(want.At) {
		return c, fmt.Errorf("the state file was committed during its compaction (%v)", err)
	}
	return c, nil
}

// compactHook, set by tests, runs when the copy is written, before it is
// closed and its directory synced.
var compactHook func()

// SwapIn makes c, the copy Compact returned, s's file: c's file is renamed
// over s's, and s goes on with c's open database, the old one is closed.
// serving is the lock every reader of s holds for one read: only the
// rename and the change of database happen under it, so readers wait for
// a rename, not for a file to be opened or a directory synced. The copy
// holds the commit s's file holds, so an answer is of that commit before
// the swap as after it. A crash at any point leaves one complete state
// file at s's path: the copy is complete, fsynced, and its directory
// entry durable before the rename (Compact), the rename replaces the name
// in one step, and the directory is synced after it; until that sync a
// power cut may bring back the old file, which holds the same commit.
//
// An error that is ErrNotReplaced leaves s as it was and c open (the
// caller closes and removes it); any other comes after the rename, and the
// swap stands. c is used up either way but for ErrNotReplaced.
func (s *Store) SwapIn(c *Store, serving sync.Locker) error {
	if c.path != s.path+CompactSuffix {
		return fmt.Errorf("%w: %s is not a compacted copy of %s", ErrNotReplaced, c.path, s.path)
	}
	serving.Lock()
	if err := os.Rename(c.path, s.path); err != nil {
		serving.Unlock()
		return fmt.Errorf("%w: rename %s to %s: %w", ErrNotReplaced, c.path, s.path, err)
	}
	old, oldMetas := s.db, s.metas.Swap(c.metas.Swap(nil))
	s.db = c.db
	s.keys.Store(c.keys.Load())
	s.lastTx.Store(0) // the copy numbers its commits afresh
	serving.Unlock()
	c.db = nil
	if swapHook != nil {
		swapHook("renamed")
	}
	err := syncDir(filepath.Dir(s.path))
	if swapHook != nil {
		swapHook("synced")
	}
	// No reader holds the old database any more (they all hold serving
	// for one read); closing it unmaps it and lets its file go.
	if cerr := old.Close(); err == nil {
		err = cerr
	}
	oldMetas.close()
	return err
}

// swapHook, set by tests, runs at the named points of SwapIn.
var swapHook func(point string)

// checkRoom refuses a copy of live bytes that the file system in dir has
// not room for, with a margin: a compaction must never be what fills the
// disk the commits need.
func checkRoom(dir string, live int64) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("free space of %s: %w", dir, err)
	}
	avail := int64(st.Bavail) * int64(st.Bsize)
	need := live + live/4 + 2*allocSize
	if avail < need {
		return fmt.Errorf("%w: %d bytes free in %s, the copy needs about %d", ErrNoRoom, avail, dir, need)
	}
	return nil
}

// RemoveLeftovers removes what a crash may have left beside the state file
// at path: an unfinished compacted copy (never served before its swap).
func RemoveLeftovers(path string) error {
	err := os.Remove(path + CompactSuffix)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
