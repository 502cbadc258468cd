package event

import (
	"errors"
	"strings"
	"testing"
)

// Check accepts a v1 event and derives its subject, id and stored bytes;
// it names the first wrong attribute otherwise.
func TestCheck(t *testing.T) {
	good := `{ "specversion":"1.0", "id":"e-1", "source":"/s", "type":"` + CellPrefix + `failed", "data":{"cellId":"c-1","reason":"oom"} }`
	c, err := Check([]byte(good))
	if err != nil {
		t.Fatalf("Check(good) = %v", err)
	}
	if c.ID != "e-1" || c.Subject != "cellos.events.cell.c-1.failed" || c.Kind != KindCell || c.EntityID != "c-1" || c.Phase != "failed" {
		t.Errorf("Check(good) = %+v", c)
	}
	if strings.Contains(string(c.Payload), " ") {
		t.Errorf("Check(good).Payload = %s, want it compacted", c.Payload)
	}
	for _, tc := range []struct{ body, names string }{
		{`[1]`, "JSON object"},
		{`{"id":"e","source":"/s","type":"` + CellPrefix + `started","data":{"cellId":"c"}}`, "specversion"},
		{`{"specversion":"1.0","id":"e","source":"/s","type":"com.example.x","data":{"cellId":"c"}}`, "type"},
		{`{"specversion":"1.0","id":"e","source":"/s","type":"` + CellPrefix + `started","data":{"cellId":"a b"}}`, "data.cellId"},
		{`{"specversion":"1.0","id":"e","source":"/s","type":"` + FormationPrefix + `created","data":{"cellId":"c"}}`, "data.formationId"},
		{`{"specversion":"1.0","id":"e","source":"/s","type":"` + CellPrefix + `started","time":"yesterday","data":{"cellId":"c"}}`, "time"},
		{`{"specversion":"1.0","id":"e","source":"/s","type":"` + CellPrefix + `started","Data":{},"data":{"cellId":"c"}}`, "attribute name"},
	} {
		_, err := Check([]byte(tc.body))
		var inv *Invalid
		if !errors.As(err, &inv) || !strings.Contains(inv.Reason, tc.names) {
			t.Errorf("Check(%s) = %v, want an *Invalid naming %q", tc.body, err, tc.names)
		}
	}
}

// Route derives the subject of any event of the CellOS namespace, also of
// types v1 does not define, and agrees with Check where both apply.
func TestRoute(t *testing.T) {
	for _, tc := range []struct{ body, subject string }{
		{`{"id":"1","type":"` + CellPrefix + `started","data":{"cellId":"c-1"}}`, "cellos.events.cell.c-1.started"},
		{`{"id":"2","type":"` + ComplianceType + `","data":{"cellId":"c-1"}}`, "cellos.events.cell.c-1.summary"},
		{`{"id":"3","type":"dev.cellos.events.cell.telemetry.v1.sample","data":{"cellId":"c-2"}}`, "cellos.events.cell.c-2.sample"},
		{`{"id":"4","type":"dev.cellos.events.formation.audit.v1.note","data":{"formationId":"f-1"}}`, "cellos.events.formation.f-1.note"},
	} {
		subject, _, err := Route([]byte(tc.body))
		if err != nil || subject != tc.subject {
			t.Errorf("Route(%s) = %q, %v, want %q", tc.body, subject, err, tc.subject)
		}
	}
	for _, bad := range []string{`{"type":"com.example.x","data":{"cellId":"c"}}`, `{"type":"dev.cellos.events.node.v1.x","data":{}}`, `{"type":"` + CellPrefix + `started","data":{}}`, `nope`} {
		if _, _, err := Route([]byte(bad)); err == nil {
			t.Errorf("Route(%s) = nil error, want one", bad)
		}
	}
}
