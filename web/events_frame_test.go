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
	want := map[string]struct {
		close int
		end   string
	}{
		CodeShuttingDown:  {1001, EndShutdown},
		CodeSlowClient:    {4408, EndSlow},
		CodeCursorExpired: {4410, EndCursorExpired},
		CodeUnavailable:   {1011, EndError},
		CodeInternal:      {1011, EndError},
	}
	for code, w := range want {
		if ci := infoOf(code); int(ci.close) != w.close || ci.end != w.end {
			t.Errorf("codes[%s] closes with %d as %q, want %d as %q", code, ci.close, ci.end, w.close, w.end)
		}
	}
	for code, ci := range codes {
		if ci.status < 400 || ci.status > 599 {
			t.Errorf("codes[%s].status = %d, want an error status", code, ci.status)
		}
		if (ci.close == 0) != (ci.end == "") {
			t.Errorf("codes[%s]: close %d with end %q: a socket's end needs both", code, ci.close, ci.end)
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
