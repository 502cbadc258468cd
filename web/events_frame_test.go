package web

import (
	"encoding/json"
	"strings"
	"testing"

	"cellos-allinone/eventlog"
)

func TestAppendEventFrame(t *testing.T) {
	tests := []struct {
		payload string
		want    string // the "event" value
	}{
		{`{"id":"a"}`, `{"id":"a"}`},
		{" \n{\"id\":\"a\"}", " \n{\"id\":\"a\"}"},
		{`not json`, `"not json"`},
		{`[1,2]`, `"[1,2]"`},
		{`"s"`, `"\"s\""`},
		{`{"broken"`, `"{\"broken\""`},
		{"", `""`},
		{"\xff", `"\ufffd"`},
		{`{"html":"<b>&"}`, `{"html":"<b>&"}`},
	}
	for _, tt := range tests {
		d := eventlog.Delivery{Seq: 42, Subject: `cellos.events.cell.c"1.x`, Payload: []byte(tt.payload)}
		got := string(appendEventFrame(nil, d))
		want := `{"type":"event","seq":42,"subject":"cellos.events.cell.c\"1.x","event":` + tt.want + `}`
		if got != want {
			t.Errorf("appendEventFrame(%q) = %s, want %s", tt.payload, got, want)
		}
		if !json.Valid([]byte(got)) {
			t.Errorf("appendEventFrame(%q) = %s: not JSON", tt.payload, got)
		}
	}
}

func TestCloseReason(t *testing.T) {
	e := &Error{Code: CodeCursorExpired, Message: "x", Extra: map[string]any{"firstSeq": uint64(6), "epoch": "2026-01-01T00:00:00.123456789Z", "lastSeq": uint64(9)}}
	if got, want := closeReason(e), `{"firstSeq":6,"epoch":"2026-01-01T00:00:00.123456789Z"}`; got != want {
		t.Errorf("closeReason(4410) = %s, want %s", got, want)
	}
	long := &Error{Code: CodeSlowClient, Message: strings.Repeat("m", 200)}
	if got := closeReason(long); len(got) > 123 {
		t.Errorf("closeReason of a long message has %d bytes, want at most 123", len(got))
	}
}

func TestCloseCodesTable(t *testing.T) {
	want := map[string]int{CodeShuttingDown: 1001, CodeSlowClient: 4408, CodeCursorExpired: 4410, CodeUnavailable: 1011, CodeInternal: 1011}
	for code, status := range want {
		if got := int(closeCodeOf[code]); got != status {
			t.Errorf("closeCodeOf[%s] = %d, want %d", code, got, status)
		}
	}
}

func TestCheckOriginPatterns(t *testing.T) {
	if err := CheckOriginPatterns([]string{"localhost:5173", "https://*.example.com", "*"}); err != nil {
		t.Errorf("valid patterns: %v", err)
	}
	for _, bad := range [][]string{{""}, {"["}} {
		if err := CheckOriginPatterns(bad); err == nil {
			t.Errorf("CheckOriginPatterns(%q) = nil, want an error", bad)
		}
	}
}
