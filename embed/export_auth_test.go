package embed

// InternalSecret is the internal user's password (tests try it over TCP).
func (s *Server) InternalSecret() string { return s.login.secret }

// RecordedLogins is how many connections the logins remember.
func (s *Server) RecordedLogins() int {
	s.login.connsMu.Lock()
	defer s.login.connsMu.Unlock()
	return len(s.login.conns)
}

// PruneLogins forgets the closed connections now.
func (s *Server) PruneLogins() {
	s.login.connsMu.Lock()
	round := s.login.round
	s.login.round++
	s.login.connsMu.Unlock()
	s.login.prune(round)
}

// NumClients is how many client connections are open.
func (s *Server) NumClients() int { return s.ns.NumClients() }
