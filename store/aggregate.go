package store

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"

	"cellos-allinone/projection"
)

// aggregate is one tenant's counts, kept in step with every commit so
// that a summary never scans entities: live formations by status, cells
// by state and by outcome.
type aggregate struct {
	formations [7]int64
	states     [5]int64
	outcomes   [3]int64
}

// aggKey is a tenant's key in the aggregates bucket; bbolt keys cannot be
// empty, and "" is the tenant of entities without one.
func aggKey(tenant string) []byte { return append([]byte{'t'}, tenant...) }

// encode is the record stored under key (aggKey), sealed.
func (a *aggregate) encode(key []byte) []byte {
	var b []byte
	for _, part := range [][]int64{a.formations[:], a.states[:], a.outcomes[:]} {
		for _, n := range part {
			b = binary.AppendVarint(b, n)
		}
	}
	return seal(key, b, 0)
}

// decodeAggregate reads the aggregate record stored under key; no record
// is all zeros.
func decodeAggregate(key, rec []byte) (aggregate, error) {
	var a aggregate
	if rec == nil {
		return a, nil
	}
	rec, ok := unseal(key, rec)
	if !ok {
		return a, errSeal("tenant aggregate", key)
	}
	r := reader{b: rec}
	for _, part := range [][]int64{a.formations[:], a.states[:], a.outcomes[:]} {
		for i := range part {
			part[i] = r.varint()
		}
	}
	if r.err != nil || len(r.b) != 0 {
		return aggregate{}, fmt.Errorf("tenant aggregate: %w", ErrDamaged)
	}
	return a, nil
}

func (a *aggregate) add(b *aggregate) {
	for i := range a.formations {
		a.formations[i] += b.formations[i]
	}
	for i := range a.states {
		a.states[i] += b.states[i]
	}
	for i := range a.outcomes {
		a.outcomes[i] += b.outcomes[i]
	}
}

func (a *aggregate) zero() bool { return *a == aggregate{} }

// countCell adds n cells of class cl.
func (a *aggregate) countCell(cl byte, n int64) {
	a.states[classState(cl)] += n
	a.outcomes[classOutcome(cl)] += n
}

func (a *aggregate) cells() int64 {
	var n int64
	for _, v := range a.states {
		n += v
	}
	return n
}

func (a *aggregate) liveFormations() int64 {
	var n int64
	for _, v := range a.formations {
		n += v
	}
	return n
}

// summary builds the answer of Summary from the tenants' aggregates: the
// counts of tenant (all tenants when ""), the list of every tenant.
func summary(byTenant map[string]aggregate, tenant string) projection.Summary {
	var total aggregate
	s := projection.Summary{Tenants: []projection.TenantSummary{}}
	for _, id := range slices.Sorted(maps.Keys(byTenant)) {
		a := byTenant[id]
		s.Tenants = append(s.Tenants, projection.TenantSummary{
			ID: id, Formations: int(a.liveFormations()), Cells: int(a.cells()), Failed: int(a.outcomes[2]),
		})
		if tenant == "" || tenant == id {
			total.add(&a)
		}
	}
	s.Formations = projection.FormationSummary{Total: int(total.liveFormations()), ByStatus: map[string]int{}}
	for i, st := range formationStatuses {
		s.Formations.ByStatus[st] = int(total.formations[i])
	}
	s.Cells = projection.CellSummary{Total: int(total.cells()), ByState: map[string]int{}, ByOutcome: map[string]int{}}
	for i, st := range cellStates {
		s.Cells.ByState[st] = int(total.states[i])
	}
	for i, oc := range []string{projection.OutcomeUnset, projection.OutcomeCompleted, projection.OutcomeFailed} {
		s.Cells.ByOutcome[oc] = int(total.outcomes[i])
	}
	return s
}
