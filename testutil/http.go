package testutil

import (
	"net"
	"net/http"
	"syscall"
	"testing"
)

// SmallBufferClient is an HTTP client whose connections have a fixed 32 KiB
// receive buffer (no autotuning): a slow peer whose backlog reaches the
// server after a few MB instead of the ~36 MB loopback autotuning absorbs.
func SmallBufferClient(tb testing.TB) *http.Client {
	d := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 32<<10)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	tr := &http.Transport{DialContext: d.DialContext}
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}
