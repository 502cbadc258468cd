package main

import (
	"strconv"
	"strings"
	"testing"

	"cellos-allinone/client"
)

func TestEventLine(t *testing.T) {
	for _, tc := range []struct {
		event string
		want  string
	}{
		{`{"specversion":"1.0","id":"1","source":"s","type":"dev.cellos.events.cell.lifecycle.v1.completed","time":"2026-11-26T10:00:00Z",` +
			`"data":{"cellId":"c-1","formationId":"f-1","tenantId":"acme","exitCode":0}}`,
			"#42 2026-11-26T10:00:00Z cell.lifecycle.v1.completed cell=c-1 formation=f-1 tenant=acme exitCode=0"},
		{`{"type":"dev.cellos.events.cell.lifecycle.v1.failed","data":{"cellId":"c-2","reason":"oom killed","correlation":{"tenantId":"t"}}}`,
			`#42 - cell.lifecycle.v1.failed cell=c-2 tenant=t reason="oom killed"`},
		{`{"type":"dev.cellos.events.formation.lifecycle.v1.created","time":"2026-11-26T10:00:00.250Z","data":{"formationId":"f-1","name":"a=b"}}`,
			`#42 2026-11-26T10:00:00.250Z formation.lifecycle.v1.created formation=f-1 name="a=b"`},
		{`{"type":"com.example.other","data":"not an object"}`, "#42 - com.example.other"},
		{`"not json at all"`, "#42 - (malformed) subject=cellos.events.cell.c-1.started"},
		{`{"id":"no type"}`, "#42 - (malformed) subject=cellos.events.cell.c-1.started"},
	} {
		got := eventLine(client.Event{Seq: 42, Subject: "cellos.events.cell.c-1.started", Event: []byte(tc.event)})
		if got != tc.want {
			t.Errorf("eventLine(%s)\n = %q\nwant %q", tc.event, got, tc.want)
		}
	}
}

func TestSubjectFilter(t *testing.T) {
	for in, want := range map[string]string{
		"":                          "",
		">":                         ">",
		"cell.*.failed":             "cellos.events.cell.*.failed",
		"cellos.events.formation.>": "cellos.events.formation.>",
	} {
		if got := subjectFilter(in); got != want {
			t.Errorf("subjectFilter(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzEventLine: whatever a stored event holds, its line is one line of
// printable text that starts with its sequence.
func FuzzEventLine(f *testing.F) {
	f.Add([]byte(`{"type":"dev.cellos.events.cell.lifecycle.v1.failed","time":"t","data":{"cellId":"c 1","reason":"a\nb"}}`))
	f.Add([]byte(`{"type":"x\u2028y","data":{"tenantId":"\u0000","exitCode":1e400}}`))
	f.Add([]byte(`"raw"`))
	f.Fuzz(func(t *testing.T, event []byte) {
		line := eventLine(client.Event{Seq: 7, Subject: "cellos.events.cell.c.x", Event: event})
		if !strings.HasPrefix(line, "#7 ") {
			t.Fatalf("line %q does not start with the sequence", line)
		}
		for _, r := range line {
			if !strconv.IsPrint(r) {
				t.Fatalf("line %q holds the unprintable %U", line, r)
			}
		}
	})
}
