//go:build !linux

package web

import "net"

// corker: TCP_CORK is Linux's; elsewhere every write leaves at once.
type corker struct{}

func newCorker(net.Conn) *corker { return nil }

func (*corker) set(bool) {}
