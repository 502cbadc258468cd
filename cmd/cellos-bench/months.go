package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// monthsPoint is figure 10 at one step of a long history: what the box
// holds after events have been published far beyond what its stream
// retains.
type monthsPoint struct {
	Events      int     `json:"events"`      // published so far
	StreamMsgs  uint64  `json:"streamMsgs"`  // retained
	StreamFirst uint64  `json:"streamFirst"` // the floor
	Formations  int     `json:"formations"`  // the registry, from /v1/status
	Cells       int     `json:"cells"`       //
	StateBytes  int64   `json:"stateBytes"`  // checkpoint.db after the step (server running)
	RSSMiB      float64 `json:"rssMiB"`      // VmRSS of the server at the end of the step
	// WrittenPerEvent is the server's write_bytes (/proc/<pid>/io: what
	// reached the block layer, bbolt and JetStream together) over the
	// step, per event published in it.
	WrittenPerEvent float64    `json:"writtenPerEvent"`
	Boot            bootTiming `json:"boot"`    // a restart from the checkpoint, after a clean stop
	Rebuild         bootTiming `json:"rebuild"` // a copy of the data dir without checkpoint.db
}

// monthsResult is figure 10 of one binary.
type monthsResult struct {
	Events   int           `json:"events"`   // published in all
	Retained int           `json:"retained"` // events the byte cap keeps, about
	MaxBytes int64         `json:"maxBytes"` // the stream's byte cap
	Points   []monthsPoint `json:"points"`
}

// monthsBytesPerEvent is what one demo event takes in the stream (subject
// and Nats-Msg-Id header included), measured: it sizes the byte cap that
// keeps cfg.monthsRetained events.
const monthsBytesPerEvent = 490

// months publishes cfg.monthsEvents demo events into a server whose stream
// keeps about cfg.monthsRetained of them (a byte cap, so that the run does
// not wait for time to pass), in cfg.monthsSteps steps. After each step:
// the registry, the state file, RSS and bytes written per event; then a
// clean stop and a restart (a boot from the checkpoint), and a rebuild of
// a copy of the data dir.
func months(ctx context.Context, cfg *config, b binary, seed uint64) (monthsResult, error) {
	res := monthsResult{Events: cfg.monthsEvents, Retained: cfg.monthsRetained, MaxBytes: int64(cfg.monthsRetained) * monthsBytesPerEvent}
	dir := filepath.Join(cfg.workDir, "months-"+b.Label)
	defer os.RemoveAll(dir)
	args := cfg.serveArgs("--max-bytes", strconv.FormatInt(res.MaxBytes, 10))
	s, _, err := start(ctx, b.Path, dir, cfg.logPath(b, "months"), cfg.bootTimeout, args...)
	if err != nil {
		return res, err
	}
	defer func() { s.kill() }()
	lv := newLive(seed)
	step := cfg.monthsEvents / cfg.monthsSteps
	published := 0
	for i := range cfg.monthsSteps {
		n := step
		if i == cfg.monthsSteps-1 {
			n = cfg.monthsEvents - published
		}
		written0 := procWriteBytes(s.pid())
		nc, js, err := connect(s.NATS, cfg.inflight)
		if err != nil {
			return res, err
		}
		st, err := publish(ctx, js, n, 0, func(int) (message, error) { return lv.next() }, nil)
		nc.Close()
		if err != nil {
			return res, err
		}
		published += n
		status, _, err := s.waitCaughtUp(ctx, st.lastSeq, cfg.loadTimeout)
		if err != nil {
			return res, err
		}
		p := monthsPoint{Events: published}
		p.StreamMsgs, p.StreamFirst = status.Stream.Messages, status.Stream.FirstSeq
		p.Formations, p.Cells = status.Registry.Formations, status.Registry.Cells
		if fi, err := os.Stat(filepath.Join(dir, "checkpoint.db")); err == nil {
			p.StateBytes = fi.Size()
		}
		_, p.RSSMiB = procMem(s.pid())
		p.WrittenPerEvent = float64(procWriteBytes(s.pid())-written0) / float64(n)

		// A boot from the checkpoint, and a rebuild of a copy.
		if err := s.stop(cfg.stopTimeout); err != nil {
			return res, err
		}
		cp := dir + "-copy"
		if err := copyDir(filepath.Join(dir, "jetstream"), filepath.Join(cp, "jetstream")); err != nil {
			return res, err
		}
		if s, p.Boot, err = start(ctx, b.Path, dir, cfg.logPath(b, "months"), cfg.bootTimeout, args...); err != nil {
			return res, err
		}
		r, bt, err := start(ctx, b.Path, cp, cfg.logPath(b, "months-rebuild"), cfg.bootTimeout, args...)
		if err != nil {
			return res, err
		}
		p.Rebuild = bt
		if err := r.stop(cfg.stopTimeout); err != nil {
			return res, err
		}
		if err := os.RemoveAll(cp); err != nil {
			return res, err
		}
		res.Points = append(res.Points, p)
		cfg.say("%-6s months: %s published, %s retained (floor #%d); registry %s formations + %s cells; state %s; RSS %.0f MiB; %.0f B written per event; boot %s, rebuild %s (peak RSS %.0f MiB)",
			b.Label, count(p.Events), count(int(p.StreamMsgs)), p.StreamFirst, count(p.Formations), count(p.Cells),
			bytesMiB(p.StateBytes), p.RSSMiB, p.WrittenPerEvent, secs(p.Boot.Ready), secs(p.Rebuild.Ready), p.Rebuild.HWMMiB)
	}
	return res, s.stop(cfg.stopTimeout)
}

// procWriteBytes is write_bytes of /proc/<pid>/io: the bytes the process
// caused to be written to storage.
func procWriteBytes(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}
