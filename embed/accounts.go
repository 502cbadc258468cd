package embed

import (
	"fmt"

	"github.com/nats-io/nats-server/v2/server"

	"cellos-allinone/auth"
	"cellos-allinone/event"
	"cellos-allinone/eventlog"
)

// The account layout once an auth set is given (doc.go):
//
//	$G            the stream, this process's own connections, admins
//	TENANT_<t>    the principals of tenant t
//	UNTENANTED    the principals without a tenant that are not admins
//
// Nothing but the stream's account holds JetStream: the other accounts
// reach it only through the service imports set up here, each exported by
// $G to the accounts that import it and no other. A client's _INBOX.>
// therefore never sees another account's replies.
const (
	tenantAccountPrefix = "TENANT_"
	untenantedAccount   = "UNTENANTED"
)

// Subjects of the JetStream API a reader reaches, and the gate that
// judges consumer creation and stream info before JetStream sees them
// (gate.go).
const (
	jsCreate   = "$JS.API.CONSUMER.CREATE." + eventlog.StreamName   // .<consumer>[.<filter>]
	jsNext     = "$JS.API.CONSUMER.MSG.NEXT." + eventlog.StreamName // .<consumer>
	jsInfo     = "$JS.API.STREAM.INFO." + eventlog.StreamName       //
	gatePrefix = "_CELLOS.GATE."                                    // T.<tenant>.<JS API subject> or U.<JS API subject>
	inboxAll   = "_INBOX.>"                                         // nats.go's default reply subjects
	eventsAll  = event.SubjectPrefix + ">"                          // cellos.events.>
)

// scope is where a non-admin principal lives: one tenant, or none.
type scope struct{ tenant string }

func (sc scope) account() string {
	if sc.tenant == "" {
		return untenantedAccount
	}
	return tenantAccountPrefix + sc.tenant
}

// tree is the events sub-tree of the scope: cellos.events.<tenant>.> or
// all of cellos.events.>.
func (sc scope) tree() string {
	if sc.tenant == "" {
		return eventsAll
	}
	return event.SubjectPrefix + sc.tenant + ".>"
}

// gate is the prefix under which the gate receives the scope's JetStream
// API requests: the import, not the client, says whose they are.
func (sc scope) gate() string {
	if sc.tenant == "" {
		return gatePrefix + "U."
	}
	return gatePrefix + "T." + sc.tenant + "."
}

// entities are the subject tokens of the untenanted form
// cellos.events.<entity>.<id>.<phase>.
var entities = []string{event.KindFormation.String(), event.KindCell.String()}

// route is one service import of a scope's account: from is the subject
// the client uses, to the subject in $G, resp the type of its replies.
type route struct {
	from, to string
	resp     server.ServiceRespType
}

// routes lists the imports of a scope's account.
//
// Publishing: a tenant's untenanted-form subjects map into its sub-tree
// (cellos.events.formation.> → cellos.events.<t>.formation.>), its
// tenant-form subjects go through as they are; an untenanted account
// publishes into all of cellos.events.>. Nothing else of the account's
// subject space reaches $G, whatever a permission would allow.
//
// Reading: consumer creation and stream info go to the gate; the pulls of
// a consumer go straight to JetStream (a stream of replies per request).
func (sc scope) routes() []route {
	var rs []route
	if sc.tenant == "" {
		rs = append(rs,
			route{eventsAll, eventsAll, server.Singleton},
			route{jsCreate + ".>", sc.gate() + jsCreate + ".>", server.Singleton},
		)
	} else {
		for _, e := range entities {
			rs = append(rs, route{event.SubjectPrefix + e + ".>", event.SubjectPrefix + sc.tenant + "." + e + ".>", server.Singleton})
		}
		rs = append(rs,
			route{sc.tree(), sc.tree(), server.Singleton},
			route{jsCreate + ".*." + sc.tree(), sc.gate() + jsCreate + ".*." + sc.tree(), server.Singleton},
		)
	}
	return append(rs,
		route{jsInfo, sc.gate() + jsInfo, server.Singleton},
		route{jsNext + ".*", jsNext + ".*", server.Streamed},
	)
}

// permissions are what a principal of the scope may publish and
// subscribe to, by its roles: deny by default, and checked by nats-server
// before any import is looked at.
func (sc scope) permissions(roles func(auth.Role) bool) *server.Permissions {
	var pub []string
	if roles(auth.Publisher) {
		if sc.tenant == "" {
			pub = append(pub, eventsAll)
		} else {
			for _, e := range entities {
				pub = append(pub, event.SubjectPrefix+e+".>")
			}
			pub = append(pub, sc.tree())
		}
	}
	if roles(auth.Reader) {
		if sc.tenant == "" {
			pub = append(pub, jsCreate+".*", jsCreate+".*."+eventsAll)
		} else {
			pub = append(pub, jsCreate+".*."+sc.tree())
		}
		pub = append(pub, jsNext+".*", jsInfo)
	}
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: pub},
		Subscribe: &server.SubjectPermission{Allow: []string{inboxAll}},
	}
}

// grant is what a principal gets at login: its account and permissions
// (nil permissions: everything, for admins).
type grant struct {
	acc   *server.Account
	perms *server.Permissions
}

// user is the nats-server user a login registers for principal p.
func (g grant) user(p *auth.Principal) *server.User {
	var perms *server.Permissions
	if g.perms != nil {
		perms = &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: append([]string(nil), g.perms.Publish.Allow...)},
			Subscribe: &server.SubjectPermission{Allow: append([]string(nil), g.perms.Subscribe.Allow...)},
		}
	}
	return &server.User{Username: p.Name, Account: g.acc, Permissions: perms}
}

// ensureAccounts creates the accounts, exports and imports that the
// principals of set need and the server does not have yet. It only adds:
// an account whose tenant left the file stays, empty (nats-server cannot
// remove one while running). Calls are serialised by the caller.
func (s *Server) ensureAccounts(set *auth.Set) (map[string]grant, error) {
	global := s.ns.GlobalAccount()
	grants := make(map[string]grant, len(set.Principals()))
	for _, p := range set.Principals() {
		if p.Can(auth.Admin) {
			grants[p.Name] = grant{acc: global}
			continue
		}
		sc := scope{tenant: p.Tenant}
		acc, err := s.scopeAccount(sc)
		if err != nil {
			return nil, err
		}
		grants[p.Name] = grant{acc: acc, perms: sc.permissions(p.Can)}
	}
	return grants, nil
}

// scopeAccount returns the scope's account, creating it with its imports
// the first time.
func (s *Server) scopeAccount(sc scope) (*server.Account, error) {
	name := sc.account()
	if acc := s.accounts[name]; acc != nil {
		return acc, nil
	}
	global := s.ns.GlobalAccount()
	acc, err := s.ns.RegisterAccount(name)
	if err != nil {
		return nil, fmt.Errorf("embed: create account %s: %w", name, err)
	}
	for _, r := range sc.routes() {
		// Exported for this account alone; adding an account to an
		// existing export (the pull subject) keeps the others.
		if err := global.AddServiceExportWithResponse(r.to, r.resp, []*server.Account{acc}); err != nil {
			return nil, fmt.Errorf("embed: export %s to account %s: %w", r.to, name, err)
		}
		if err := acc.AddServiceImport(global, r.from, r.to); err != nil {
			return nil, fmt.Errorf("embed: import %s as %s into account %s: %w", r.to, r.from, name, err)
		}
	}
	s.accounts[name] = acc
	return acc, nil
}
