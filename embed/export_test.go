//go:build linux

package embed

// BlocksSynced is how many message blocks created in stream name's msgs
// directory the watch has made durable so far.
func (s *Server) BlocksSynced(name string) uint64 {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	if w := s.watchers[name]; w != nil {
		return w.blocks.Load()
	}
	return 0
}
