package projection

import (
	"bytes"
	"encoding/json"
	"time"
)

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
