package eventlog

import (
	"strings"
	"testing"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"cellos-allinone/event"
)

func TestScopeFilter(t *testing.T) {
	for _, tc := range []struct {
		filter, scoped string
		ok             bool
	}{
		{"cellos.events.>", "cellos.events.acme.>", true},
		{"cellos.events.*.>", "cellos.events.acme.>", true},
		{"cellos.events.acme.>", "cellos.events.acme.>", true},
		{"cellos.events.*.cell.c-1.>", "cellos.events.acme.cell.c-1.>", true},
		{"cellos.events.acme.formation.*.failed", "cellos.events.acme.formation.*.failed", true},
		{"cellos.events.*", "", false},
		{"cellos.events.acme", "", false},
		{"cellos.events.cell.>", "", false},
		{"cellos.events.globex.>", "", false},
		{"cellos.events.formation.f-1.created", "", false},
	} {
		scoped, ok := ScopeFilter(tc.filter, "acme")
		if scoped != tc.scoped || ok != tc.ok {
			t.Errorf("ScopeFilter(%q, acme) = %q, %v; want %q, %v", tc.filter, scoped, ok, tc.scoped, tc.ok)
		}
	}
}

// FuzzScopeFilter proves ScopeFilter equal to nats-server's own subject
// matching: for any filter CheckFilter accepts and any subject, the scoped
// filter matches the subject exactly when the filter and the tenant's
// sub-tree both do.
func FuzzScopeFilter(f *testing.F) {
	f.Add("cellos.events.>", "cellos.events.acme.cell.c.started", "acme")
	f.Add("cellos.events.*.cell.*.>", "cellos.events.acme.cell.c.x.y", "acme")
	f.Add("cellos.events.cell.>", "cellos.events.cell.c.started", "cell-x")
	f.Add("cellos.events.*", "cellos.events.acme", "acme")
	f.Fuzz(func(t *testing.T, filter, subject, tenant string) {
		if CheckFilter(filter) != nil || !natsserver.IsValidLiteralSubject(subject) || !strings.HasPrefix(subject, SubjectPrefix) ||
			!event.ValidID(tenant) || tenant == "formation" || tenant == "cell" {
			return
		}
		want := natsserver.SubjectMatchesFilter(subject, filter) && natsserver.SubjectMatchesFilter(subject, TenantSubtree(tenant))
		scoped, ok := ScopeFilter(filter, tenant)
		got := ok && natsserver.SubjectMatchesFilter(subject, scoped)
		if got != want {
			t.Fatalf("ScopeFilter(%q, %q) = %q, %v: matches %q = %v, want %v", filter, tenant, scoped, ok, subject, got, want)
		}
		if ok && CheckFilter(scoped) != nil {
			t.Fatalf("ScopeFilter(%q, %q) = %q, not a valid filter: %v", filter, tenant, scoped, CheckFilter(scoped))
		}
	})
}
