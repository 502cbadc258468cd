package event

import "strings"

// SubjectTenant returns the tenant a stored subject carries, if any
// (docs/design.md §3, rule 1): a subject of cellos.events.> whose third token is
// neither "formation" nor "cell" has the tenant form
// cellos.events.<tenant>.<entity>.<id>.<phase>, and that token is its
// tenant, whatever follows it — an odd subject a tenant publisher sends is
// still judged as its own. Every other subject (the seed's untenanted
// cellos.events.<entity>.<id>.<phase>, or none) carries no tenant.
//
// The tenant is a substring of subject: nothing is allocated.
func SubjectTenant(subject string) (tenant string, ok bool) {
	rest, found := strings.CutPrefix(subject, SubjectPrefix)
	if !found {
		return "", false
	}
	token, _, _ := strings.Cut(rest, ".")
	if token == "" || kindOf(token) != KindUnknown {
		return "", false
	}
	return token, true
}

// TenantSubject is the subject of an event in the tenant form,
// cellos.events.<tenant>.<entity>.<id>.<phase> (docs/design.md §3): where a
// tenant's producers store it, inside the tenant's sub-tree.
func TenantSubject(tenant string, kind Kind, id, phase string) string {
	return SubjectPrefix + tenant + "." + kind.String() + "." + id + "." + phase
}
