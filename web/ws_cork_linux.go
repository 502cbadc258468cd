package web

import (
	"net"
	"syscall"
)

// corker holds back a TCP connection's partial segments (TCP_CORK) while
// a socket writes a round of frames, so that the round leaves in full
// segments instead of one push per write: coder/websocket writes a frame
// larger than its 4 KiB buffer in two writes, and without batch=1 a round
// is one write per event. nil (not a TCP connection) does nothing.
type corker struct{ rc syscall.RawConn }

func newCorker(c net.Conn) *corker {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return &corker{rc: rc}
}

// set corks (true) or uncorks (false, which sends what is held) the
// connection; errors are ignored: the option only changes when bytes
// leave, never which.
func (k *corker) set(on bool) {
	if k == nil {
		return
	}
	v := 0
	if on {
		v = 1
	}
	_ = k.rc.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CORK, v)
	})
}
