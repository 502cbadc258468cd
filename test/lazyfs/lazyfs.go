//go:build linux

package lazyfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// FS is a mounted lazy view of a backing directory.
type FS struct {
	backing string // absolute path of the backing directory
	mnt     string // mountpoint
	holdDir string // backing/.lazyfs-hold
	rootIno uint64 // inode of the backing directory

	server *fuse.Server
	served chan struct{} // closed when the server's loop has ended

	// opMu gates every operation that changes the backing directory:
	// they hold it shared and check dead; stop takes it exclusively to
	// wait for them and sets dead, after which nothing changes the
	// backing directory but Cut.
	opMu sync.RWMutex
	dead bool

	// nsMu serialises directory-entry changes and guards dirs: for every
	// directory whose entries changed since its last fsync, its entries
	// as they were at that fsync (or at mount), by inode number.
	nsMu sync.Mutex
	dirs map[uint64]map[string]dentry

	filesMu sync.Mutex
	files   map[uint64]*fileState // undo records by backing inode number

	stateMu   sync.Mutex
	stopped   bool
	stopErr   error
	aborted   bool // files were open at stop: the FUSE connection was aborted
	attached  bool // the mount could not be unmounted yet (files still open)
	cutDone   bool
	closeDone bool
}

// dentry is one durable directory entry: the object it names.
type dentry struct {
	ino  uint64
	mode uint32
}

// Available reports why FUSE mounts cannot be made here, or nil if they can.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("not running as root")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return fmt.Errorf("no /dev/fuse: %w", err)
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		return errors.New("fusermount3 not found (Debian package fuse3)")
	}
	return nil
}

// Mount mounts a lazy view of backing at a fresh mountpoint and unmounts it
// (as Close does) when the test ends. It skips the test when FUSE is not
// available (see Available), unless the environment has CI=true: then the
// test fails instead.
func Mount(tb testing.TB, backing string) *FS {
	tb.Helper()
	if err := Available(); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("lazyfs: cannot mount FUSE (CI=true, so this fails instead of skipping): %v", err)
		}
		tb.Skipf("lazyfs: cannot mount FUSE: %v", err)
	}
	l, err := mount(backing)
	if err != nil {
		tb.Fatalf("lazyfs: %v", err)
	}
	tb.Cleanup(func() {
		if err := l.Close(); err != nil {
			tb.Errorf("lazyfs: %v", err)
		}
	})
	return l
}

