package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"strings"
)

// Role is one thing a principal may do.
type Role uint8

// Roles. Admin implies the other two.
const (
	Reader Role = 1 << iota
	Publisher
	Admin
)

var roleNames = []struct {
	role Role
	name string
}{{Admin, "admin"}, {Reader, "reader"}, {Publisher, "publisher"}}

// String is the role's name in the auth file, or the names of a set of roles
// joined by commas.
func (r Role) String() string {
	var names []string
	for _, rn := range roleNames {
		if r&rn.role != 0 {
			names = append(names, rn.name)
		}
	}
	return strings.Join(names, ",")
}

// Names lists the roles of r by name, admin first.
func (r Role) Names() []string {
	names := []string{}
	for _, rn := range roleNames {
		if r&rn.role != 0 {
			names = append(names, rn.name)
		}
	}
	return names
}

// secretKind says how a principal proves who it is.
type secretKind uint8

const (
	secretDigest secretKind = iota // sha256:<hex>, or a literal (its digest is kept)
	secretNKey                     // nkey:<public key>: NATS only
)

// Principal is one line of the auth file: who, what it may do, and where.
type Principal struct {
	// Name identifies the principal in logs, metrics and NATS (its user
	// name). It is not a secret.
	Name string
	// Roles is the set of roles; Can answers whether one is granted.
	Roles Role
	// Tenant confines the principal to one tenant; "" for none.
	Tenant string
	// Line is the principal's line in the auth file.
	Line int

	kind    secretKind
	literal bool              // the file holds the token itself
	digest  [sha256.Size]byte // SHA-256 of the token or password
	nkey    string            // public user key
}

// Can reports whether the principal holds role (admin holds every role).
func (p *Principal) Can(role Role) bool {
	return p.Roles&Admin != 0 || p.Roles&role == role
}

// NKey is the principal's NATS public user key; "" unless its secret is an
// NKey.
func (p *Principal) NKey() string { return p.nkey }

// HasToken reports whether the principal has a bearer token or password
// (not an NKey).
func (p *Principal) HasToken() bool { return p.kind == secretDigest }

// matches compares the digest of a presented token with the principal's in
// constant time.
func (p *Principal) matches(sum *[sha256.Size]byte) bool {
	return p.kind == secretDigest && subtle.ConstantTimeCompare(p.digest[:], sum[:]) == 1
}

// Same reports whether a and b are the same principal with the same
// credentials, roles and tenant: a reload keeps the connections of such a
// principal and ends those of one that changed or went.
func Same(a, b *Principal) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Name == b.Name && a.Roles == b.Roles && a.Tenant == b.Tenant &&
		a.kind == b.kind && a.digest == b.digest && a.nkey == b.nkey
}
