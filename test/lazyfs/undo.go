//go:build linux

package lazyfs

import (
	"fmt"
	"io"
	"math"
	"sync"

	"golang.org/x/sys/unix"
)

// PageSize is the granularity of undo records and of torn writes.
const PageSize = 4096

// fileState is the undo record of one backing inode: what it looked like at
// its last fsync (or when the mount started), as far as it has changed since.
//
// Invariant while dirty: for every page index p with p*PageSize < origSize
// that is not in pages, the bytes [p*PageSize, min((p+1)*PageSize, origSize))
// of the backing file still hold their synced content. Every change saves the
// pages it is about to alter first, and a truncation below origSize saves
// every page it cuts into.
type fileState struct {
	mu       sync.Mutex
	dirty    bool
	origSize int64            // size at the last sync
	pages    map[int64][]byte // page index -> synced bytes of that page, clipped to origSize
	lo, hi   int64            // page-aligned byte range covering every unsynced change
}

// begin starts an undo record on the first change after a sync.
func (s *fileState) begin(fd int) error {
	if s.dirty {
		return nil
	}
	size, err := fileSize(fd)
	if err != nil {
		return err
	}
	s.dirty = true
	s.origSize = size
	s.pages = make(map[int64][]byte)
	s.lo, s.hi = math.MaxInt64, 0
	return nil
}

// synced forgets the undo record: what the file holds now is durable.
func (s *fileState) synced() {
	s.dirty = false
	s.pages = nil
	s.origSize = 0
	s.lo, s.hi = 0, 0
}

// mark widens the unsynced range to cover [start, end).
func (s *fileState) mark(start, end int64) {
	if end <= start {
		return
	}
	s.lo = min(s.lo, start/PageSize*PageSize)
	s.hi = max(s.hi, (end+PageSize-1)/PageSize*PageSize)
}

// save keeps the synced bytes of every page overlapping [start, end) that
// has not been saved yet. Pages at or past origSize have no synced bytes.
func (s *fileState) save(fd int, start, end int64) error {
	end = min(end, s.origSize)
	for p := start / PageSize; p*PageSize < end; p++ {
		if _, ok := s.pages[p]; ok {
			continue
		}
		off := p * PageSize
		buf := make([]byte, min(PageSize, s.origSize-off))
		if err := preadFull(fd, buf, off); err != nil {
			return fmt.Errorf("lazyfs: save page %d: %w", p, err)
		}
		s.pages[p] = buf
	}
	return nil
}

// beforeWrite records what a write of n bytes at off is about to change.
func (s *fileState) beforeWrite(fd int, off, n int64) error {
	if n <= 0 {
		return nil
	}
	if err := s.begin(fd); err != nil {
		return err
	}
	size, err := fileSize(fd)
	if err != nil {
		return err
	}
	if err := s.save(fd, off, off+n); err != nil {
		return err
	}
	start := off
	if off+n > size {
		// The file grows: the hole or the bytes between the old end
		// and off are new too.
		start = min(start, size)
	}
	s.mark(start, off+n)
	return nil
}

// beforeTruncate records what setting the size to size is about to change.
func (s *fileState) beforeTruncate(fd int, size int64) error {
	cur, err := fileSize(fd)
	if err != nil {
		return err
	}
	if cur == size {
		return nil
	}
	if err := s.begin(fd); err != nil {
		return err
	}
	if size < cur {
		if err := s.save(fd, size, cur); err != nil {
			return err
		}
	}
	s.mark(min(cur, size), max(cur, size))
	return nil
}

// beforeZero records what zeroing (punching) [off, off+n) is about to change.
func (s *fileState) beforeZero(fd int, off, n int64, keepSize bool) error {
	if n <= 0 {
		return nil
	}
	if err := s.begin(fd); err != nil {
		return err
	}
	size, err := fileSize(fd)
	if err != nil {
		return err
	}
	if err := s.save(fd, off, off+n); err != nil {
		return err
	}
	end := off + n
	if keepSize {
		end = min(end, size)
	}
	start := off
	if end > size {
		start = min(start, size)
	}
	s.mark(start, end)
	return nil
}

// cutResult describes what revert did to one file.
type cutResult struct {
	syncedSize, sizeBefore, sizeAfter int64
	keptUpTo                          int64
	discarded                         int64
}

// boundaries is how many page boundaries lie in the unsynced range, ends
// included: a torn cut keeps the changes below lo+k*PageSize for a k in
// [0, boundaries).
func (s *fileState) boundaries() int64 {
	if !s.dirty || s.hi <= s.lo {
		return 1
	}
	return (s.hi-s.lo)/PageSize + 1
}

// revert puts the file back to its synced state for every byte at or past
// the page boundary keep (which must lie in [s.lo, s.hi]) and leaves the
// bytes below keep as they are now. keep == s.lo reverts every unsynced
// change. The size afterwards is the current size if keep lies past it (a
// truncation or an extension that ended below keep landed), and otherwise
// max(synced size, keep).
func (s *fileState) revert(fd int, keep int64, whole bool) (cutResult, error) {
	cur, err := fileSize(fd)
	if err != nil {
		return cutResult{}, err
	}
	r := cutResult{syncedSize: s.origSize, sizeBefore: cur}
	if !s.dirty || s.hi <= s.lo {
		r.sizeAfter = cur
		r.keptUpTo = cur
		return r, nil
	}
	if whole {
		keep = s.lo
	}
	newSize := max(s.origSize, keep)
	if keep > cur {
		newSize = cur
	}
	if whole {
		newSize = s.origSize
	}
	for p, buf := range s.pages {
		if p*PageSize < keep {
			continue
		}
		if _, err := unix.Pwrite(fd, buf, p*PageSize); err != nil {
			return r, fmt.Errorf("lazyfs: restore page %d: %w", p, err)
		}
	}
	if err := unix.Ftruncate(fd, newSize); err != nil {
		return r, fmt.Errorf("lazyfs: restore size %d: %w", newSize, err)
	}
	r.sizeAfter = newSize
	r.keptUpTo = keep
	end := min(s.hi, max(s.origSize, cur))
	r.discarded = max(0, end-max(keep, s.lo))
	return r, nil
}

func fileSize(fd int) (int64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, err
	}
	return st.Size, nil
}

func preadFull(fd int, buf []byte, off int64) error {
	for len(buf) > 0 {
		n, err := unix.Pread(fd, buf, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrUnexpectedEOF
		}
		buf = buf[n:]
		off += int64(n)
	}
	return nil
}
