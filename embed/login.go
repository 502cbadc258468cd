package embed

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"sync"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"cellos-allinone/auth"
)

// internalUser is the name of this process's own connections. The auth
// file cannot name a principal so ('_' is reserved there).
const internalUser = "_cellos"

// login is nats-server's CustomClientAuthentication once an auth set is
// given: one path for user and password, auth_token and NKey logins, and
// the process's own in-process connections.
type login struct {
	srv    *Server
	secret string // the internal user's password: random, in memory only

	// mu orders logins against SetAuth: a login holds it for reading
	// from the look-up of its credentials to the registration of its
	// user, so that once SetAuth has swapped the set under the write
	// lock, every connection that an old principal opened is in conns.
	mu     sync.RWMutex
	set    *auth.Set
	grants map[string]grant // by principal name

	// conns maps the ID of each connection a principal opened to that
	// principal (a pointer into the set that let it in): nats-server has
	// no hook for a closed connection, so the entries of closed ones are
	// pruned when the map has doubled since the last prune.
	connsMu sync.Mutex
	conns   map[uint64]opened
	pruneAt int
	pruning bool
	round   uint64 // counts prunes
}

// opened is a connection a principal opened, in prune round round.
type opened struct {
	p     *auth.Principal
	round uint64
}

func newLogin(srv *Server, set *auth.Set, grants map[string]grant) (*login, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	return &login{srv: srv, secret: hex.EncodeToString(b[:]), set: set, grants: grants,
		conns: map[uint64]opened{}, pruneAt: minPruneAt}, nil
}

// minPruneAt is the fewest connections recorded before a prune.
const minPruneAt = 1024

// Check implements server.Authentication. It never logs a credential:
// nats-server logs the refusal itself (through the redacting adapter).
func (l *login) Check(c server.ClientAuthentication) bool {
	if c.Kind() != server.CLIENT {
		return false
	}
	o := c.GetOpts()
	if o.Username == internalUser {
		// In-process connections are the two ends of a net.Pipe; no
		// network client has that address, whatever it knows.
		addr := c.RemoteAddress()
		if addr == nil || addr.Network() != "pipe" ||
			subtle.ConstantTimeCompare([]byte(o.Password), []byte(l.secret)) != 1 {
			return false
		}
		c.RegisterUser(&server.User{Username: internalUser, Account: l.srv.ns.GlobalAccount()})
		return true
	}

	l.mu.RLock()
	defer l.mu.RUnlock()
	var p *auth.Principal
	switch {
	case o.Nkey != "":
		if p = l.set.NKey(o.Nkey); p != nil && !signedNonce(o.Nkey, o.Sig, c.GetNonce()) {
			p = nil
		}
	case o.Username != "":
		p = l.set.Password(o.Username, o.Password)
	case o.Token != "":
		p = l.set.Bearer(o.Token)
	}
	if p == nil {
		return false
	}
	g, ok := l.grants[p.Name]
	if !ok {
		return false
	}
	c.RegisterUser(g.user(p))
	l.record(c.GetID(), p)
	return true
}

// signedNonce reports whether sig is pub's signature of the nonce the
// server sent (AlwaysEnableNonce), as nats.go sends it: base64, URL
// alphabet without padding, or standard.
func signedNonce(pub, sig string, nonce []byte) bool {
	if len(nonce) == 0 || sig == "" {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		if raw, err = base64.StdEncoding.DecodeString(sig); err != nil {
			return false
		}
	}
	kp, err := nkeys.FromPublicKey(pub)
	if err != nil {
		return false
	}
	return kp.Verify(nonce, raw) == nil
}

// record remembers which principal opened connection cid. Called with
// l.mu held for reading: conns has its own lock.
func (l *login) record(cid uint64, p *auth.Principal) {
	l.connsMu.Lock()
	defer l.connsMu.Unlock()
	l.conns[cid] = opened{p, l.round}
	if len(l.conns) >= l.pruneAt && !l.pruning {
		l.pruning = true
		l.round++
		go l.prune(l.round - 1)
	}
}

// prune forgets the connections recorded up to round that have closed.
// A connection is among the server's before it logs in, so one recorded
// before the prune began and still open is in the list of open ones;
// one recorded later may not be, and is kept.
func (l *login) prune(round uint64) {
	open, err := l.srv.openConns()
	l.connsMu.Lock()
	defer l.connsMu.Unlock()
	l.pruning = false
	if err == nil {
		for cid, o := range l.conns {
			if o.round <= round && !open[cid] {
				delete(l.conns, cid)
			}
		}
	}
	l.pruneAt = max(minPruneAt, 2*len(l.conns))
}

// swap makes next the set new logins use and returns the connections
// opened by principals that next does not hold as they were.
func (l *login) swap(next *auth.Set, grants map[string]grant) []uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.set, l.grants = next, grants
	l.connsMu.Lock()
	defer l.connsMu.Unlock()
	var ended []uint64
	for cid, o := range l.conns {
		if !auth.Same(o.p, next.Lookup(o.p.Name)) {
			ended = append(ended, cid)
			delete(l.conns, cid)
		}
	}
	return ended
}

// known reports whether name is a principal of the current set (the log
// adapter quotes no other user name: it may be a mistyped secret).
func (l *login) known(name string) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.set.Lookup(name) != nil
}

// SetAuth makes set the principals of new logins, atomically: the
// accounts and imports of new tenants are added first, then the set is
// swapped, then the connections of every principal that set does not
// hold as it was (auth.Changed: removed, or other credentials, roles or
// tenant) are closed. The connections of unchanged principals stay open
// with what they had. The server is never restarted.
//
// It fails, changing nothing, on a server started without Options.Auth
// (there are no accounts to move its anonymous clients into) or with a
// nil set.
func (s *Server) SetAuth(set *auth.Set) error {
	if s.login == nil {
		return errors.New("embed: SetAuth on a server started without an auth set (Options.Auth): restart it with one")
	}
	if set == nil {
		return errors.New("embed: SetAuth(nil): a server started with an auth set keeps one")
	}
	s.accountsMu.Lock()
	defer s.accountsMu.Unlock()
	grants, err := s.ensureAccounts(set)
	if err != nil {
		return err
	}
	ended := s.login.swap(set, grants)
	for _, cid := range ended {
		// An error is a connection that closed meanwhile.
		_ = s.ns.DisconnectClientByID(cid)
	}
	s.log.Info("NATS principals reloaded", "principals", len(set.Principals()), "closed_connections", len(ended))
	return nil
}

// openConns is the set of IDs of the open client connections.
func (s *Server) openConns() (map[uint64]bool, error) {
	open := map[uint64]bool{}
	const page = 4096
	for offset := 0; ; offset += page {
		cz, err := s.ns.Connz(&server.ConnzOptions{Offset: offset, Limit: page})
		if err != nil {
			return nil, err
		}
		for _, ci := range cz.Conns {
			open[ci.Cid] = true
		}
		if len(cz.Conns) < page {
			return open, nil
		}
	}
}
