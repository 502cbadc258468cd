package projection

// Rejection names the tenant rule of fold v3 that rejected an event
// (docs/design.md §3, rule 2): a machine code, as logged.
type Rejection string

// The rules an event can be rejected by.
const (
	// RejectedSubjectTenant: the subject has the tenant form and the data
	// declares another tenant (data.tenantId or data.correlation.tenantId).
	RejectedSubjectTenant Rejection = "subject_tenant"
	// RejectedEntityTenant: the event's tenant is not the one its entity
	// already has (a tombstone's included).
	RejectedEntityTenant Rejection = "entity_tenant"
	// RejectedFormationTenant: a cell event names a formation (live or a
	// tombstone) of another tenant than the cell's.
	RejectedFormationTenant Rejection = "formation_tenant"
)

// inherit gives the formation's tenant, which it has just got, to each of
// its cells without a tenant of their own (rule 4). The cells' lastSeq and
// updatedAt stay: inheriting is no event of theirs.
func inherit(st State, formationID, tenant string) {
	for _, id := range st.FormationCells(formationID) {
		if c, ok := st.LoadCell(id); ok && c.FormationID == formationID && c.TenantID == "" {
			c.TenantID = tenant
			st.SaveCell(c)
		}
	}
}

// The untenanted-form counter names at most MaxUntenantedTenants tenants,
// the first ones met in the log; events of any later tenant count under
// UntenantedOverflow. "*" can never be a subject token, so no tenant of
// the tenant form shares it.
const (
	MaxUntenantedTenants = 1000
	UntenantedOverflow   = "*"
)

// countUntenanted counts one event of tenant published in the untenanted
// form.
func (c *Counters) countUntenanted(tenant string) {
	m := c.UntenantedOfTenant
	if m == nil {
		m = map[string]uint64{}
		c.UntenantedOfTenant = m
	}
	if _, ok := m[tenant]; !ok {
		named := len(m)
		if _, ok := m[UntenantedOverflow]; ok {
			named--
		}
		if named >= MaxUntenantedTenants {
			tenant = UntenantedOverflow
		}
	}
	m[tenant]++
}
