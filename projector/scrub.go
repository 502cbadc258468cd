package projector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"cellos-allinone/store"
)

// The projector scrubs the served state (store.Scrub, docs/durability.md
// "The scrub"): a pass at ScrubBudget of one core every ScrubInterval,
// and one as soon as the state is served after an unclean start. A pass
// that finds damage asks for the repair a damaged read asks for
// (repair.go): the state is rebuilt from the stream beside the served
// one and the damaged file kept aside. Each step of a pass holds the
// served lock as a read does, so no step reads a file being replaced;
// while a rebuild or a repair runs the pass waits, and once the state it
// checked was replaced it starts over on the new one.
//
// What the scrub found and when the previous run stopped is kept in a
// small JSON file beside the state file (IntegritySuffix). A run marks it
// open when it starts (written, synced, its directory synced) and closed
// when it stops cleanly: a start that finds it open follows a run that
// did not stop cleanly (killed, crashed, a power cut). So does a start
// that finds none beside a state that holds commits (a state of an
// earlier version, or a lost file). Keeping the last pass's time there
// also keeps a box that restarts more often than ScrubInterval scrubbing
// on schedule: the next pass is due ScrubInterval after the last complete
// one, or after the first start that kept the file.

// Defaults of Config's scrub settings.
const (
	DefaultScrubInterval = 24 * time.Hour
	DefaultScrubBudget   = store.DefaultScrubBudget
)

// IntegritySuffix names the file beside the state file that keeps whether
// a run is open and what the last scrub found.
const IntegritySuffix = ".integrity"

// IntegrityStatus is the integrity object of /v1/status: the scrub's last
// results and schedule.
type IntegrityStatus struct {
	// LastScrub is when the last complete pass ended; null before one.
	LastScrub *time.Time `json:"lastScrub"`
	// Checked and Damaged: the keys the last pass checked, and the damage
	// it found (a pass that finds damage ends there: the state is being
	// rebuilt).
	Checked uint64 `json:"checked"`
	Damaged int    `json:"damaged"`
	// Scrubbing: a pass is under way.
	Scrubbing bool `json:"scrubbing"`
	// NextScrub is when the next pass is due; null while one runs or
	// when scrubbing is off.
	NextScrub *time.Time `json:"nextScrub"`
	// LastDamage describes the first damage of the last pass that found
	// any; "" when none did.
	LastDamage string `json:"lastDamage"`
	// UncleanStart: the run before this one did not stop cleanly (a pass
	// follows the boot).
	UncleanStart bool `json:"uncleanStart"`
	// Hash is the last state hash computed since start (GET
	// /v1/status?hash=1, or snapshot hash --server); null until one was
	// (hash.go).
	Hash *StateHash `json:"hash"`
}

// integrityRecord is the file's content.
type integrityRecord struct {
	Open bool `json:"open"`
	// Since is when the first run that kept the file started: the
	// schedule's origin before any complete pass.
	Since      time.Time  `json:"since"`
	LastScrub  *time.Time `json:"lastScrub"`
	Checked    uint64     `json:"checked"`
	Damaged    int        `json:"damaged"`
	LastDamage string     `json:"lastDamage"`
	// Checking: bbolt's check is under way. It runs on a goroutine of
	// its own, where a fault or a runaway loop over a damaged page ends
	// the process: a start that finds it set does not run the check
	// again before a repair (the first pass reports it as damage), so
	// that it cannot become a crash loop.
	Checking bool `json:"checking,omitempty"`
}

// integrity is what the projector knows of its scrubs.
type integrity struct {
	mu      sync.Mutex
	path    string // of the record; "" before Run
	rec     integrityRecord
	unclean bool
	running int
	next    *time.Time
	// skipCheck: the record said bbolt's check was under way when the
	// last run ended; the next pass does not run it.
	skipCheck bool
	// wmu serialises the record's writes, made outside mu: a write syncs
	// a file and a directory (slow on an SD card) and the status and the
	// metrics take mu.
	wmu sync.Mutex
}

// save writes the record as it is now; the caller does not hold in.mu.
func (in *integrity) save() error {
	in.wmu.Lock()
	defer in.wmu.Unlock()
	in.mu.Lock()
	path, rec := in.path, in.rec
	in.mu.Unlock()
	if path == "" {
		return nil
	}
	return writeRecord(path, rec)
}

func (in *integrity) status() IntegrityStatus {
	in.mu.Lock()
	defer in.mu.Unlock()
	return IntegrityStatus{
		LastScrub: in.rec.LastScrub, Checked: in.rec.Checked, Damaged: in.rec.Damaged,
		Scrubbing: in.running > 0, NextScrub: in.next, LastDamage: in.rec.LastDamage, UncleanStart: in.unclean,
	}
}

// lastComplete is the end of the last complete pass, as Unix seconds; 0
// before one.
func (in *integrity) lastComplete() float64 {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.rec.LastScrub == nil {
		return 0
	}
	return float64(in.rec.LastScrub.UnixNano()) / 1e9
}

