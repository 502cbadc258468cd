package testutil

import (
	"os"
	"strings"
	"testing"

	"cellos-allinone/auth"
)

// Principal is one line of a test auth file, with the token that proves
// it (the file holds the token literally, or its sha256: form when
// Hashed).
type Principal struct {
	Name, Token, Roles, Tenant string
	Hashed                     bool
}

// Site is the three-tenant site of docs/security.md: an operator (admin),
// a dashboard (reader) and a supervisor (publisher) per tenant acme and
// globex, one principal with both roles for initech, and an untenanted
// auditor (reader) and legacy supervisor (publisher).
var Site = []Principal{
	{Name: "ops", Token: "ops-7f3a-admin-token", Roles: "admin", Hashed: true},
	{Name: "acme-dash", Token: "acme-dash-2b9c-token", Roles: "reader", Tenant: "acme", Hashed: true},
	{Name: "acme-sup", Token: "acme-sup-51e0-token", Roles: "publisher", Tenant: "acme"},
	{Name: "globex-dash", Token: "globex-dash-8d1f-token", Roles: "reader", Tenant: "globex"},
	{Name: "globex-sup", Token: "globex-sup-c47a-token", Roles: "publisher", Tenant: "globex", Hashed: true},
	{Name: "initech-ops", Token: "initech-ops-90ab-token", Roles: "reader,publisher", Tenant: "initech"},
	{Name: "auditor", Token: "auditor-3c5d-token", Roles: "reader"},
	{Name: "legacy-sup", Token: "legacy-sup-e6f2-token", Roles: "publisher"},
}

// SitePrincipal returns the principal of Site called name.
func SitePrincipal(tb testing.TB, name string) Principal {
	tb.Helper()
	for _, p := range Site {
		if p.Name == name {
			return p
		}
	}
	tb.Fatalf("no principal %q in testutil.Site", name)
	return Principal{}
}

// AuthFileText is the auth file of ps.
func AuthFileText(ps []Principal) string {
	var b strings.Builder
	b.WriteString("# written by a test\n")
	for _, p := range ps {
		secret := p.Token
		if p.Hashed {
			secret = auth.Digest(p.Token)
		}
		b.WriteString(strings.TrimSpace(p.Name + " " + secret + " " + p.Roles + " " + p.Tenant))
		b.WriteByte('\n')
	}
	return b.String()
}

// WriteAuthFile writes the auth file of ps to path.
func WriteAuthFile(tb testing.TB, path string, ps []Principal) {
	tb.Helper()
	if err := os.WriteFile(path, []byte(AuthFileText(ps)), 0o600); err != nil {
		tb.Fatal(err)
	}
}
