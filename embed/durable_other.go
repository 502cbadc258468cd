//go:build !linux

package embed

// blockWatcher is Linux-only (inotify): elsewhere a new message block's
// directory entry is made durable only by nats-server itself
// (docs/durability.md, "Power cuts").
type blockWatcher struct{}

func (s *Server) watch(name, dir string) error { return nil }

func (s *Server) stopWatchers() {}
