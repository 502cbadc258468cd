package embed

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"unsafe"

	"github.com/nats-io/nats-server/v2/server"
	"golang.org/x/sys/unix"
)

// SyncStream makes a stream's existence and its message blocks' names
// durable, which nats-server v2.15 leaves to chance (docs/durability.md,
// "Power cuts"). Call it right after the stream was created and at every
// start; it is cheap and idempotent.
//
// It fsyncs the stream's meta files (meta.inf, meta.sum), its directories
// (the stream's own, msgs and obs) and every directory above it up to the
// data dir (streams, the account's, jetstream, the data dir). nats-server
// writes meta.inf without fsync unless it syncs every write and never
// syncs the directories above the stream's (nats-server issues #3753,
// #5876): a power cut soon after the creation loses the meta files, the
// next start skips the stream ("checksums do not match") and creates it
// again over the old blocks with a new creation time, a new epoch.
//
// It then watches the stream's msgs directory and fsyncs it whenever a
// file appears there: nats-server fsyncs a new message block's data (every
// write under SyncAlways) but not the directory entry that names it, so a
// power cut after a block rollover loses the whole new block, acknowledged
// messages included, even with SyncAlways. The watch narrows that window
// to the moment between the block's creation and the fsync that follows
// it; it cannot close it (nats-server acknowledges without waiting for
// this process).
func (s *Server) SyncStream(name string) error {
	store := s.ns.StoreDir() // <data dir>/jetstream
	if store == "" {
		return errors.New("embed: JetStream is not enabled")
	}
	// The file store's layout: <store>/<account>/streams/<name>/meta.inf.
	// This process and its clients all live in the global account.
	account := filepath.Join(store, s.ns.GlobalAccount().Name)
	streams := filepath.Join(account, "streams")
	dir := filepath.Join(streams, name)
	msgs := filepath.Join(dir, "msgs")
	paths := []string{
		filepath.Join(dir, server.JetStreamMetaFile),
		filepath.Join(dir, server.JetStreamMetaFileSum),
		msgs, filepath.Join(dir, "obs"),
		dir, streams, account, store, filepath.Dir(store),
	}
	for _, p := range paths {
		if err := fsync(p); err != nil {
			return fmt.Errorf("embed: make stream %s durable: %w", name, err)
		}
	}
	if err := s.watch(name, msgs); err != nil {
		return fmt.Errorf("embed: watch the message blocks of stream %s: %w", name, err)
	}
	return nil
}

// fsync syncs a file or directory. The msgs and obs directories may be
// missing in another nats-server version's layout: then there is nothing
// of theirs to make durable.
func fsync(p string) error {
	f, err := os.Open(p)
	if base := filepath.Base(p); errors.Is(err, os.ErrNotExist) && (base == "msgs" || base == "obs") {
		return nil
	}
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// blockWatcher fsyncs one msgs directory whenever an entry is created in
// it or renamed into it.
type blockWatcher struct {
	dir  string
	ino  uint64 // the directory's inode: a recreated stream has a new one
	file *os.File
	done chan struct{}
	// blocks counts the message blocks (*.blk) created in dir that an
	// fsync of dir has made durable (tests wait for it).
	blocks atomic.Uint64
}

// watch starts a blockWatcher on dir for stream name, replacing one on an
// earlier incarnation of the directory.
func (s *Server) watch(name, dir string) error {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); errors.Is(err, unix.ENOENT) {
		return nil // another layout: nothing to watch
	} else if err != nil {
		return err
	}
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	if w := s.watchers[name]; w != nil {
		select {
		case <-w.done:
		default:
			if w.ino == st.Ino {
				return nil
			}
		}
		w.stop()
	}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return err
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CREATE|unix.IN_MOVED_TO); err != nil {
		unix.Close(fd)
		return err
	}
	// os.NewFile puts the non-blocking descriptor on Go's poller: Read
	// waits without a thread, Close wakes it.
	w := &blockWatcher{dir: dir, ino: st.Ino, file: os.NewFile(uintptr(fd), "inotify"), done: make(chan struct{})}
	s.watchers[name] = w
	go w.run(s)
	return nil
}

func (w *blockWatcher) run(s *Server) {
	defer close(w.done)
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := w.file.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				s.log.Error("watching the stream's message blocks failed; new blocks are made durable only by nats-server", "dir", w.dir, "err", err)
			}
			return
		}
		created, blocks, gone := false, 0, false
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			nameBytes := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
			name := strings.TrimRight(string(nameBytes), "\x00")
			switch {
			case ev.Mask&unix.IN_IGNORED != 0:
				gone = true // the directory was removed (the stream deleted)
			case ev.Mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0 && name != "":
				created = true
				if strings.HasSuffix(name, ".blk") {
					blocks++
				}
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
		if created {
			if err := fsync(w.dir); err != nil && !errors.Is(err, os.ErrNotExist) {
				s.log.Error("fsync of the stream's message directory failed", "dir", w.dir, "err", err)
			} else {
				w.blocks.Add(uint64(blocks))
			}
		}
		if gone {
			w.file.Close()
			return
		}
	}
}

func (w *blockWatcher) stop() {
	w.file.Close()
	<-w.done
}

func (s *Server) stopWatchers() {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	for name, w := range s.watchers {
		w.stop()
		delete(s.watchers, name)
	}
}
