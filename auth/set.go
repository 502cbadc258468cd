package auth

import (
	"crypto/sha256"
	"slices"
)

// Set is the principals of one auth file. It is never changed after Parse:
// a reload makes a new Set.
type Set struct {
	list   []*Principal
	byName map[string]*Principal
}

// Principals lists the principals in file order.
func (s *Set) Principals() []*Principal { return slices.Clone(s.list) }

// Lookup returns the principal called name, or nil.
func (s *Set) Lookup(name string) *Principal { return s.byName[name] }

// Bearer returns the principal whose token is token, or nil. Every
// principal's digest is compared, in constant time, whatever matches: the
// time taken does not tell which principal, if any, came close.
func (s *Set) Bearer(token string) *Principal {
	if token == "" {
		return nil
	}
	sum := sha256.Sum256([]byte(token))
	var found *Principal
	for _, p := range s.list {
		if p.matches(&sum) && found == nil {
			found = p
		}
	}
	return found
}

// Password returns the principal called name when password is its token or
// password, else nil.
func (s *Set) Password(name, password string) *Principal {
	p := s.byName[name]
	sum := sha256.Sum256([]byte(password))
	if p == nil || password == "" || !p.matches(&sum) {
		return nil
	}
	return p
}

// NKey returns the principal whose NATS public user key is pub, or nil.
func (s *Set) NKey(pub string) *Principal {
	for _, p := range s.list {
		if p.kind == secretNKey && p.nkey == pub {
			return p
		}
	}
	return nil
}

// HoldsSecrets reports whether the file holds a token itself (a literal
// secret) rather than only digests and public keys: then it must be kept
// from other users.
func (s *Set) HoldsSecrets() bool {
	for _, p := range s.list {
		if p.literal {
			return true
		}
	}
	return false
}

// Tenants lists the tenants the principals are confined to, sorted, each
// once.
func (s *Set) Tenants() []string {
	var out []string
	for _, p := range s.list {
		if p.Tenant != "" && !slices.Contains(out, p.Tenant) {
			out = append(out, p.Tenant)
		}
	}
	slices.Sort(out)
	return out
}

// Changed lists the names of the principals of old that next does not hold
// as they were (removed, or with other credentials, roles or tenant): their
// open connections must end on reload.
func Changed(old, next *Set) []string {
	if old == nil {
		return nil
	}
	var out []string
	for _, p := range old.list {
		if !Same(p, next.Lookup(p.Name)) {
			out = append(out, p.Name)
		}
	}
	return out
}
