//go:build linux

package lazyfs

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// Names in the backing root that the mount hides and refuses to create.
const (
	holdName  = ".lazyfs-hold" // unlinked and replaced objects, by inode number
	stageName = ".lazyfs-cut"  // the tree Cut builds before it swaps it in
)

// lazyNode is a loopback node whose namespace changes are recorded (and
// whose deletions are deferred) so that Cut can undo them.
type lazyNode struct {
	*fusefs.LoopbackNode
	lfs *FS
}

var (
	_ fusefs.NodeWrapChilder    = (*lazyNode)(nil)
	_ fusefs.NodeLookuper       = (*lazyNode)(nil)
	_ fusefs.NodeOpendirHandler = (*lazyNode)(nil)
	_ fusefs.NodeOpener         = (*lazyNode)(nil)
	_ fusefs.NodeCreater        = (*lazyNode)(nil)
	_ fusefs.NodeTmpfiler       = (*lazyNode)(nil)
	_ fusefs.NodeMkdirer        = (*lazyNode)(nil)
	_ fusefs.NodeMknoder        = (*lazyNode)(nil)
	_ fusefs.NodeSymlinker      = (*lazyNode)(nil)
	_ fusefs.NodeLinker         = (*lazyNode)(nil)
	_ fusefs.NodeUnlinker       = (*lazyNode)(nil)
	_ fusefs.NodeRmdirer        = (*lazyNode)(nil)
	_ fusefs.NodeRenamer        = (*lazyNode)(nil)
	_ fusefs.NodeSetattrer      = (*lazyNode)(nil)
	_ fusefs.NodeCopyFileRanger = (*lazyNode)(nil)
	_ fusefs.NodeSetxattrer     = (*lazyNode)(nil)
	_ fusefs.NodeRemovexattrer  = (*lazyNode)(nil)

	_ fusefs.FileReaddirenter = (*lazyDir)(nil)
	_ fusefs.FileSeekdirer    = (*lazyDir)(nil)
	_ fusefs.FileReleasedirer = (*lazyDir)(nil)
	_ fusefs.FileFsyncdirer   = (*lazyDir)(nil)

	_ fusefs.FileReader    = (*lazyFile)(nil)
	_ fusefs.FileWriter    = (*lazyFile)(nil)
	_ fusefs.FileWritever  = (*lazyFile)(nil)
	_ fusefs.FileFsyncer   = (*lazyFile)(nil)
	_ fusefs.FileAllocater = (*lazyFile)(nil)
	_ fusefs.FileGetattrer = (*lazyFile)(nil)
	_ fusefs.FileStatxer   = (*lazyFile)(nil)
	_ fusefs.FileLseeker   = (*lazyFile)(nil)
	_ fusefs.FileFlusher   = (*lazyFile)(nil)
	_ fusefs.FileReleaser  = (*lazyFile)(nil)
)

// WrapChild makes every node of the tree a lazyNode.
func (n *lazyNode) WrapChild(ctx context.Context, ops fusefs.InodeEmbedder) fusefs.InodeEmbedder {
	return &lazyNode{LoopbackNode: ops.(*fusefs.LoopbackNode), lfs: n.lfs}
}

// backingPath is where the node lives in the backing directory.
func (n *lazyNode) backingPath() string {
	return filepath.Join(n.RootData.Path, n.Path(n.Root()))
}

// reserved reports whether name in this directory is one of lazyfs's own.
func (n *lazyNode) reserved(name string) bool {
	return n.IsRoot() && (name == holdName || name == stageName)
}

// Lookup hides lazyfs's own entries.
func (n *lazyNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	if n.reserved(name) {
		return nil, syscall.ENOENT
	}
	return n.LoopbackNode.Lookup(ctx, name, out)
}

// OpendirHandle returns a handle that hides lazyfs's own entries and whose
// fsync makes the directory's entries durable.
func (n *lazyNode) OpendirHandle(ctx context.Context, flags uint32) (fusefs.FileHandle, uint32, syscall.Errno) {
	p := n.backingPath()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return nil, 0, fusefs.ToErrno(err)
	}
	ds, errno := fusefs.NewLoopbackDirStream(p)
	if errno != 0 {
		return nil, 0, errno
	}
	return &lazyDir{lfs: n.lfs, ino: st.Ino, root: n.IsRoot(), ds: ds}, 0, 0
}

