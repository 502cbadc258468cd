package embed

// InternalSecret is the internal user's password (tests try it over TCP).
func (s *Server) InternalSecret() string { return s.login.secret }
