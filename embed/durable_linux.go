//go:build linux

package embed

import (
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

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