// backingFlags turns the flags of an open into those lazyfs opens the
// backing file with: always readable when writable (undo records need to
// read what a write overwrites), without O_TRUNC (lazyfs truncates itself,
// after saving what the truncation removes) and without O_SYNC, O_DSYNC and
// O_DIRECT (durability of the backing file plays no part; a synchronous
// handle is remembered instead).
func backingFlags(flags uint32) (backing uint32, trunc, sync bool) {
	trunc = flags&syscall.O_TRUNC != 0
	sync = flags&(syscall.O_SYNC|syscall.O_DSYNC) != 0
	backing = flags &^ (syscall.O_TRUNC | syscall.O_SYNC | syscall.O_DSYNC | syscall.O_DIRECT)
	if flags&syscall.O_ACCMODE == syscall.O_WRONLY || (trunc && flags&syscall.O_ACCMODE == syscall.O_RDONLY) {
		backing = backing&^syscall.O_ACCMODE | syscall.O_RDWR
	}
	return backing, trunc, sync
}

// Open opens the backing file. The kernel truncates for an O_TRUNC open
// with a SETATTR before the OPEN (go-fuse does not ask for atomic O_TRUNC),
// which Setattr records; an O_TRUNC that does reach Open is recorded the
// same way.
func (n *lazyNode) Open(ctx context.Context, flags uint32) (fusefs.FileHandle, uint32, syscall.Errno) {
	bflags, trunc, sync := backingFlags(flags)
	if trunc {
		if !n.lfs.enter() {
			return nil, 0, syscall.EIO
		}
		defer n.lfs.leave()
	}
	fh, fuseFlags, errno := n.LoopbackNode.Open(ctx, bflags)
	if errno != 0 {
		return nil, 0, errno
	}
	f, errno := n.lfs.newFile(fh, sync)
	if errno != 0 {
		return nil, 0, errno
	}
	if trunc {
		if errno := f.truncate(ctx, 0); errno != 0 {
			f.Release(ctx)
			return nil, 0, errno
		}
	}
	return f, fuseFlags, 0
}

