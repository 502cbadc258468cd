package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestReadEvents(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string // "line:event"
		errLine  int      // 0: no error
	}{
		{"jsonl", "{\"a\":1}\n\n{\"b\":2}\n", []string{"1:{\"a\":1}", "3:{\"b\":2}"}, 0},
		{"one line no newline", `{"a":1}`, []string{`1:{"a":1}`}, 0},
		{"pretty", "\n{\n  \"a\": 1,\n  \"b\": [1, 2]\n}\n", []string{`2:{"a":1,"b":[1,2]}`}, 0},
		{"bad second line", "{\"a\":1}\n{\"b\":\n{\"c\":3}\n", []string{`1:{"a":1}`}, 2},
		{"array line", "{\"a\":1}\n[1]\n", []string{`1:{"a":1}`}, 2},
		{"pretty broken", "{\n  \"a\": 1,\n  \"b\" 2\n}\n", nil, 3},
		{"not an object", "[1, 2]\n", nil, 1},
		{"empty", "\n\n", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			err := readEvents(strings.NewReader(tc.in), func(line int, ev []byte) error {
				got = append(got, fmt.Sprintf("%d:%s", line, ev))
				return nil
			})
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("events = %q, want %q", got, tc.want)
			}
			var le lineError
			switch {
			case tc.errLine == 0 && err != nil:
				t.Errorf("err = %v, want nil", err)
			case tc.errLine != 0 && (!errors.As(err, &le) || le.line != tc.errLine):
				t.Errorf("err = %v, want an error at line %d", err, tc.errLine)
			}
		})
	}
}
