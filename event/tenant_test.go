package event

import "testing"

// SubjectTenant: the third token of a subject that is neither formation
// nor cell is its tenant, whatever follows it.
func TestSubjectTenant(t *testing.T) {
	for _, tc := range []struct {
		subject, tenant string
		ok              bool
	}{
		{"cellos.events.cell.c-1.started", "", false},
		{"cellos.events.formation.f-1.created", "", false},
		{"cellos.events.acme.cell.c-1.started", "acme", true},
		{"cellos.events.acme.formation.f-1.deleted", "acme", true},
		{"cellos.events.acme", "acme", true},
		{"cellos.events.acme.anything.else", "acme", true},
		{"cellos.events.t_1-x.cell.c.x.y", "t_1-x", true},
		{"cellos.events.cell", "", false},
		{"cellos.events.formation", "", false},
		{"cellos.events.", "", false},
		{"cellos.events", "", false},
		{"other.events.acme.cell.c.started", "", false},
		{"", "", false},
	} {
		tenant, ok := SubjectTenant(tc.subject)
		if tenant != tc.tenant || ok != tc.ok {
			t.Errorf("SubjectTenant(%q) = %q, %v, want %q, %v", tc.subject, tenant, ok, tc.tenant, tc.ok)
		}
	}
}
