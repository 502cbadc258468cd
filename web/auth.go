package web

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"path"
	"strings"

	"cellos-allinone/api"
	"cellos-allinone/auth"
)

// access is what a route asks of its caller (docs/security.md, "Roles").
type access uint8

const (
	accessAdmin     access = iota // the zero value: deny by default
	accessOpen                    // anyone the Host check let in: health, the web view's files
	accessSignedIn                // any principal
	accessReader                  // the read API, /v1/events, /ws/events
	accessPublisher               // POST /v1/events
)

// role is the auth role access asks for; open and signed-in ask for none.
func (a access) role() auth.Role {
	switch a {
	case accessReader:
		return auth.Reader
	case accessPublisher:
		return auth.Publisher
	case accessAdmin:
		return auth.Admin
	}
	return 0
}

// caller is who sent a request, as authorize found: handlers read it from
// the request's context and never look at credentials themselves.
type caller struct {
	// p is nil when the server runs without an auth file (loopback only):
	// then every caller may do everything, as an untenanted admin.
	p *auth.Principal
}

type callerKey struct{}

// callerOf is the caller authorize attached to r.
func callerOf(r *http.Request) caller {
	c, _ := r.Context().Value(callerKey{}).(caller)
	return c
}

// tenant is the tenant the caller is confined to; "" for none.
func (c caller) tenant() string {
	if c.p == nil {
		return ""
	}
	return c.p.Tenant
}

// name is the caller's principal name; "" without an auth file.
func (c caller) name() string {
	if c.p == nil {
		return ""
	}
	return c.p.Name
}

// sees reports whether an entity of tenant belongs to what the caller may
// read: a tenant principal sees its tenant's entities only (another
// tenant's are "not found", never "forbidden").
func (c caller) sees(tenant string) bool {
	return c.tenant() == "" || c.tenant() == tenant
}

// authorize is the one place every request is authorised, in the order of
// docs/security.md: the Host check (421), the Origin check (403), then —
// with an auth file — the bearer token (401) and the route's role (403).
// It returns the request with its caller attached.
func (s *Server) authorize(r *http.Request, pattern string) (*http.Request, error) {
	if r.Host != "" && !s.hosts.allows(r.Host) {
		return r, Errorf(CodeMisdirected, "this server does not answer to the host %q; add it to --allowed-hosts if it is a name of this server", r.Host)
	}
	if err := s.checkOrigin(r); err != nil {
		return r, err
	}
	need := s.access[pattern]
	if pattern == "" {
		need = accessOpen // no route: answered 404 or 405
	}
	set := s.authSet.Load()
	var c caller
	if set != nil {
		token := bearerToken(r)
		if token != "" {
			c.p = set.Bearer(token)
		}
		if need != accessOpen && c.p == nil {
			if token == "" {
				return r, Errorf(CodeUnauthorized, "this server needs a bearer token: send Authorization: Bearer <token>")
			}
			return r, Errorf(CodeUnauthorized, "the bearer token is not valid here (unknown, or withdrawn by a reload of the auth file)")
		}
		if role := need.role(); role != 0 && !c.p.Can(role) {
			return r, Errorf(CodeForbidden, "principal %q (%s) may not do this: it needs the %s role", c.p.Name, c.p.Roles, role)
		}
	}
	return r.WithContext(context.WithValue(r.Context(), callerKey{}, c)), nil
}

// bearerProtocol prefixes the WebSocket subprotocol that carries a token
// (Kubernetes' scheme): browsers cannot set headers on a WebSocket, so the
// web view offers base64url.bearer.cellos.<base64url(token)> beside
// cellos.v1, and the server answers cellos.v1, never the token.
const bearerProtocol = "base64url.bearer.cellos."

// wsProtocol is the subprotocol the server speaks on /ws/events.
const wsProtocol = "cellos.v1"

// bearerToken is the token of Authorization: Bearer, or on a WebSocket
// upgrade of the bearer subprotocol; "" when there is none.
func bearerToken(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(token)
		}
		return ""
	}
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for p := range strings.SplitSeq(v, ",") {
			if enc, ok := strings.CutPrefix(strings.TrimSpace(p), bearerProtocol); ok {
				if b, err := base64.RawURLEncoding.DecodeString(enc); err == nil {
					return string(b)
				}
			}
		}
	}
	return ""
}

// checkOrigin refuses a browser request from a page of another site: its
// Origin must name this server (the Host list, any port) or match
// --ws-origins. Requests without Origin (not from a browser, or a
// same-origin navigation) pass. With the Host check this keeps a page
// elsewhere from reading or writing through a visitor's browser.
func (s *Server) checkOrigin(r *http.Request) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return Errorf(CodeForbidden, "Origin %q is not a URL with a host", origin)
	}
	if s.hosts.allows(u.Host) {
		return nil
	}
	for _, p := range s.cfg.WS.Origins {
		target := u.Host
		if strings.Contains(p, "://") {
			target = u.Scheme + "://" + u.Host
		}
		if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(target)); ok {
			return nil
		}
	}
	return Errorf(CodeForbidden, "Origin %q may not use this server: only its own names (--allowed-hosts) and --ws-origins are allowed", origin)
}

// SetAuth replaces the principals (a reload of the auth file): requests
// from now on are judged by set, and the sockets of every principal that
// set no longer holds as it was are closed with 4401. It does nothing on a
// server started without an auth file.
func (s *Server) SetAuth(set *auth.Set) (closed []string) {
	if set == nil || s.authSet.Load() == nil {
		return nil
	}
	old := s.authSet.Swap(set)
	closed = auth.Changed(old, set)
	if len(closed) > 0 {
		s.ws.revoke(closed)
	}
	return closed
}

// stillValid reports whether c's principal is in the current set as it
// was when the request was authorised: a socket registered after a reload
// began must not outlive its principal.
func (s *Server) stillValid(c caller) bool {
	set := s.authSet.Load()
	return set == nil || c.p == nil || auth.Same(c.p, set.Lookup(c.p.Name))
}

// whoami is GET /v1/whoami: who the server takes the caller for, so that
// the web view can show the tenant and tell a missing token from a
// missing role.
func (s *Server) whoami(w http.ResponseWriter, r *http.Request) error {
	if _, err := parseQuery(r.URL); err != nil {
		return err
	}
	c := callerOf(r)
	body := api.Whoami{Name: c.name(), Tenant: c.tenant(), Roles: auth.Admin.Names(), AuthRequired: s.authSet.Load() != nil}
	if c.p != nil {
		body.Roles = c.p.Roles.Names()
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}
