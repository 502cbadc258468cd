package eventlog_test

import (
	"testing"

	"cellos-allinone/eventlog"
)

func TestCheckFilter(t *testing.T) {
	tests := []struct {
		subject string
		ok      bool
	}{
		{"cellos.events.>", true},
		{"cellos.events.cell.>", true},
		{"cellos.events.cell.*.started", true},
		{"cellos.events.formation.f-1.created", true},
		{"cellos.events.*.*.*", true},
		{"cellos.events.", false},
		{"cellos.events", false},
		{"cellos.>", false},
		{"cellos.*.cell.>", false},
		{">", false},
		{"other.events.>", false},
		{"cellos.events.cell x.>", false},
		{"cellos.events.cell.\t.>", false},
		{"cellos.events..started", false},
		{"cellos.events.cell.", false},
		{"cellos.events.>.started", false},
		{"cellos.events.ce*ll.>", false},
		{"cellos.events.cell.a>", false},
		{"cellos.events.cell.\x00", false},
		{"cellos.events.cell.\xff", false},
	}
	for _, tt := range tests {
		err := eventlog.CheckFilter(tt.subject)
		if (err == nil) != tt.ok {
			t.Errorf("CheckFilter(%q) = %v, want ok %v", tt.subject, err, tt.ok)
		}
	}
}