// Create creates a file; the directory entry is undone by Cut unless the
// directory is fsynced.
func (n *lazyNode) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fusefs.Inode, fusefs.FileHandle, uint32, syscall.Errno) {
	if n.reserved(name) {
		return nil, nil, 0, syscall.EPERM
	}
	if !n.lfs.enter() {
		return nil, nil, 0, syscall.EIO
	}
	defer n.lfs.leave()
	n.lfs.nsMu.Lock()
	defer n.lfs.nsMu.Unlock()
	dir := n.backingPath()
	if errno := n.lfs.snapshotDir(dir); errno != 0 {
		return nil, nil, 0, errno
	}
	bflags, trunc, sync := backingFlags(flags)
	var st unix.Stat_t
	existed := unix.Lstat(filepath.Join(dir, name), &st) == nil
	ch, fh, fuseFlags, errno := n.LoopbackNode.Create(ctx, name, bflags, mode, out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	f, errno := n.lfs.newFile(fh, sync)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	if trunc && existed {
		if errno := f.truncate(ctx, 0); errno != 0 {
			f.Release(ctx)
			return nil, nil, 0, errno
		}
		out.Attr.Size = 0
	}
	return ch, f, fuseFlags, 0
}

// Tmpfile is not supported: an O_TMPFILE file could not be linked into the
// tree through go-fuse anyway. Programs fall back to a named file.
func (n *lazyNode) Tmpfile(ctx context.Context, flags uint32, mode uint32, out *fuse.EntryOut) (*fusefs.Inode, fusefs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EOPNOTSUPP
}

// entryOp runs op, which changes an entry of this directory, after recording
// the directory's durable entries.
func (n *lazyNode) entryOp(name string, op func() syscall.Errno) syscall.Errno {
	if n.reserved(name) {
		return syscall.EPERM
	}
	if !n.lfs.enter() {
		return syscall.EIO
	}
	defer n.lfs.leave()
	n.lfs.nsMu.Lock()
	defer n.lfs.nsMu.Unlock()
	if errno := n.lfs.snapshotDir(n.backingPath()); errno != 0 {
		return errno
	}
	return op()
}

func (n *lazyNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (ch *fusefs.Inode, errno syscall.Errno) {
	errno = n.entryOp(name, func() syscall.Errno {
		ch, errno = n.LoopbackNode.Mkdir(ctx, name, mode, out)
		return errno
	})
	return ch, errno
}

func (n *lazyNode) Mknod(ctx context.Context, name string, mode, rdev uint32, out *fuse.EntryOut) (ch *fusefs.Inode, errno syscall.Errno) {
	errno = n.entryOp(name, func() syscall.Errno {
		ch, errno = n.LoopbackNode.Mknod(ctx, name, mode, rdev, out)
		return errno
	})
	return ch, errno
}

func (n *lazyNode) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (ch *fusefs.Inode, errno syscall.Errno) {
	errno = n.entryOp(name, func() syscall.Errno {
		ch, errno = n.LoopbackNode.Symlink(ctx, target, name, out)
		return errno
	})
	return ch, errno
}

func (n *lazyNode) Link(ctx context.Context, target fusefs.InodeEmbedder, name string, out *fuse.EntryOut) (ch *fusefs.Inode, errno syscall.Errno) {
	errno = n.entryOp(name, func() syscall.Errno {
		ch, errno = n.LoopbackNode.Link(ctx, target, name, out)
		return errno
	})
	return ch, errno
}

// Unlink removes the name but keeps the object in the holding area, so Cut
// can bring it back if the directory was not fsynced.
func (n *lazyNode) Unlink(ctx context.Context, name string) syscall.Errno {
	return n.entryOp(name, func() syscall.Errno {
		p := filepath.Join(n.backingPath(), name)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return fusefs.ToErrno(err)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return syscall.EISDIR
		}
		return n.lfs.hold(p, st.Ino)
	})
}

// Rmdir moves the (empty) directory to the holding area.
func (n *lazyNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	return n.entryOp(name, func() syscall.Errno {
		p := filepath.Join(n.backingPath(), name)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return fusefs.ToErrno(err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return syscall.ENOTDIR
		}
		if errno := emptyDir(p); errno != 0 {
			return errno
		}
		return fusefs.ToErrno(os.Rename(p, n.lfs.holdPath(st.Ino)))
	})
}

// Rename renames; an object the rename replaces is kept in the holding area.
func (n *lazyNode) Rename(ctx context.Context, name string, newParent fusefs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	np, ok := newParent.(*lazyNode)
	if !ok || np.lfs != n.lfs {
		return syscall.EXDEV
	}
	if np.reserved(newName) || n.reserved(name) {
		return syscall.EPERM
	}
	if !n.lfs.enter() {
		return syscall.EIO
	}
	defer n.lfs.leave()
	n.lfs.nsMu.Lock()
	defer n.lfs.nsMu.Unlock()
	d1, d2 := n.backingPath(), np.backingPath()
	if errno := n.lfs.snapshotDir(d1); errno != 0 {
		return errno
	}
	if errno := n.lfs.snapshotDir(d2); errno != 0 {
		return errno
	}
	if flags&(unix.RENAME_EXCHANGE|unix.RENAME_NOREPLACE) != 0 {
		return n.LoopbackNode.Rename(ctx, name, np, newName, flags)
	}
	src, dst := filepath.Join(d1, name), filepath.Join(d2, newName)
	var sst, dst0 unix.Stat_t
	if err := unix.Lstat(src, &sst); err != nil {
		return fusefs.ToErrno(err)
	}
	if err := unix.Lstat(dst, &dst0); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return n.LoopbackNode.Rename(ctx, name, np, newName, flags)
		}
		return fusefs.ToErrno(err)
	}
	if sst.Ino == dst0.Ino {
		// Two names of one object: rename does nothing.
		return n.LoopbackNode.Rename(ctx, name, np, newName, flags)
	}
	srcDir := sst.Mode&unix.S_IFMT == unix.S_IFDIR
	if dst0.Mode&unix.S_IFMT == unix.S_IFDIR {
		if !srcDir {
			return syscall.EISDIR
		}
		if errno := emptyDir(dst); errno != 0 {
			return errno
		}
		// A directory has one name: move it aside, then rename over
		// the gap (not atomic, but the namespace lock keeps every
		// other change out of the way).
		h := n.lfs.holdPath(dst0.Ino)
		if err := os.Rename(dst, h); err != nil {
			return fusefs.ToErrno(err)
		}
		errno := n.LoopbackNode.Rename(ctx, name, np, newName, flags)
		if errno != 0 {
			_ = os.Rename(h, dst)
		}
		return errno
	}
	if srcDir {
		return syscall.ENOTDIR
	}
	// Keep the replaced object by a second name, then rename atomically.
	if err := os.Link(dst, n.lfs.holdPath(dst0.Ino)); err != nil && !errors.Is(err, os.ErrExist) {
		return fusefs.ToErrno(err)
	}
	return n.LoopbackNode.Rename(ctx, name, np, newName, flags)
}