func (in *integrity) scrubbing() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.running > 0
}

// openRun reads the record beside the state file and tells whether the
// last run stopped cleanly; markOpen, once the start succeeded, marks
// this one open (a start that fails is no unclean stop).
func (p *Projector) openRun() {
	in := &p.integ
	in.mu.Lock()
	in.path = p.served.Path() + IntegritySuffix
	raw, err := os.ReadFile(in.path)
	switch {
	case err == nil && json.Unmarshal(raw, &in.rec) == nil:
		in.unclean = in.rec.Open
	case err == nil:
		in.unclean = true // unreadable: nothing says the run stopped cleanly
		in.rec = integrityRecord{}
	default:
		// None: a state that holds commits was left by a run that kept
		// no record.
		cp, found, ierr := p.served.Info()
		in.unclean = ierr != nil || found && cp.Meta.Cursor > 0
	}
	if in.rec.Since.IsZero() {
		in.rec.Since = time.Now().UTC()
	}
	if in.unclean {
		p.log.Warn("the last run did not stop cleanly; the state is scrubbed once it is served", "record", in.path)
	}
	if in.rec.Checking {
		in.skipCheck = true
		p.log.Error("the last run ended during bbolt's check of the state; the first pass does not run it and asks for a repair", "record", in.path)
	}
	in.mu.Unlock()
}

// markOpen marks the run open in the record.
func (p *Projector) markOpen() {
	p.integ.mu.Lock()
	p.integ.rec.Open = true
	p.integ.mu.Unlock()
	if err := p.integ.save(); err != nil {
		p.log.Warn("cannot write the integrity record; the next start takes this one for unclean", "err", err)
	}
}

// closeRun marks the run closed: it stopped cleanly.
func (p *Projector) closeRun() {
	in := &p.integ
	in.mu.Lock()
	if in.path == "" {
		in.mu.Unlock()
		return
	}
	in.rec.Open = false
	in.mu.Unlock()
	if err := in.save(); err != nil {
		p.log.Warn("cannot write the integrity record; the next start takes this one for unclean", "err", err)
	}
}

// writeRecord replaces the record at path durably (writeRecordFile); a
// variable so that a test can make it slow.
var writeRecord = writeRecordFile

