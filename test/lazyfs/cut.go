//go:build linux

package lazyfs

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Mode is what Cut does with the unsynced data of a file.
type Mode int

const (
	// Whole discards every unsynced change of every file.
	Whole Mode = iota
	// Torn keeps, for each file on its own, the unsynced changes below a
	// page boundary drawn at random in the file's unsynced range, and
	// discards those at or past it.
	Torn
)

func (m Mode) String() string {
	switch m {
	case Whole:
		return "whole"
	case Torn:
		return "torn"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Report tells what a Cut threw away.
type Report struct {
	Mode Mode
	// Aborted tells that files were still open on the mount: the FUSE
	// connection was aborted under the processes holding them.
	Aborted bool
	// Files lists every file that survived the cut with unsynced data,
	// by path, in the order their torn boundaries were drawn.
	Files []FileCut
	// Removed lists the paths (relative to the backing directory, with
	// slashes) that existed just before the cut and do not after it.
	Removed []string
	// Restored lists the paths that did not exist just before the cut
	// (unlinked, renamed away or rmdir'ed without a directory fsync) and
	// do after it.
	Restored []string
	// Skipped lists durable entries that name a directory already placed
	// under another name (a directory renamed between two directories,
	// one synced, the other not); they are left out.
	Skipped []string
	// BytesDiscarded is the sum of Files[i].Discarded.
	BytesDiscarded int64
}

// FileCut is what a Cut did to one file.
type FileCut struct {
	Path       string // one of the file's paths after the cut
	SyncedSize int64  // size at its last fsync (or at mount)
	SizeBefore int64  // size just before the cut
	SizeAfter  int64  // size after the cut
	// KeptUpTo is the page boundary below which unsynced changes were
	// kept: for Whole, the start of the unsynced range (nothing kept).
	KeptUpTo int64
	// Discarded is how many bytes of the unsynced range, from KeptUpTo
	// to its end (within the larger of the two sizes), were put back.
	Discarded int64
}

func (r Report) String() string {
	var b strings.Builder
	how := "unmounted"
	if r.Aborted {
		how = "connection aborted under open files"
	}
	fmt.Fprintf(&b, "lazyfs cut (%s, %s): %d file(s) lost %d unsynced byte(s); %d path(s) removed, %d restored",
		r.Mode, how, len(r.Files), r.BytesDiscarded, len(r.Removed), len(r.Restored))
	for _, f := range r.Files {
		fmt.Fprintf(&b, "\n  %s: synced size %d, size %d -> %d, kept up to %d, discarded %d",
			f.Path, f.SyncedSize, f.SizeBefore, f.SizeAfter, f.KeptUpTo, f.Discarded)
	}
	for _, p := range r.Removed {
		fmt.Fprintf(&b, "\n  removed %s", p)
	}
	for _, p := range r.Restored {
		fmt.Fprintf(&b, "\n  restored %s", p)
	}
	for _, p := range r.Skipped {
		fmt.Fprintf(&b, "\n  skipped %s", p)
	}
	return b.String()
}

// Cut simulates a power cut. The caller should have stopped every process
// using the mount; if files are still open, the FUSE connection is aborted
// first, so that their every later access fails (ENOTCONN) and nothing they
// do reaches the backing directory. Cut then rewrites the backing directory
// to hold only what was durable (see the package documentation); rnd (used
// by Torn only, may be nil for Whole) draws the torn boundaries, files in
// path order, so a seed reproduces a cut. The mount cannot be used again:
// Mount the backing directory anew, or use it directly.
func (l *FS) Cut(mode Mode, rnd *rand.Rand) (Report, error) {
	if mode != Whole && mode != Torn {
		return Report{}, fmt.Errorf("lazyfs: unknown mode %d", int(mode))
	}
	if mode == Torn && rnd == nil {
		return Report{}, errors.New("lazyfs: a torn cut needs a *rand.Rand")
	}
	if err := l.stop(); err != nil {
		return Report{}, fmt.Errorf("lazyfs: cut: %w", err)
	}
	l.stateMu.Lock()
	if l.cutDone || l.closeDone {
		l.stateMu.Unlock()
		return Report{}, errors.New("lazyfs: cut after Cut or Close")
	}
	l.cutDone = true
	l.stateMu.Unlock()
	rep, err := l.rebuild(mode, rnd)
	if err != nil {
		return rep, fmt.Errorf("lazyfs: cut: %w", err)
	}
	return rep, nil
}

// rebuild replaces the backing directory's tree by its durable tree. It
// runs after stop: no operation can change the backing directory or the
// records any more.
func (l *FS) rebuild(mode Mode, rnd *rand.Rand) (Report, error) {
	rep := Report{Mode: mode, Aborted: l.aborted}
	byIno, live, err := l.index()
	if err != nil {
		return rep, err
	}
	stage := filepath.Join(l.backing, stageName)
	if err := os.RemoveAll(stage); err != nil {
		return rep, err
	}
	if err := os.Mkdir(stage, 0o700); err != nil {
		return rep, err
	}
	b := &builder{
		l:       l,
		byIno:   byIno,
		visited: map[uint64]bool{l.rootIno: true},
		durable: map[string]bool{},
		paths:   map[uint64][]string{},
	}
	if err := b.dir(l.rootIno, stage, ""); err != nil {
		return rep, err
	}
	for _, ino := range b.order {
		st := l.files[ino]
		if st == nil || !st.dirty || st.hi <= st.lo {
			continue
		}
		rel := b.paths[ino][0]
		fc, err := revertFile(filepath.Join(stage, filepath.FromSlash(rel)), st, mode, rnd)
		if err != nil {
			return rep, fmt.Errorf("%s: %w", rel, err)
		}
		fc.Path = rel
		rep.Files = append(rep.Files, fc)
		rep.BytesDiscarded += fc.Discarded
	}
	// Swap the durable tree in.
	ents, err := os.ReadDir(l.backing)
	if err != nil {
		return rep, err
	}
	for _, e := range ents {
		if e.Name() == stageName {
			continue
		}
		if err := os.RemoveAll(filepath.Join(l.backing, e.Name())); err != nil {
			return rep, err
		}
	}
	if ents, err = os.ReadDir(stage); err != nil {
		return rep, err
	}
	for _, e := range ents {
		if err := os.Rename(filepath.Join(stage, e.Name()), filepath.Join(l.backing, e.Name())); err != nil {
			return rep, err
		}
	}
	if err := os.Remove(stage); err != nil {
		return rep, err
	}
	for p := range live {
		if !b.durable[p] {
			rep.Removed = append(rep.Removed, p)
		}
	}
	for p := range b.durable {
		if !live[p] {
			rep.Restored = append(rep.Restored, p)
		}
	}
	slices.Sort(rep.Removed)
	slices.Sort(rep.Restored)
	rep.Skipped = b.skipped
	return rep, nil
}

// index finds a path for every inode in the backing directory (holding
// area included) and lists the paths the mount showed.
func (l *FS) index() (map[uint64]string, map[string]bool, error) {
	byIno := map[uint64]string{l.rootIno: l.backing}
	live := map[string]bool{}
	err := filepath.WalkDir(l.backing, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == l.backing {
			return nil
		}
		rel, err := filepath.Rel(l.backing, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == stageName {
			return filepath.SkipDir
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no inode number", p)
		}
		if _, seen := byIno[st.Ino]; !seen {
			byIno[st.Ino] = p
		}
		if rel != holdName && !strings.HasPrefix(rel, holdName+"/") {
			live[rel] = true
		}
		return nil
	})
	return byIno, live, err
}

// durableEntries returns the entries of directory ino as of its last
// fsync: recorded if they changed since, else its entries now.
func (l *FS) durableEntries(ino uint64, byIno map[uint64]string) (map[string]dentry, error) {
	if ents, ok := l.dirs[ino]; ok {
		return ents, nil
	}
	p, ok := byIno[ino]
	if !ok {
		return nil, fmt.Errorf("directory inode %d is not in the backing directory", ino)
	}
	return l.readEntries(p, ino == l.rootIno)
}

// builder lays out the durable tree: directories anew, everything else as
// hard links to the objects (so files keep their inode and data).
type builder struct {
	l       *FS
	byIno   map[uint64]string
	visited map[uint64]bool     // directories placed
	durable map[string]bool     // paths placed
	paths   map[uint64][]string // regular files placed: their paths
	order   []uint64            // regular files in the order first placed
	skipped []string
}

func (b *builder) dir(ino uint64, dst, rel string) error {
	ents, err := b.l.durableEntries(ino, b.byIno)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(ents))
	for name := range ents {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		e := ents[name]
		r := path.Join(rel, name)
		src, ok := b.byIno[e.ino]
		if !ok {
			return fmt.Errorf("%s (inode %d) is durable but no longer in the backing directory", r, e.ino)
		}
		var st unix.Stat_t
		if err := unix.Lstat(src, &st); err != nil {
			return err
		}
		d := filepath.Join(dst, name)
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			if b.visited[e.ino] {
				b.skipped = append(b.skipped, r)
				continue
			}
			b.visited[e.ino] = true
			if err := os.Mkdir(d, 0o700); err != nil {
				return err
			}
			b.durable[r] = true
			if err := b.dir(e.ino, d, r); err != nil {
				return err
			}
			if err := unix.Chmod(d, st.Mode&0o7777); err != nil {
				return err
			}
			continue
		}
		if err := os.Link(src, d); err != nil {
			return err
		}
		b.durable[r] = true
		if st.Mode&unix.S_IFMT == unix.S_IFREG {
			if _, ok := b.paths[e.ino]; !ok {
				b.order = append(b.order, e.ino)
			}
			b.paths[e.ino] = append(b.paths[e.ino], r)
		}
	}
	return nil
}

// revertFile undoes the unsynced changes of the file at p as mode says.
func revertFile(p string, st *fileState, mode Mode, rnd *rand.Rand) (FileCut, error) {
	fd, err := unix.Open(p, unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return FileCut{}, err
	}
	defer unix.Close(fd)
	keep := st.lo
	if mode == Torn {
		keep += rnd.Int64N(st.boundaries()) * PageSize
	}
	r, err := st.revert(fd, keep, mode == Whole)
	if err != nil {
		return FileCut{}, err
	}
	return FileCut{
		SyncedSize: r.syncedSize,
		SizeBefore: r.sizeBefore,
		SizeAfter:  r.sizeAfter,
		KeptUpTo:   r.keptUpTo,
		Discarded:  r.discarded,
	}, nil
}