// Setattr records a size change before making it. Every attribute change is
// refused once the mount is cut.
func (n *lazyNode) Setattr(ctx context.Context, f fusefs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if !n.lfs.enter() {
		return syscall.EIO
	}
	defer n.lfs.leave()
	lf, _ := f.(*lazyFile)
	size, hasSize := in.GetSize()
	if !hasSize {
		var inner fusefs.FileHandle
		if lf != nil {
			inner = lf.lf
		}
		return n.LoopbackNode.Setattr(ctx, inner, in, out)
	}
	if lf == nil {
		// truncate(2) by path: open the file to record the change.
		fd, err := unix.Open(n.backingPath(), unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fusefs.ToErrno(err)
		}
		tmp, errno := n.lfs.newFile(fusefs.NewLoopbackFile(fd), false)
		if errno != 0 {
			return errno
		}
		defer tmp.Release(ctx)
		lf = tmp
	}
	lf.st.mu.Lock()
	defer lf.st.mu.Unlock()
	if err := lf.st.beforeTruncate(lf.fd, int64(size)); err != nil {
		return fusefs.ToErrno(err)
	}
	return n.LoopbackNode.Setattr(ctx, lf.lf, in, out)
}

// CopyFileRange is left to the kernel, which falls back to reads and
// writes that lazyfs sees.
func (n *lazyNode) CopyFileRange(ctx context.Context, fhIn fusefs.FileHandle, offIn uint64, out *fusefs.Inode, fhOut fusefs.FileHandle, offOut uint64, len uint64, flags uint64) (uint32, syscall.Errno) {
	return 0, syscall.ENOSYS
}

// Extended attributes are switched off at mount (DisableXAttrs); these
// keep the loopback's from ever changing the backing directory.
func (n *lazyNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return syscall.ENOTSUP
}

func (n *lazyNode) Removexattr(ctx context.Context, attr string) syscall.Errno {
	return syscall.ENOTSUP
}

// emptyDir returns 0 if the directory at p has no entries, ENOTEMPTY if it
// has some.
func emptyDir(p string) syscall.Errno {
	d, err := os.Open(p)
	if err != nil {
		return fusefs.ToErrno(err)
	}
	defer d.Close()
	names, err := d.Readdirnames(1)
	if len(names) > 0 {
		return syscall.ENOTEMPTY
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return fusefs.ToErrno(err)
	}
	return 0
}

// lazyDir is an open directory.
type lazyDir struct {
	lfs  *FS
	ino  uint64
	root bool
	ds   fusefs.DirStream
}

func (d *lazyDir) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	for d.ds.HasNext() {
		de, errno := d.ds.Next()
		if errno != 0 {
			return nil, errno
		}
		if d.root && (de.Name == holdName || de.Name == stageName) {
			continue
		}
		return &de, 0
	}
	return nil, 0
}

func (d *lazyDir) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	if s, ok := d.ds.(fusefs.FileSeekdirer); ok {
		return s.Seekdir(ctx, off)
	}
	return syscall.ENOTSUP
}

func (d *lazyDir) Releasedir(ctx context.Context, flags uint32) {
	d.ds.Close()
}

