// Package lazyfs is a test-only FUSE file system that simulates a power
// cut.
//
// Mount shows a backing directory at a fresh mountpoint. Everything passes
// through to the backing directory at once, so reads (mmap included) see
// every write, but lazyfs remembers what changed since the last fsync:
//
//   - File data: for each file (backing inode), its size and the content
//     of every 4096-byte page that a write, truncation (ftruncate,
//     truncate, an O_TRUNC open) or fallocate (plain, KEEP_SIZE,
//     PUNCH_HOLE, ZERO_RANGE; the modes that shift data are refused)
//     changed since the file's last fsync or fdatasync (or since Mount).
//     fsync or fdatasync of the file, through any descriptor, makes all
//     of it durable; so does every write through a descriptor opened
//     with O_SYNC or O_DSYNC.
//   - Directory entries: for each directory, its entries as they were at
//     its last fsync (or at Mount), once create, mkdir, mknod, symlink,
//     link, unlink, rmdir or rename has changed them. fsync of the
//     directory makes its current entries durable. Each directory is
//     durable on its own: a new file whose data was fsynced is still lost
//     if its directory was not fsynced after the create, and so is a new
//     directory, with all it holds, if its parent was not. rename(a, b)
//     is durable in a's directory when that is fsynced (a is gone) and in
//     b's when that is (b names the renamed object); until then Cut
//     brings a back and gives b back whatever it named before. unlink and
//     rmdir do not destroy anything while mounted: the object moves to a
//     hidden holding area in the backing directory, so that Cut can bring
//     it back, with its data as of its last fsync.
//
// Cut ends the mount and rewrites the backing directory into the state a
// power cut leaves: the tree of durable entries from the root down, and in
// it every file with its data as of its last fsync (mode Whole), or with
// its unsynced changes kept below a page boundary drawn at random in the
// range they cover and put back from there on (mode Torn; the size is the
// current one if the boundary lies past it, else the larger of the synced
// size and the boundary). Torn tears file data only; directory entries are
// always durable or not, whole. Afterwards the backing directory is an
// ordinary directory: Mount it again for the next round, or use it
// directly.
//
// Not modelled: metadata other than size (mode, owner, times; xattrs are
// switched off) stays as it is; link counts include the names in the
// holding area (an unlinked file still open shows 1); writes through a
// shared writable mmap count when the kernel writes them back (msync,
// fsync, munmap, or its own writeback); sync(2) and syncfs(2) make nothing
// durable; O_TMPFILE is refused. A file renamed between two directories of
// which only the target was fsynced comes back under both names (hard
// links), and under neither if only the source was; a directory in the
// first case appears once (Report.Skipped names the other entry).
//
// The mount is plain FUSE without direct I/O (the page cache serves reads
// and mmap, as on a disk), without writeback cache (every write reaches
// lazyfs before write(2) returns) and without kernel passthrough (every
// read and write goes through lazyfs). File locks (flock, fcntl) are the
// kernel's local emulation: they work between processes of this machine.
// A Cut unmounts, so the next mount starts with a cold cache. If files are
// still open at Cut, the FUSE connection is aborted (umount -f): the
// processes holding them get ENOTCONN from then on, and nothing they do
// reaches the backing directory. The backing directory is not fsynced:
// its own durability plays no part in a test.
//
// A program that maps files of the mount into memory (bbolt does) must run
// in another process than the one that called Mount: a page fault on such a
// mapping blocks its thread outside a system call until this process's
// FUSE server answers, and the Go runtime's stop-the-world (for garbage
// collection) waits for that thread while holding the server's goroutines
// stopped: a deadlock. System calls (read, write, fsync, …) from the same
// process are safe.
//
// A round of a power-cut test:
//
//	m := lazyfs.Mount(t, backing)      // unmounted again when the test ends
//	cmd := exec.Command(bin, "--data", m.Dir())
//	// ... start cmd, drive it, then kill it (SIGKILL) and wait ...
//	rep, err := m.Cut(lazyfs.Torn, rand.New(rand.NewPCG(seed, 0)))
//	t.Log(rep)                          // what was thrown away
//	// ... start bin on backing (or on lazyfs.Mount(t, backing).Dir()) and check
//
// Close instead of Cut ends a mount as a clean shutdown would, keeping
// everything.
//
// Mounting needs root, /dev/fuse and fusermount3 (Debian package fuse3).
// Mount skips the test when one is missing, or fails it if CI=true.
package lazyfs
