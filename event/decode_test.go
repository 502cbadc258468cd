package event

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const tCell = CellPrefix

// FuzzDecode: never panics; success means a CloudEvents 1.0 JSON object
// with id, type and source; failure is an *Invalid. MessageID agrees with
// it, and Classify is consistent.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"specversion":"1.0","id":"x","source":"s","type":"` + tCell + `started","data":{"cellId":"c1"}}`,
		`{"specversion":"1.0","id":"x","source":"s","type":"` + ComplianceType + `","data":{"cellId":"c1"}}`,
		`{"specversion":"1.0","id":"x","source":"s","type":"` + tCell + `started","data":{"cellId":7}}`,
		`{"specversion":"1.0","ID":"x","Source":"s","TYPE":"` + tCell + `started"}`,
		`{"specversion":"1.0","id":"u","source":"s","type":"com.example.other"}`,
		`[1,2]`, `"s"`, `null`, ``, `{"specversion":"1.0"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		e, err := Decode(payload)
		id := MessageID(payload)
		if err != nil {
			var inv *Invalid
			if !errors.As(err, &inv) || err.Error() == "" {
				t.Fatalf("Decode(%q) error = %v (%T), want an *Invalid", payload, err, err)
			}
			if !strings.HasPrefix(id, "sha256:") || len(id) != len("sha256:")+32 {
				t.Fatalf("MessageID(%q) = %q, want a sha256: digest", payload, id)
			}
			return
		}
		if e.SpecVersion != "1.0" || e.ID == "" || e.Type == "" || e.Source == "" {
			t.Fatalf("Decode(%q) = %+v, want specversion 1.0 and id, type, source", payload, e)
		}
		if !json.Valid(payload) {
			t.Fatalf("Decode(%q) accepted invalid JSON", payload)
		}
		if id != e.ID {
			t.Fatalf("MessageID(%q) = %q, want %q", payload, id, e.ID)
		}
		if kind, phase, ok := Classify(e.Type); ok != (kind != KindUnknown) || ok != (phase != "") {
			t.Fatalf("Classify(%q) = %v, %q, %v: inconsistent", e.Type, kind, phase, ok)
		}
	})
}

func TestDecodeError(t *testing.T) {
	_, err := Decode([]byte(`{"specversion":"1.0"}`))
	var inv *Invalid
	if !errors.As(err, &inv) || inv.Error() != "missing id" {
		t.Errorf("Decode(missing id) error = %v, want *Invalid \"missing id\"", err)
	}
}