func mount(backing string) (*FS, error) {
	abs, err := filepath.Abs(backing)
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Stat(abs, &st); err != nil {
		return nil, fmt.Errorf("backing directory: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil, fmt.Errorf("backing %s is not a directory", abs)
	}
	l := &FS{
		backing: abs,
		holdDir: filepath.Join(abs, holdName),
		rootIno: st.Ino,
		served:  make(chan struct{}),
		dirs:    make(map[uint64]map[string]dentry),
		files:   make(map[uint64]*fileState),
	}
	// Leftovers of a mount that was never cut or closed are unreachable.
	if err := os.RemoveAll(l.holdDir); err != nil {
		return nil, err
	}
	if err := os.RemoveAll(filepath.Join(abs, stageName)); err != nil {
		return nil, err
	}
	if err := os.Mkdir(l.holdDir, 0o700); err != nil {
		return nil, err
	}
	l.mnt, err = os.MkdirTemp("", "lazyfs-mnt-")
	if err != nil {
		return nil, err
	}
	rootOps, err := fusefs.NewLoopbackRoot(abs)
	if err != nil {
		os.Remove(l.mnt)
		return nil, err
	}
	root := &lazyNode{LoopbackNode: rootOps.(*fusefs.LoopbackNode), lfs: l}
	sec := time.Second
	opts := &fusefs.Options{
		EntryTimeout: &sec,
		AttrTimeout:  &sec,
		MountOptions: fuse.MountOptions{
			FsName:        "lazyfs",
			Name:          "lazyfs",
			DisableXAttrs: true,
			// Every read and write must reach this process: no
			// kernel passthrough to the backing file, and no
			// writeback cache holding writes the FS has not seen.
			DisabledCapabilities: fuse.CAP_PASSTHROUGH | fuse.CAP_WRITEBACK_CACHE,
		},
	}
	srv, err := fuse.NewServer(fusefs.NewNodeFS(root, opts), l.mnt, &opts.MountOptions)
	if err != nil {
		os.Remove(l.mnt)
		return nil, fmt.Errorf("mount %s: %w", l.mnt, err)
	}
	l.server = srv
	go func() {
		srv.Serve()
		close(l.served)
	}()
	if err := srv.WaitMount(); err != nil {
		_ = l.stop()
		os.Remove(l.mnt)
		return nil, fmt.Errorf("mount %s: %w", l.mnt, err)
	}
	return l, nil
}

// Dir is the mountpoint: hand it to the program under test.
func (l *FS) Dir() string { return l.mnt }

// Backing is the backing directory (absolute).
func (l *FS) Backing() string { return l.backing }

// enter admits an operation that changes the backing directory; it returns
// false once the mount is cut. A true return must be paired with leave.
func (l *FS) enter() bool {
	l.opMu.RLock()
	if l.dead {
		l.opMu.RUnlock()
		return false
	}
	return true
}

func (l *FS) leave() { l.opMu.RUnlock() }

// stop ends the mount: unmount, or if files are still open abort the FUSE
// connection (umount -f) so that every further access fails with ENOTCONN,
// as if the machine had died; then wait for the server and for every
// operation in flight. Afterwards nothing but Cut changes the backing
// directory.
func (l *FS) stop() error {
	l.stateMu.Lock()
	defer l.stateMu.Unlock()
	if l.stopped {
		return l.stopErr
	}
	l.stopped = true
	l.stopErr = l.unmount()
	l.opMu.Lock()
	l.dead = true
	l.opMu.Unlock()
	return l.stopErr
}

func (l *FS) unmount() error {
	err := unix.Unmount(l.mnt, 0)
	if errors.Is(err, unix.EBUSY) {
		// MNT_FORCE makes FUSE abort the connection even though
		// the unmount itself fails while files are open.
		l.aborted = true
		_ = unix.Unmount(l.mnt, unix.MNT_FORCE)
		err = unix.Unmount(l.mnt, 0)
		if errors.Is(err, unix.EBUSY) {
			l.attached = true
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("unmount %s: %w", l.mnt, err)
	}
	select {
	case <-l.served:
	case <-time.After(20 * time.Second):
		return fmt.Errorf("FUSE server of %s did not stop", l.mnt)
	}
	return nil
}

// Close ends the mount without a power cut, as a clean shutdown would: the
// backing directory keeps everything written through the mount, synced or
// not. After Cut, it only removes the mountpoint. Mount calls it when the
// test ends; calling it again does nothing.
func (l *FS) Close() error {
	err := l.stop()
	l.stateMu.Lock()
	defer l.stateMu.Unlock()
	if l.closeDone {
		return nil
	}
	l.closeDone = true
	if l.attached {
		// The files that kept the mount busy at Cut should be closed
		// by now; if not, detach it.
		if e := unix.Unmount(l.mnt, 0); e != nil && !errors.Is(e, unix.EINVAL) {
			if e := unix.Unmount(l.mnt, unix.MNT_DETACH); e != nil && !errors.Is(e, unix.EINVAL) {
				return errors.Join(err, fmt.Errorf("detach %s: %w", l.mnt, e))
			}
		}
		l.attached = false
	}
	if err == nil && !l.cutDone {
		err = os.RemoveAll(l.holdDir)
	}
	if e := os.Remove(l.mnt); e != nil && !errors.Is(e, os.ErrNotExist) {
		err = errors.Join(err, e)
	}
	return err
}

// newFile wraps a loopback file handle.
func (l *FS) newFile(fh fusefs.FileHandle, sync bool) (*lazyFile, syscall.Errno) {
	lf, ok := fh.(*fusefs.LoopbackFile)
	if !ok {
		return nil, syscall.EIO
	}
	fd, ok := lf.PassthroughFd() // the descriptor, not kernel passthrough
	if !ok {
		return nil, syscall.EBADF
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		lf.Release(context.Background())
		return nil, fusefs.ToErrno(err)
	}
	return &lazyFile{lfs: l, lf: lf, fd: fd, st: l.state(st.Ino), sync: sync}, 0
}

// state returns the undo record of a backing inode.
func (l *FS) state(ino uint64) *fileState {
	l.filesMu.Lock()
	defer l.filesMu.Unlock()
	s := l.files[ino]
	if s == nil {
		s = &fileState{}
		l.files[ino] = s
	}
	return s
}

// snapshotDir records the entries of the directory at path as its durable
// entries, unless it has unsynced changes already (then its durable entries
// are recorded). nsMu must be held.
func (l *FS) snapshotDir(path string) syscall.Errno {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return fusefs.ToErrno(err)
	}
	if _, ok := l.dirs[st.Ino]; ok {
		return 0
	}
	ents, err := l.readEntries(path, st.Ino == l.rootIno)
	if err != nil {
		return fusefs.ToErrno(err)
	}
	l.dirs[st.Ino] = ents
	return 0
}

// readEntries lists the directory at path, without lazyfs's own entries.
func (l *FS) readEntries(path string, root bool) (map[string]dentry, error) {
	d, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, err
	}
	ents := make(map[string]dentry, len(names))
	for _, name := range names {
		if root && (name == holdName || name == stageName) {
			continue
		}
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(path, name), &st); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return nil, err
		}
		ents[name] = dentry{ino: st.Ino, mode: st.Mode}
	}
	return ents, nil
}

func (l *FS) holdPath(ino uint64) string {
	return filepath.Join(l.holdDir, strconv.FormatUint(ino, 10))
}

// hold moves the name p of inode ino into the holding area, or removes it if
// the inode is held already under another of its names.
func (l *FS) hold(p string, ino uint64) syscall.Errno {
	h := l.holdPath(ino)
	err := unix.Renameat2(unix.AT_FDCWD, p, unix.AT_FDCWD, h, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// No RENAME_NOREPLACE on this file system; nsMu keeps the
		// check and the rename together.
		if _, e := os.Lstat(h); e == nil {
			err = unix.EEXIST
		} else {
			err = unix.Rename(p, h)
		}
	}
	if errors.Is(err, unix.EEXIST) {
		err = unix.Unlink(p)
	}
	return fusefs.ToErrno(err)
}
