package event

// TenantSubject is the subject of an event in the tenant form,
// cellos.events.<tenant>.<entity>.<id>.<phase> (docs/design.md §2): where a
// tenant's producers store it, inside the tenant's sub-tree.
func TenantSubject(tenant string, kind Kind, id, phase string) string {
	return SubjectPrefix + tenant + "." + kind.String() + "." + id + "." + phase
}
