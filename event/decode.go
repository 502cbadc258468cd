package event

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// Envelope is the part of a CloudEvents 1.0 structured-mode event the
// fold reads.
type Envelope struct {
	SpecVersion string          `json:"specversion"`
	ID          string          `json:"id"`
	Source      string          `json:"source"`
	Type        string          `json:"type"`
	Subject     string          `json:"subject,omitempty"`
	Time        string          `json:"time,omitempty"`
	Data        json.RawMessage `json:"data,omitempty"`
}

// Decode parses payload as a CloudEvents 1.0 JSON object, leniently (what
// the fold accepts from the stream): it fails when the payload is not a
// JSON object, not specversion 1.0, or lacks one of id, type or source
// (an *Invalid).
func Decode(payload []byte) (Envelope, error) {
	var e Envelope
	if err := json.Unmarshal(payload, &e); err != nil {
		return e, invalid("not a JSON CloudEvent object: %v", err)
	}
	switch {
	case e.SpecVersion != "1.0":
		return e, invalid("specversion must be \"1.0\", got %q", e.SpecVersion)
	case e.ID == "":
		return e, invalid("missing id")
	case e.Type == "":
		return e, invalid("missing type")
	case e.Source == "":
		return e, invalid("missing source")
	}
	return e, nil
}

// MessageID is the identity of a stored message: its CloudEvent id, or a
// digest of its bytes when it is not a CloudEvent. The checkpoint keeps it
// for the message at its cursor.
func MessageID(payload []byte) string {
	if e, err := Decode(payload); err == nil {
		return e.ID
	}
	sum := sha256.Sum256(payload)
	return "sha256:" + hex.EncodeToString(sum[:16])
}