// writeRecordFile replaces the record at path durably: a copy beside it,
// synced, renamed over it, the directory synced.
func writeRecordFile(path string, rec integrityRecord) error {
	raw, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(append(raw, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// scrubLoop runs the scheduled passes until ctx ends: once the state is
// served, at once after an unclean start, else ScrubInterval after the
// last complete pass (or the record's origin); then ScrubInterval after
// each pass, and at once after a pass that found damage or whose state
// was replaced under it (the rebuilt one is checked, once its repair is
// done) — but for damage found again right after its repair, which backs
// off (scrubRepeatBackoff, doubling up to ScrubInterval).
func (p *Projector) scrubLoop(ctx context.Context) {
	if p.cfg.ScrubInterval < 0 {
		return
	}
	select {
	case <-p.ready:
	case <-ctx.Done():
		return
	}
	p.integ.mu.Lock()
	next := p.integ.rec.Since
	if p.integ.rec.LastScrub != nil {
		next = *p.integ.rec.LastScrub
	}
	next = next.Add(p.cfg.ScrubInterval)
	if p.integ.unclean {
		next = time.Now()
	}
	p.integ.mu.Unlock()
	// repairedFor is the finding the last repair the loop asked for was
	// for. The pass after it checks the rebuilt state: the same finding
	// there is no damage of the disk but a rule of the scrub that
	// disagrees with the writer — a rebuild would find it again, forever.
	// It is not repaired again: it is logged at error, kept in the status
	// and the metrics (the alert fires), and the passes back off.
	var repairedFor string
	var backoff time.Duration
	for {
		p.integ.mu.Lock()
		p.integ.next = &next
		p.integ.mu.Unlock()
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		rep, err := p.scrubPass(ctx, p.cfg.ScrubBudget, true, repairedFor)
		if ctx.Err() != nil {
			return
		}
		next = time.Now().Add(p.cfg.ScrubInterval)
		switch {
		case rep.Damaged > 0 && rep.Damage[0] == repairedFor:
			// Found again on the state its repair rebuilt: not repaired
			// again; the next pass backs off.
			if backoff = 2 * backoff; backoff == 0 {
				backoff = scrubRepeatBackoff
			}
			backoff = min(backoff, p.cfg.ScrubInterval)
			next = time.Now().Add(backoff)
		case rep.Damaged > 0:
			repairedFor, backoff = rep.Damage[0], 0
			next = time.Now()
		case errors.Is(err, store.ErrFileChanged):
			next = time.Now()
		case err != nil:
			p.log.Warn("scrub pass ended early; the next one is due at the interval", "err", err)
		default:
			repairedFor, backoff = "", 0
		}
	}
}

// scrubRepeatBackoff is the first pause after a pass that found again
// what the repair before it was for; it doubles up to ScrubInterval.
const scrubRepeatBackoff = time.Minute

// ScrubNow runs one whole pass over the served state at full speed and
// reports it; damage it finds asks for a repair at once, and the pass goes
// on over the damaged state until it ends or the repaired state replaces
// it. A pass that starts while a rebuild or repair runs waits for it.
func (p *Projector) ScrubNow(ctx context.Context) (store.ScrubReport, error) {
	for attempt := 0; ; attempt++ {
		rep, err := p.scrubPass(ctx, 1, false, "")
		if errors.Is(err, store.ErrFileChanged) {
			if rep.Damaged > 0 {
				return rep, nil // replaced by its repair
			}
			if attempt < 3 {
				continue
			}
		}
		return rep, err
	}
}

// errNotRunning ends a scrub pass once the projector has stopped.
var errNotRunning = errors.New("the projector is not running")

// scrubPass runs one pass at budget. stopAtDamage ends it at the first
// step that found damage (the state is to be replaced: reading on spends
// the budget on it). A pass that completed or found damage is recorded.
// Damage whose first description is noRepair (a repair was for it
// already, see scrubLoop) asks for none.
func (p *Projector) scrubPass(ctx context.Context, budget float64, stopAtDamage bool, noRepair string) (store.ScrubReport, error) {
	p.integ.mu.Lock()
	p.integ.running++
	p.integ.next = nil
	skipCheck := p.integ.skipCheck || p.cfg.scrubSkipCheck
	p.integ.skipCheck = false
	p.integ.mu.Unlock()
	defer func() {
		p.integ.mu.Lock()
		p.integ.running--
		p.integ.mu.Unlock()
	}()
	errStop := errors.New("damage found")
	found, first := false, true
	rep, err := p.served.Scrub(ctx, store.ScrubOptions{
		Budget:    budget,
		StepKeys:  p.cfg.scrubStepKeys,
		SkipCheck: skipCheck,
		Checking: func(on bool) {
			p.integ.mu.Lock()
			p.integ.rec.Checking = on
			p.integ.mu.Unlock()
			if err := p.integ.save(); err != nil {
				p.log.Warn("cannot write the integrity record", "err", err)
			}
		},
		Hold: func(step func()) error {
			if found && stopAtDamage {
				return errStop
			}
			wait := first
			first = false
			return p.holdForScrub(ctx, step, wait)
		},
		OnStep: func(s store.ScrubStep) {
			p.m.scrubKeys.Add(float64(s.Checked))
			if s.Damaged == 0 {
				return
			}
			p.m.scrubDamage.Add(float64(s.Damaged))
			if !found && s.Damage[0] == noRepair {
				found = true
				p.log.Error("the scrub found again, on the state rebuilt for it, what it found before; a rule of the scrub disagrees with the writer: not repairing again", "damage", s.Damage)
			}
			if !found {
				found = true
				p.log.Error("the scrub found damage in the served state; rebuilding it from the stream", "damage", s.Damage)
				p.repair.request(fmt.Sprintf("%s: the scrub found damage: %s", RebuildUnreadable, s.Damage[0]), false)
			}
		},
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	if !rep.Complete && rep.Damaged == 0 && skipCheck {
		p.integ.mu.Lock()
		p.integ.skipCheck = true // not reached: the next pass
		p.integ.mu.Unlock()
	}
	if rep.Complete || rep.Damaged > 0 {
		p.m.scrubPasses.Inc()
		p.integ.mu.Lock()
		// A repair was asked for (or nothing was found): the check is no
		// longer taken for under way.
		p.integ.rec.Checking = false
		if rep.Complete && err == nil {
			at := rep.Finished.UTC()
			p.integ.rec.LastScrub = &at
		}
		p.integ.rec.Checked, p.integ.rec.Damaged = rep.Checked, rep.Damaged
		if rep.Damaged > 0 {
			p.integ.rec.LastDamage = rep.Damage[0]
		}
		p.integ.mu.Unlock()
		if werr := p.integ.save(); werr != nil {
			p.log.Warn("cannot write the integrity record", "err", werr)
		}
		p.log.Info("scrub pass done", "complete", rep.Complete, "checked", rep.Checked, "damaged", rep.Damaged,
			"steps", rep.Steps, "cpu", rep.CPU.Round(time.Millisecond), "duration", rep.Duration.Round(time.Millisecond))
	}
	return rep, err
}

// holdForScrub runs one step of a pass under the served lock, as a read
// holds it. With wait (a pass's first step) it first waits while a
// rebuild or repair runs or the state met damage: the pass is for the
// state that will be served.
func (p *Projector) holdForScrub(ctx context.Context, step func(), wait bool) error {
	for {
		select {
		case <-p.applyDone:
			return errNotRunning
		default:
		}
		if !wait || !p.rebuilding.Load() && !p.repair.active() && !p.broken.Load() {
			p.mu.RLock()
			defer p.mu.RUnlock()
			step()
			return nil
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-p.applyDone:
			t.Stop()
			return errNotRunning
		case <-t.C:
		}
	}
}
