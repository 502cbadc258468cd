package projection

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"
)

// Event type prefixes of the v1 contract (DESIGN.md §3).
const (
	formationPrefix = "dev.cellos.events.formation.lifecycle.v1."
	cellPrefix      = "dev.cellos.events.cell.lifecycle.v1."
	complianceType  = "dev.cellos.events.cell.compliance.v1.summary"
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

// ClassifyType maps a CloudEvent type to the entity it addresses and its
// phase (the last token of the type). ok is false for types this version
// of the projection does not understand.
func ClassifyType(typ string) (kind Kind, phase string, ok bool) {
	switch {
	case typ == complianceType:
		return KindCell, "summary", true
	case strings.HasPrefix(typ, formationPrefix):
		phase = typ[len(formationPrefix):]
		if _, known := formationRank[phase]; known || phase == "deleted" {
			return KindFormation, phase, true
		}
	case strings.HasPrefix(typ, cellPrefix):
		phase = typ[len(cellPrefix):]
		if _, known := stateOfPhase(phase); known {
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

// Envelope is the part of a CloudEvents 1.0 structured-mode event the
// projection reads.
type Envelope struct {
	SpecVersion string          `json:"specversion"`
	ID          string          `json:"id"`
	Source      string          `json:"source"`
	Type        string          `json:"type"`
	Subject     string          `json:"subject,omitempty"`
	Time        string          `json:"time,omitempty"`
	Data        json.RawMessage `json:"data,omitempty"`
}

// DecodeEnvelope parses payload as a CloudEvents 1.0 JSON object. It fails
// when the payload is not a JSON object, not specversion 1.0, or lacks one
// of id, type or source.
func DecodeEnvelope(payload []byte) (Envelope, error) {
	var e Envelope
	if err := json.Unmarshal(payload, &e); err != nil {
		return e, errorf("not a JSON CloudEvent object: %v", err)
	}
	switch {
	case e.SpecVersion != "1.0":
		return e, errorf("specversion must be \"1.0\", got %q", e.SpecVersion)
	case e.ID == "":
		return e, errorf("missing id")
	case e.Type == "":
		return e, errorf("missing type")
	case e.Source == "":
		return e, errorf("missing source")
	}
	return e, nil
}

// eventData gives lenient access to the fields of an event's data object:
// a field of the wrong JSON type reads as absent.
type eventData map[string]json.RawMessage

func decodeData(raw json.RawMessage) eventData {
	var d eventData
	if len(raw) == 0 || json.Unmarshal(raw, &d) != nil {
		return nil
	}
	return d
}

func (d eventData) str(key string) string {
	raw, ok := d[key]
	if !ok || len(raw) == 0 || raw[0] != '"' {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

func (d eventData) object(key string) json.RawMessage {
	raw, ok := d[key]
	if !ok || len(raw) == 0 || raw[0] != '{' {
		return nil
	}
	return compactJSON(raw)
}

func (d eventData) int64(key string) *int64 {
	raw, ok := d[key]
	if !ok || string(raw) == "null" {
		// json.Unmarshal leaves n at 0 for null: absent, not 0.
		return nil
	}
	var n int64
	if json.Unmarshal(raw, &n) != nil {
		return nil
	}
	return &n
}

func (d eventData) labels() map[string]string {
	raw, ok := d["labels"]
	if !ok {
		return nil
	}
	var m map[string]string
	if json.Unmarshal(raw, &m) != nil || len(m) == 0 {
		return nil
	}
	return m
}

// tenant implements fold rule 1: data.tenantId, else data.correlation.tenantId.
func (d eventData) tenant() string {
	if t := d.str("tenantId"); t != "" {
		return t
	}
	if corr := d.object("correlation"); corr != nil {
		return decodeData(corr).str("tenantId")
	}
	return ""
}

func compactJSON(raw json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return append(json.RawMessage(nil), raw...)
	}
	return b.Bytes()
}

// eventTime implements fold rule 1: the CloudEvent time, else the
// JetStream message time. A time whose UTC year falls outside 0–9999 (a
// zone offset can push "0000-01-01T00:00:00+01:00" there) counts as
// unusable: JSON cannot encode it, and the checkpoint would fail on it.
func eventTime(ceTime string, msgTime time.Time) time.Time {
	if ceTime != "" {
		if t, err := time.Parse(time.RFC3339Nano, ceTime); err == nil {
			if y := t.UTC().Year(); y >= 0 && y <= 9999 {
				return t.UTC()
			}
		}
	}
	return msgTime.UTC()
}

// MaxIDLen is the longest entity id (DESIGN.md §3: one NATS token of 1–128 chars).
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
