package main

import (
	"cellos-allinone/client"

	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"cellos-allinone/event"
)

const publishAbout = `Publishes CloudEvents through POST /v1/events of a running server.

The input (-f FILE, or -f - for standard input) is either one CloudEvent
(a JSON object, pretty-printed or not) or JSONL: one event per line, blank
lines skipped. Events are published in order; the first one that fails
stops the command with its line number (exit 1), after the ones before it
were published. For each event it prints
  seq=<stream sequence> subject=<NATS subject> duplicate=<true|false>
(-o json: the server's answer; -o seq: the sequence alone). duplicate=true:
an event with the same id was published within the server's duplicate
window; nothing was added, and seq is where it was stored the first time.

To read your own writes, pass the last seq to get --min-seq:
  seq=$(cellos-allinone publish -f events.jsonl -o seq | tail -n 1)
  cellos-allinone get formation f-1 --min-seq "$seq"`

// stdin is where "-f -" reads; tests replace it.
var stdin io.Reader = os.Stdin

// maxEventLine bounds one input line; the server refuses far smaller events.
const maxEventLine = 8 << 20

func publish(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		rm   remote
		file string
	)
	fs := newFlagSet("publish", publishAbout, "cellos-allinone publish -f events.jsonl --server http://127.0.0.1:8080")
	fs.SetOutput(stderr)
	rm.bind(fs, client.DefaultServer)
	fs.StringVar(&file, "f", "", "file to publish, - for standard input (required)")
	fs.StringVar(&file, "file", "", "same as -f")
	out := bindOutput(fs, "text", "json", "seq")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected arguments: %v", fs.Args())}
	}
	if file == "" {
		return usageError{"-f FILE (or -f - for standard input) is required"}
	}
	server := rm.server
	c, err := rm.client("")
	if err != nil {
		return err
	}
	in, name := stdin, "standard input"
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		in, name = f, file
	}
	n := 0
	err = readEvents(in, func(line int, ev []byte) error {
		// The server's own rules, checked here first: a bad event is
		// reported with its line before anything is sent for it.
		if _, err := event.Check(ev); err != nil {
			return fmt.Errorf("%s, line %d: invalid event: %w", name, line, err)
		}
		res, err := c.Publish(ctx, ev)
		if err != nil {
			return fmt.Errorf("%s, line %d: %w", name, line, remoteError(server, err, false))
		}
		n++
		switch out.value {
		case "json":
			return writeRaw(stdout, res.Raw)
		case "seq":
			_, err = fmt.Fprintln(stdout, res.Seq)
			return err
		}
		_, err = fmt.Fprintf(stdout, "seq=%d subject=%s duplicate=%t\n", res.Seq, res.Subject, res.Duplicate)
		return err
	})
	if err != nil {
		var le lineError
		if errors.As(err, &le) {
			return fmt.Errorf("%s, line %d: %v", name, le.line, le.msg)
		}
		return err
	}
	if n == 0 {
		return fmt.Errorf("%s holds no event", name)
	}
	return nil
}

// lineError is input that is not an event, at a line.
type lineError struct {
	line int
	msg  string
}

func (e lineError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }

// readEvents calls fn with each event of r and the line it starts on.
// When the first non-blank line is a whole JSON object the input is JSONL
// and is read line by line (so a pipe can feed it for ever); otherwise the
// whole input must be one JSON object.
func readEvents(r io.Reader, fn func(line int, event []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxEventLine)
	line := 0
	var head bytes.Buffer // lines read before the input's form is known
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			head.WriteByte('\n')
			continue
		}
		if b[0] == '{' && json.Valid(b) {
			return readJSONL(sc, line, b, fn)
		}
		// Not one line: a pretty-printed event. Read it whole.
		head.Write(sc.Bytes())
		head.WriteByte('\n')
		for sc.Scan() {
			head.Write(sc.Bytes())
			head.WriteByte('\n')
		}
		if err := sc.Err(); err != nil {
			return scanError(err, line)
		}
		return oneEvent(head.Bytes(), fn)
	}
	return scanError(sc.Err(), line+1)
}

func readJSONL(sc *bufio.Scanner, line int, first []byte, fn func(int, []byte) error) error {
	if err := fn(line, first); err != nil {
		return err
	}
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		if b[0] != '{' || !json.Valid(b) {
			var v any
			err := json.Unmarshal(b, &v)
			if err == nil {
				return lineError{line, "not a JSON object: each line must hold one CloudEvent"}
			}
			return lineError{line, "not valid JSON: " + err.Error()}
		}
		if err := fn(line, b); err != nil {
			return err
		}
	}
	return scanError(sc.Err(), line+1)
}

// oneEvent checks that doc is one JSON object and publishes it.
func oneEvent(doc []byte, fn func(int, []byte) error) error {
	start := bytes.IndexFunc(doc, func(r rune) bool { return r != ' ' && r != '\t' && r != '\n' && r != '\r' })
	firstLine := 1 + bytes.Count(doc[:start], []byte("\n"))
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		line := firstLine
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line = 1 + bytes.Count(doc[:min(int(se.Offset), len(doc))], []byte("\n"))
		}
		return lineError{line, "not valid JSON: " + err.Error()}
	}
	if _, ok := v.(map[string]any); !ok {
		return lineError{firstLine, "not a JSON object: the input must be one CloudEvent or JSONL"}
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, doc); err != nil {
		return lineError{firstLine, err.Error()}
	}
	return fn(firstLine, compact.Bytes())
}

func scanError(err error, line int) error {
	if errors.Is(err, bufio.ErrTooLong) {
		return lineError{line, fmt.Sprintf("longer than %d bytes", maxEventLine)}
	}
	return err
}
