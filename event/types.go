package event

import (
	"slices"
	"strings"
)

// Type prefixes of the v1 contract.
const (
	// TypePrefix is the namespace of every CellOS event type.
	TypePrefix = "dev.cellos.events."

	FormationPrefix = "dev.cellos.events.formation.lifecycle.v1."
	CellPrefix      = "dev.cellos.events.cell.lifecycle.v1."
	ComplianceType  = "dev.cellos.events.cell.compliance.v1.summary"
)

// Kind says which entity an event type addresses.
type Kind int

// Entity kinds.
const (
	KindUnknown Kind = iota
	KindFormation
	KindCell
)

// String returns the subject token of the kind.
func (k Kind) String() string {
	switch k {
	case KindFormation:
		return "formation"
	case KindCell:
		return "cell"
	}
	return ""
}

// kindOf maps a subject token back to its kind.
func kindOf(token string) Kind {
	switch token {
	case "formation":
		return KindFormation
	case "cell":
		return KindCell
	}
	return KindUnknown
}

// Lifecycle phases of the v1 types: the last token of the type.
var (
	formationPhases = []string{"created", "launching", "running", "degraded", "completed", "failed", "cancelled", "deleted"}
	cellPhases      = []string{"admitted", "started", "completed", "failed", "destroyed"}
)

// Classify maps a CloudEvent type to the entity it addresses and its phase
// (the last token of the type). ok is false for types v1 does not define.
func Classify(typ string) (kind Kind, phase string, ok bool) {
	switch {
	case typ == ComplianceType:
		return KindCell, "summary", true
	case strings.HasPrefix(typ, FormationPrefix):
		phase = typ[len(FormationPrefix):]
		if slices.Contains(formationPhases, phase) {
			return KindFormation, phase, true
		}
	case strings.HasPrefix(typ, CellPrefix):
		phase = typ[len(CellPrefix):]
		if slices.Contains(cellPhases, phase) {
			return KindCell, phase, true
		}
	}
	return KindUnknown, "", false
}

// EntityIDField is the data field that carries the entity id for kind.
func EntityIDField(k Kind) string {
	if k == KindFormation {
		return "formationId"
	}
	return "cellId"
}

// MaxIDLen is the longest entity id: one NATS token of 1–128 characters.
const MaxIDLen = 128

// ValidID reports whether id is a valid entity id: 1–128 letters, digits,
// '-' or '_', so that it is one NATS subject token.
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > MaxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// SubjectPrefix starts every event subject.
const SubjectPrefix = "cellos.events."

// Subject is the subject an event is stored under.
func Subject(kind Kind, id, phase string) string {
	return SubjectPrefix + kind.String() + "." + id + "." + phase
}
