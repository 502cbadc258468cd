package eventlog_test

import (
	"errors"
	"math"
	"testing"

	"cellos-allinone/eventlog"
)

func TestStartSeq(t *testing.T) {
	tests := []struct {
		name     string
		since    uint64
		hasSince bool
		last     uint64
		want     uint64
	}{
		{"since N starts at N+1", 41, true, 100, 42},
		{"since 0 starts at 1", 0, true, 100, 1},
		{"since saturates at the uint64 maximum", math.MaxUint64, true, 100, math.MaxUint64},
		{"since at the last sequence waits for the next", 100, true, 100, 101},
		{"no since: only new events, after the last sequence", 0, false, 100, 101},
		{"no since on an empty stream starts at 1", 0, false, 0, 1},
		{"no since ignores the since value", 7, false, 100, 101},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := eventlog.StartSeq(tt.since, tt.hasSince, tt.last); got != tt.want {
				t.Errorf("StartSeq(%d, %v, %d) = %d, want %d", tt.since, tt.hasSince, tt.last, got, tt.want)
			}
		})
	}
}

func TestResume(t *testing.T) {
	st := eventlog.State{Epoch: "E1", FirstSeq: 10, LastSeq: 20}
	tests := []struct {
		name    string
		c       eventlog.Cursor
		st      eventlog.State
		want    uint64
		wantErr bool
	}{
		{"live only", eventlog.Cursor{}, st, 21, false},
		{"since just below the floor resumes at the floor", eventlog.Cursor{Since: 9, HasSince: true}, st, 10, false},
		{"since below the floor", eventlog.Cursor{Since: 8, HasSince: true}, st, 0, true},
		{"since 0 starts at the floor", eventlog.Cursor{Since: 0, HasSince: true}, st, 10, false},
		{"since 1 below the floor", eventlog.Cursor{Since: 1, HasSince: true}, st, 0, true},
		{"since 0 of another epoch", eventlog.Cursor{Since: 0, HasSince: true, Epoch: "E0"}, st, 0, true},
		{"since at the last sequence", eventlog.Cursor{Since: 20, HasSince: true}, st, 21, false},
		{"since beyond the last sequence", eventlog.Cursor{Since: 21, HasSince: true}, st, 0, true},
		{"since at the uint64 maximum", eventlog.Cursor{Since: math.MaxUint64, HasSince: true}, st, 0, true},
		{"matching epoch", eventlog.Cursor{Since: 15, HasSince: true, Epoch: "E1"}, st, 16, false},
		{"other epoch", eventlog.Cursor{Since: 15, HasSince: true, Epoch: "E0"}, st, 0, true},
		{"other epoch without since", eventlog.Cursor{Epoch: "E0"}, st, 0, true},
		{"empty new stream, since 0", eventlog.Cursor{Since: 0, HasSince: true}, eventlog.State{}, 1, false},
		{"purged stream, since at its last sequence", eventlog.Cursor{Since: 20, HasSince: true}, eventlog.State{FirstSeq: 21, LastSeq: 20}, 21, false},
		{"purged stream, since before its last sequence", eventlog.Cursor{Since: 19, HasSince: true}, eventlog.State{FirstSeq: 21, LastSeq: 20}, 0, true},
		{"purged stream, since 0 waits at its floor", eventlog.Cursor{Since: 0, HasSince: true}, eventlog.State{FirstSeq: 21, LastSeq: 20}, 21, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := eventlog.Resume(tt.c, tt.st)
			var ce *eventlog.CursorError
			if tt.wantErr != errors.As(err, &ce) {
				t.Fatalf("Resume(%+v, %+v) error = %v, want error %v", tt.c, tt.st, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("Resume(%+v, %+v) = %d, want %d", tt.c, tt.st, got, tt.want)
			}
			if ce != nil && (ce.State != tt.st || ce.Cursor != tt.c || ce.Error() == "") {
				t.Errorf("Resume(%+v, %+v) error = %+v, want the cursor, the state and a reason", tt.c, tt.st, ce)
			}
		})
	}
}
