package web

import "testing"

func TestSubjectMatches(t *testing.T) {
	tests := []struct {
		filter, subject string
		want            bool
	}{
		{"cellos.events.>", "cellos.events.cell.c1.started", true},
		{"cellos.events.>", "other.events.cell.c1.started", false},
		{"cellos.events.cell.>", "cellos.events.cell.c1.started", true},
		{"cellos.events.cell.>", "cellos.events.formation.f1.created", false},
		{"cellos.events.cell.>", "cellos.events.cell", false},
		{"cellos.events.cell.*.started", "cellos.events.cell.c1.started", true},
		{"cellos.events.cell.*.started", "cellos.events.cell.c1.failed", false},
		{"cellos.events.cell.*.started", "cellos.events.cell.c1.started.x", false},
		{"cellos.events.cell.*", "cellos.events.cell.c1.started", false},
		{"cellos.events.cell.c1.started", "cellos.events.cell.c1.started", true},
		{"cellos.events.cell.c1.started", "cellos.events.cell.c10.started", false},
		{"cellos.events.*.*.*", "cellos.events.cell.c1.started", true},
		{"cellos.events.*.*.*", "cellos.events.cell.c1", false},
	}
	for _, tt := range tests {
		if got := subjectMatches(tt.filter, tt.subject); got != tt.want {
			t.Errorf("subjectMatches(%q, %q) = %v, want %v", tt.filter, tt.subject, got, tt.want)
		}
	}
}

func TestHubSubPushIsBoundedByBytes(t *testing.T) {
	s := &hubSub{notify: make(chan struct{}, 1), gone: make(chan struct{})}
	f := &hubFrame{seq: 1, frame: make([]byte, 400)}
	for i := range 2 {
		if !s.push(f, 1000) {
			t.Fatalf("push %d within the bound refused", i+1)
		}
	}
	if s.push(f, 1000) {
		t.Error("push past the bound accepted")
	}
	big := &hubFrame{seq: 2, frame: make([]byte, 5000)}
	empty := &hubSub{notify: make(chan struct{}, 1), gone: make(chan struct{})}
	if !empty.push(big, 1000) {
		t.Error("a frame larger than the bound refused on an empty queue; it could never be sent")
	}
}