// Fsyncdir makes the directory's current entries durable.
func (d *lazyDir) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	if !d.lfs.enter() {
		return syscall.EIO
	}
	defer d.lfs.leave()
	d.lfs.nsMu.Lock()
	delete(d.lfs.dirs, d.ino)
	d.lfs.nsMu.Unlock()
	return 0
}

// lazyFile is an open regular file. It forwards to the loopback's file but
// records every change first. It does not offer a passthrough fd, so the
// kernel sends every read and write here.
type lazyFile struct {
	lfs  *FS
	lf   *fusefs.LoopbackFile
	fd   int // lf's descriptor, valid until Release
	st   *fileState
	sync bool // opened with O_SYNC or O_DSYNC: every write is synced
}

func (f *lazyFile) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	return f.lf.Read(ctx, dest, off)
}

func (f *lazyFile) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	return f.Writev(ctx, [][]byte{data}, off)
}

func (f *lazyFile) Writev(ctx context.Context, data [][]byte, off int64) (uint32, syscall.Errno) {
	if !f.lfs.enter() {
		return 0, syscall.EIO
	}
	defer f.lfs.leave()
	var n int64
	for _, b := range data {
		n += int64(len(b))
	}
	f.st.mu.Lock()
	defer f.st.mu.Unlock()
	if err := f.st.beforeWrite(f.fd, off, n); err != nil {
		return 0, fusefs.ToErrno(err)
	}
	w, err := unix.Pwritev(f.fd, data, off)
	if f.sync && err == nil {
		f.st.synced()
	}
	return uint32(max(w, 0)), fusefs.ToErrno(err)
}

// Fsync (and fdatasync) makes everything written to the file durable. The
// backing file is not synced: its durability plays no part in the test.
func (f *lazyFile) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if !f.lfs.enter() {
		return syscall.EIO
	}
	defer f.lfs.leave()
	f.st.mu.Lock()
	f.st.synced()
	f.st.mu.Unlock()
	return 0
}

// Allocate supports plain preallocation, KEEP_SIZE, PUNCH_HOLE and
// ZERO_RANGE; the modes that shift data are refused.
func (f *lazyFile) Allocate(ctx context.Context, off, size uint64, mode uint32) syscall.Errno {
	if !f.lfs.enter() {
		return syscall.EIO
	}
	defer f.lfs.leave()
	f.st.mu.Lock()
	defer f.st.mu.Unlock()
	keep := mode&unix.FALLOC_FL_KEEP_SIZE != 0
	var err error
	switch mode &^ unix.FALLOC_FL_KEEP_SIZE {
	case 0:
		if !keep {
			var cur int64
			if cur, err = fileSize(f.fd); err == nil && int64(off+size) > cur {
				err = f.st.beforeTruncate(f.fd, int64(off+size))
			}
		}
	case unix.FALLOC_FL_PUNCH_HOLE, unix.FALLOC_FL_ZERO_RANGE:
		err = f.st.beforeZero(f.fd, int64(off), int64(size), keep)
	default:
		return syscall.EOPNOTSUPP
	}
	if err != nil {
		return fusefs.ToErrno(err)
	}
	return f.lf.Allocate(ctx, off, size, mode)
}

// truncate sets the size, recording the change first.
func (f *lazyFile) truncate(ctx context.Context, size int64) syscall.Errno {
	f.st.mu.Lock()
	defer f.st.mu.Unlock()
	if err := f.st.beforeTruncate(f.fd, size); err != nil {
		return fusefs.ToErrno(err)
	}
	return fusefs.ToErrno(unix.Ftruncate(f.fd, size))
}

func (f *lazyFile) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	return f.lf.Getattr(ctx, out)
}

func (f *lazyFile) Statx(ctx context.Context, flags, mask uint32, out *fuse.StatxOut) syscall.Errno {
	return f.lf.Statx(ctx, flags, mask, out)
}

func (f *lazyFile) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	return f.lf.Lseek(ctx, off, whence)
}

func (f *lazyFile) Flush(ctx context.Context) syscall.Errno {
	return f.lf.Flush(ctx)
}

func (f *lazyFile) Release(ctx context.Context) syscall.Errno {
	return f.lf.Release(ctx)
}
