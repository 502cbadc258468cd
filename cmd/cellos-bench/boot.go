package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// sizePoint is figures 1–3 for one binary at one size of the stream.
type sizePoint struct {
	Events     int `json:"events"`
	Formations int `json:"formations"` // registry after the boot, /v1/status
	Cells      int `json:"cells"`
	// Start → /readyz 200 with the checkpoint at the stream's end (after a
	// clean shutdown), one per repetition.
	Checkpoint []bootTiming `json:"checkpoint"`
	// Start → /readyz 200 without checkpoint.db: the whole stream folded.
	Rebuild []bootTiming `json:"rebuild"`
	// The server's own replay time of the rebuild (boot.durationMs).
	RebuildReplayMs []float64 `json:"rebuildReplayMs"`
	// checkpoint.db after a rebuild and a clean stop.
	CheckpointBytes int64 `json:"checkpointBytes"`
	// Full size only: start → … after SIGKILL of a ready server.
	Killed []bootTiming `json:"killed,omitempty"`
	// Full size only: an ordered consumer reading the whole stream from
	// the server's NATS port, events/s.
	RawRead []float64 `json:"rawRead,omitempty"`
}

func (p sizePoint) entities() int { return p.Formations + p.Cells }

// stored is a data dir built by ingest: the stream of events and the
// building binary's checkpoint.
type stored struct {
	dir         string
	events      int
	lastPublish time.Time
	dup         time.Duration
}

// waitDupWindow waits until the stream's duplicate window has passed
// since its last publish: nats-server re-reads the messages inside it at
// every start, which would count in a boot long after a real write burst.
func waitDupWindow(ctx context.Context, cfg *config, st stored) error {
	if !cfg.waitDup {
		return nil
	}
	d := time.Until(st.lastPublish.Add(st.dup + 2*time.Second))
	if d <= 0 {
		return nil
	}
	cfg.say("waiting %s for the duplicate window (%s) of the %d-event stream to pass", d.Round(time.Second), st.dup, st.events)
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// bootSize measures the boots of every binary on a copy of st, the
// binaries interleaved in each repetition. full adds the boots after
// SIGKILL and the raw read rate.
func bootSize(ctx context.Context, cfg *config, results []*result, st stored, full bool) error {
	if err := waitDupWindow(ctx, cfg, st); err != nil {
		return err
	}
	dirs := make([]string, len(results))
	points := make([]*sizePoint, len(results))
	for i, r := range results {
		dirs[i] = filepath.Join(cfg.workDir, fmt.Sprintf("%s-%d", r.Bin.Label, st.events))
		if err := copyDir(st.dir, dirs[i]); err != nil {
			return err
		}
		r.Sizes = append(r.Sizes, sizePoint{Events: st.events})
		points[i] = &r.Sizes[len(r.Sizes)-1]
	}
	for rep := range cfg.reps {
		for i, r := range results {
			if err := bootRound(ctx, cfg, r.Bin, dirs[i], points[i], full); err != nil {
				return err
			}
			p := points[i]
			cfg.say("%-6s %8d events, round %d: rebuild %s, from checkpoint %s (peak RSS %.0f MiB)", r.Bin.Label, st.events, rep+1,
				secs(p.Rebuild[rep].Ready), secs(p.Checkpoint[rep].Ready), p.Checkpoint[rep].HWMMiB)
		}
	}
	if !full {
		return nil
	}
	for rep := range cfg.reps {
		for i, r := range results {
			bt, err := killedBoot(ctx, cfg, r.Bin, dirs[i])
			if err != nil {
				return err
			}
			points[i].Killed = append(points[i].Killed, bt)
			cfg.say("%-6s after SIGKILL, round %d: NATS %s, /healthz %s, /readyz %s", r.Bin.Label, rep+1, secs(bt.NATS), secs(bt.Healthz), secs(bt.Ready))
		}
	}
	return nil
}

// bootRound is one rebuild (checkpoint.db removed) and one boot from the
// checkpoint that rebuild left, each followed by a clean stop.
func bootRound(ctx context.Context, cfg *config, bin binary, dir string, p *sizePoint, full bool) error {
	if err := os.Remove(filepath.Join(dir, "checkpoint.db")); err != nil && !os.IsNotExist(err) {
		return err
	}
	s, bt, err := start(ctx, bin.Path, dir, cfg.logPath(bin, "boot"), cfg.bootTimeout, cfg.serveArgs()...)
	if err != nil {
		return err
	}
	p.Rebuild = append(p.Rebuild, bt)
	if st, err := s.status(); err == nil {
		p.RebuildReplayMs = append(p.RebuildReplayMs, float64(st.Boot.DurationMs))
	}
	if err := s.stop(cfg.stopTimeout); err != nil {
		return err
	}
	if fi, err := os.Stat(filepath.Join(dir, "checkpoint.db")); err == nil {
		p.CheckpointBytes = fi.Size()
	}

	s, bt, err = start(ctx, bin.Path, dir, cfg.logPath(bin, "boot"), cfg.bootTimeout, cfg.serveArgs()...)
	if err != nil {
		return err
	}
	defer s.kill()
	p.Checkpoint = append(p.Checkpoint, bt)
	st, err := s.status()
	if err != nil {
		return err
	}
	p.Formations, p.Cells = st.Registry.Formations, st.Registry.Cells
	if full {
		rate, err := readRate(ctx, cfg, s)
		if err != nil {
			return err
		}
		p.RawRead = append(p.RawRead, rate)
	}
	return s.stop(cfg.stopTimeout)
}

// killedBoot starts a ready server, kills it with SIGKILL and times the
// next start.
func killedBoot(ctx context.Context, cfg *config, bin binary, dir string) (bootTiming, error) {
	s, _, err := start(ctx, bin.Path, dir, cfg.logPath(bin, "boot"), cfg.bootTimeout, cfg.serveArgs()...)
	if err != nil {
		return bootTiming{}, err
	}
	s.kill()
	s, bt, err := start(ctx, bin.Path, dir, cfg.logPath(bin, "boot"), cfg.bootTimeout, cfg.serveArgs()...)
	if err != nil {
		return bt, err
	}
	return bt, s.stop(cfg.stopTimeout)
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }
