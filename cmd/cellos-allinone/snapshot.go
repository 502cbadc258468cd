package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"cellos-allinone/app"
	"cellos-allinone/client"
	natsembed "cellos-allinone/embed"
	"cellos-allinone/eventlog"
	"cellos-allinone/projection"
	"cellos-allinone/projector"
	"cellos-allinone/store"
)

const snapshotUsage = `Usage: cellos-allinone snapshot inspect|verify|rebuild|hash [flags]

  inspect   show the checkpoint: cursor, epoch, schema, counters, entity counts, file size
            with its live and free pages (server stopped; reads <data-dir>/checkpoint.db)
  verify    fold the stream from its first sequence in a scratch projection and diff it
            against the checkpoint (server stopped, --data-dir) or against a running
            server (--server URL with --nats-url); once events expired, what the retained
            log proves under the retention rule; exit 1 with the first differences
  rebuild   discard the checkpoint (kept aside) and build a new one from the stream
            (server stopped)
  hash      the state hash of the checkpoint (--data-dir) or of a running server (--server)
            beside that of a fold of the stream at the same cursor (--at SEQ: up to SEQ);
            exit 1 when they are comparable and differ

Examples:
  cellos-allinone snapshot inspect --data-dir ./cellos-data
  cellos-allinone snapshot verify --server http://127.0.0.1:8080 --nats-url nats://127.0.0.1:4222
  cellos-allinone snapshot rebuild --data-dir ./cellos-data
  cellos-allinone snapshot hash --data-dir ./cellos-data`

func snapshot(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"want a subcommand: inspect, verify, rebuild or hash\n\n" + snapshotUsage}
	}
	switch args[0] {
	case "inspect":
		return snapshotInspect(args[1:], stdout, stderr)
	case "verify":
		return snapshotVerify(ctx, args[1:], stdout, stderr)
	case "rebuild":
		return snapshotRebuild(ctx, args[1:], stdout, stderr)
	case "hash":
		return snapshotHash(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, snapshotUsage)
		return nil
	}
	return usageError{fmt.Sprintf("unknown subcommand %q\n\n%s", args[0], snapshotUsage)}
}

func dataDirFlag(fs *flag.FlagSet) *string {
	return fs.String("data-dir", app.DefaultDataDir, "the server's data directory")
}

// openCheckpoint opens the checkpoint of a stopped server for the
// diagnostics (inspect, verify, hash), read-only: a diagnostic never
// changes the data dir — a file it cannot read stays where it is, for the
// next start to move aside (store.OpenReadOnly). A running server holds
// the file's lock: that is reported, never waited out.
func openCheckpoint(dataDir string) (*store.Store, error) {
	path := filepath.Join(dataDir, app.CheckpointFile)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no checkpoint at %s: %w", path, err)
	}
	st, err := store.OpenReadOnly(path)
	if errors.Is(err, store.ErrLocked) {
		return nil, fmt.Errorf("%s is in use by a running server: stop it, or use --server with verify or hash", path)
	}
	if err != nil {
		return nil, fmt.Errorf("%w (the next start moves it aside and rebuilds)", err)
	}
	return st, nil
}

// openCheckpointToRebuild opens the checkpoint of a stopped server for
// snapshot rebuild, which replaces it anyway: a file bbolt cannot read is
// moved aside (store.Open), and st is then an empty one beside err.
func openCheckpointToRebuild(dataDir string) (*store.Store, error) {
	path := filepath.Join(dataDir, app.CheckpointFile)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no checkpoint at %s: %w", path, err)
	}
	st, aside, err := store.Open(path)
	if errors.Is(err, store.ErrLocked) {
		return nil, fmt.Errorf("%s is in use by a running server: stop it", path)
	}
	if err != nil {
		return nil, err
	}
	if aside != "" {
		return st, fmt.Errorf("%s was unreadable by bbolt and has been moved aside to %s; the next start rebuilds", path, aside)
	}
	return st, nil
}

type inspection struct {
	Path string `json:"path"`
	// fileBytes, liveBytes, freeBytes, pageSize, livePages, freePages:
	// the file's size, what its state takes, and its free pages (which a
	// compaction gives back).
	store.FileStats
	Schema     uint64              `json:"schema"`
	Epoch      string              `json:"epoch"`
	Cursor     uint64              `json:"cursor"`
	CursorID   string              `json:"cursorId"`
	At         time.Time           `json:"at"`
	Events     projection.Counters `json:"events"`
	Formations int                 `json:"formations"`
	Cells      int                 `json:"cells"`
	Pruned     projection.Pruned   `json:"pruned"`
	Gaps       []projection.Gap    `json:"gaps"`
}

func snapshotInspect(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("snapshot inspect", "Shows what the checkpoint of a stopped server holds.",
		"cellos-allinone snapshot inspect --data-dir ./cellos-data -o json")
	fs.SetOutput(stderr)
	dataDir := dataDirFlag(fs)
	out := bindOutput(fs, "text", "json")
	if err := parse(fs, args); err != nil {
		return err
	}
	st, err := openCheckpoint(*dataDir)
	if err != nil {
		return err
	}
	defer st.Close()
	cp, found, err := st.Info()
	if err != nil {
		return fmt.Errorf("checkpoint unreadable: %w (the next start moves it aside and rebuilds)", err)
	}
	if !found {
		return errors.New("the checkpoint file holds no checkpoint yet")
	}
	fileStats, err := st.FileStats()
	if err != nil {
		return fmt.Errorf("checkpoint unreadable: %w", err)
	}
	in := inspection{Path: st.Path(), FileStats: fileStats, Schema: cp.Schema, Epoch: cp.Epoch,
		Cursor: cp.Meta.Cursor, CursorID: cp.Meta.CursorID, At: cp.At, Events: cp.Meta.Counters, Pruned: cp.Meta.Pruned, Gaps: cp.Meta.Gaps}
	if in.Events.UntenantedOfTenant == nil {
		in.Events.UntenantedOfTenant = map[string]uint64{}
	}
	if cp.Schema == store.SchemaVersion {
		err := st.View(func(v *store.View) error {
			in.Formations, in.Cells = v.Size()
			return nil
		})
		if err != nil {
			return fmt.Errorf("checkpoint records unreadable: %w", err)
		}
	}
	if out.value == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(in)
	}
	fmt.Fprintf(stdout, "path        %s\nfile        %d bytes\npages       %d bytes each: %d live (%d bytes), %d free (%d bytes, %s)\nschema      %d (this binary: %d)\nepoch       %s\n",
		in.Path, in.FileBytes, in.PageSize, in.LivePages, in.LiveBytes, in.FreePages, in.FreeBytes, freeText(in.FileStats),
		in.Schema, store.SchemaVersion, in.Epoch)
	fmt.Fprintf(stdout, "cursor      %d (message id %q)\nwritten at  %s\n", in.Cursor, in.CursorID, in.At.Format(time.RFC3339))
	fmt.Fprintf(stdout, "events      applied %d, ignored %d, malformed %d, rejected %d\nuntenanted  %s\nregistry    %d formations, %d cells\n",
		in.Events.Applied, in.Events.Ignored, in.Events.Malformed, in.Events.Rejected, untenantedText(in.Events.UntenantedOfTenant),
		in.Formations, in.Cells)
	fmt.Fprintf(stdout, "pruned      %d formations, %d cells (retention rule, at floor %d)\ngaps        %v\n",
		in.Pruned.Formations, in.Pruned.Cells, in.Pruned.Floor, in.Gaps)
	return nil
}

// freeText says what share of the file's pages is free, and whether a
// server with the default thresholds compacts it (docs/operations.md).
func freeText(fs store.FileStats) string {
	pages := fs.LivePages + fs.FreePages
	if pages == 0 {
		return "no pages"
	}
	share := float64(fs.FreePages) / float64(pages)
	if fs.FreeBytes > projector.DefaultCompactMinFree && share > projector.DefaultCompactFreeRatio {
		return fmt.Sprintf("%.0f%% of the pages: over the default --compact-min-free, the next start compacts it", 100*share)
	}
	return fmt.Sprintf("%.0f%% of the pages", 100*share)
}

// untenantedText lists the events published untenanted per tenant, most
// first: the producers that should move to the tenant form.
func untenantedText(m map[string]uint64) string {
	if len(m) == 0 {
		return "none of a tenant"
	}
	tenants := slices.SortedFunc(maps.Keys(m), func(a, b string) int {
		return cmp.Or(cmp.Compare(m[b], m[a]), strings.Compare(a, b))
	})
	var parts []string
	for i, t := range tenants {
		if i == 10 {
			parts = append(parts, fmt.Sprintf("… %d tenants more", len(tenants)-i))
			break
		}
		parts = append(parts, fmt.Sprintf("%s %d", t, m[t]))
	}
	return strings.Join(parts, ", ")
}

// offlineLog starts the data dir's embedded NATS on a free loopback port
// (the server must be stopped: the caller holds the checkpoint lock).
func offlineLog(ctx context.Context, dataDir string) (*eventlog.Stream, func(), error) {
	srv, err := natsembed.Start(natsembed.Options{DataDir: dataDir, Addr: "127.0.0.1:0"})
	if err != nil {
		return nil, nil, err
	}
	nc, err := srv.Connect()
	if err != nil {
		srv.Shutdown()
		return nil, nil, err
	}
	stop := func() { nc.Close(); srv.Shutdown() }
	l, err := eventlog.Attach(ctx, nc)
	if err != nil {
		stop()
		return nil, nil, err
	}
	return l, stop, nil
}

func snapshotVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("snapshot verify",
		"Folds the stream from its first retained sequence in a scratch projection and compares it,\n"+
			"entity by entity, with the checkpoint of a stopped server (--data-dir) or with what a running\n"+
			"server serves (--server, reading the stream through --nats-url). Once events have expired,\n"+
			"--data-dir compares what the retained log proves under the retention rule (docs/design.md §3).\n"+
			"Exit 1 on any difference.",
		"cellos-allinone snapshot verify --server http://127.0.0.1:8080")
	fs.SetOutput(stderr)
	dataDir := dataDirFlag(fs)
	var rm remote
	rm.bind(fs, "")
	fs.Lookup("server").Usage = "verify this running server instead of a stopped data dir"
	natsURL := fs.String("nats-url", "nats://127.0.0.1:4222", "NATS of the running server (with --server)")
	maxDiffs := fs.Int("max-diffs", 10, "show at most this many differences")
	if err := parse(fs, args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	var v verdict
	var err error
	if rm.server != "" {
		v, err = verifyServer(ctx, &rm, *natsURL, *maxDiffs)
	} else {
		v, err = verifyDataDir(ctx, *dataDir, *maxDiffs)
	}
	if err != nil {
		return err
	}
	if len(v.diffs) == 0 {
		fmt.Fprintf(stdout, "ok: %s\n", v.ok)
		return nil
	}
	for _, d := range v.diffs {
		fmt.Fprintln(stdout, d)
	}
	return fmt.Errorf("the projection at cursor %d differs from a fold of the stream (first %d differences above)%s", v.cursor, len(v.diffs), v.note)
}

// verdict is what a verify found: the differences, or what it proved.
type verdict struct {
	cursor uint64
	diffs  []string
	ok     string // what was proved, when nothing differs
	note   string // said beside the differences
}

// verifyDataDir compares the checkpoint of a stopped server with a fold
// of the retained log: the entities it proves (projection.CompareRetained)
// and, from the records alone, every index, count and aggregate and the
// retention rule (store.View.Check). While nothing has expired, the
// summary and the event counters are compared with the fold's too.
func verifyDataDir(ctx context.Context, dataDir string, most int) (verdict, error) {
	st, err := openCheckpoint(dataDir)
	if err != nil {
		return verdict{}, err
	}
	defer st.Close()
	cp, found, err := st.Info()
	if err != nil || !found || cp.Schema != store.SchemaVersion {
		return verdict{}, fmt.Errorf("no usable checkpoint (found %v, schema %d, err %v): nothing to verify", found, cp.Schema, err)
	}
	var held projection.Registry
	var storedSummary projection.Summary
	// derived lists what the state keeps beside its records (indexes,
	// counts, aggregates) and disagrees with them, and what it holds that
	// the retention rule removes: the lists and summaries are answered
	// from those.
	var derived []string
	err = st.View(func(v *store.View) error {
		held = v.Registry()
		derived = v.Check(most)
		storedSummary = v.Summary("")
		return nil
	})
	if err != nil {
		return verdict{}, fmt.Errorf("checkpoint records unreadable: %w", err)
	}
	l, stop, err := offlineLog(ctx, dataDir)
	if err != nil {
		return verdict{}, err
	}
	defer stop()
	if l.Epoch() != cp.Epoch {
		return verdict{}, fmt.Errorf("checkpoint is of stream epoch %s, the stream's is %s: the next start rebuilds", cp.Epoch, l.Epoch())
	}
	window, floor, err := projector.FoldWindow(ctx, l, cp.Meta.Cursor)
	if err != nil {
		return verdict{}, err
	}
	diffs, rep := projection.CompareRetained(projection.FromRegistry(held, cp.Meta), window, floor, most)
	v := verdict{cursor: cp.Meta.Cursor, diffs: append(diffs, derived...)}
	if floor <= 1 {
		if w, g := fmt.Sprintf("%+v", window.Summary("")), fmt.Sprintf("%+v", storedSummary); w != g {
			v.diffs = append(v.diffs, fmt.Sprintf("summary:\n  want %s\n  got  %s", w, g))
		}
		if !window.Counters().Equal(cp.Meta.Counters) {
			v.diffs = append(v.diffs, fmt.Sprintf("event counters:\n  want %+v\n  got  %+v", window.Counters(), cp.Meta.Counters))
		}
		live := 0
		for _, f := range held.Formations {
			if !f.Deleted {
				live++
			}
		}
		v.ok = fmt.Sprintf("%d formations and %d cells at cursor %d equal a fold of the stream; its indexes, cell counts, tenant aggregates and summary agree",
			live, len(held.Cells), cp.Meta.Cursor)
		return v, nil
	}
	// The counters count every event folded, also those that expired.
	v.note = fmt.Sprintf(" (events 1..%d expired: compared by the retention rule, docs/design.md §3)", floor-1)
	v.ok = fmt.Sprintf("at cursor %d, events 1..%d expired: %d entities born in the retained window equal a fold of it, "+
		"%d held from before it are kept by the retention rule (live, or their last event retained)%s; "+
		"its indexes, cell counts, tenant aggregates and pruning agree (pruned so far: %d formations, %d cells)",
		cp.Meta.Cursor, floor-1, rep.Proved, rep.Before, prunedNote(rep.Pruned), cp.Meta.Pruned.Formations, cp.Meta.Pruned.Cells)
	return v, nil
}

// prunedNote says how many held entities the rule removes at the floor now.
func prunedNote(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(", %d more ended before the floor (the server's next commit prunes them)", n)
}

// verifyServer reads a running server's registry at one cursor and folds
// the stream through that cursor. The registry is read page by page; if
// the cursor moves meanwhile, it is read again. A served registry does not
// carry the spans the retention rule needs: once events have expired, the
// entities that differ from a fold of the retained window cannot be told
// apart from those held from before it, and only --data-dir proves them.
func verifyServer(ctx context.Context, rm *remote, natsURL string, most int) (verdict, error) {
	c, err := rm.client("")
	if err != nil {
		return verdict{}, err
	}
	nc, err := rm.connectNATS(natsURL, "cellos-allinone snapshot verify")
	if err != nil {
		return verdict{}, err
	}
	defer nc.Close()
	l, err := eventlog.Attach(ctx, nc)
	if err != nil {
		return verdict{}, err
	}
	for attempt := 0; attempt < 5; attempt++ {
		got, cursor, consistent, err := servedRegistry(ctx, c)
		if err != nil {
			return verdict{}, remoteError(rm.server, err, false)
		}
		if !consistent {
			continue
		}
		window, floor, err := projector.FoldWindow(ctx, l, cursor)
		if err != nil {
			return verdict{}, err
		}
		want := window.Entities()
		if floor <= 1 {
			return verdict{cursor: cursor, diffs: projection.DiffEntities(want, got, most),
				ok: fmt.Sprintf("%d formations and %d cells at cursor %d equal a fold of the stream", len(want.Formations), len(want.Cells), cursor)}, nil
		}
		same := 0
		for _, kind := range []struct{ w, g map[string][]byte }{{want.Formations, got.Formations}, {want.Cells, got.Cells}} {
			for id, rec := range kind.w {
				if bytes.Equal(kind.g[id], rec) {
					same++
				}
			}
		}
		return verdict{cursor: cursor, ok: fmt.Sprintf("at cursor %d, events 1..%d expired: %d of the %d served entities equal a fold of the retained window; "+
			"a running server does not serve the spans that tell which of the others it holds from before the window — "+
			"stop it and verify --data-dir for the proof by the retention rule",
			cursor, floor-1, same, len(got.Formations)+len(got.Cells))}, nil
	}
	return verdict{}, errors.New("the server's cursor kept moving while its registry was read; verify when the stream is quiet")
}

func servedRegistry(ctx context.Context, c *client.Client) (e projection.Entities, cursor uint64, consistent bool, err error) {
	e = projection.NewEntities()
	first := true
	same := func(cur uint64) bool {
		if first {
			cursor, first = cur, false
		}
		return cur == cursor
	}
	for after := ""; ; {
		pg, err := c.Formations(ctx, client.FormationQuery{Limit: projection.MaxLimit, After: after})
		if err != nil {
			return e, 0, false, err
		}
		if !same(pg.Cursor) {
			return e, cursor, false, nil
		}
		for _, f := range pg.Formations {
			e.AddFormation(f)
		}
		if after = pg.Next; after == "" {
			break
		}
	}
	for after := ""; ; {
		pg, err := c.Cells(ctx, client.CellQuery{Limit: projection.MaxLimit, After: after})
		if err != nil {
			return e, 0, false, err
		}
		if !same(pg.Cursor) {
			return e, cursor, false, nil
		}
		for _, cell := range pg.Cells {
			e.AddCell(cell)
		}
		if after = pg.Next; after == "" {
			break
		}
	}
	return e, cursor, true, nil
}

func snapshotRebuild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("snapshot rebuild",
		"Moves the checkpoint of a stopped server aside and builds a new one from the whole stream.",
		"cellos-allinone snapshot rebuild --data-dir ./cellos-data")
	fs.SetOutput(stderr)
	dataDir := dataDirFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	st, err := openCheckpointToRebuild(*dataDir)
	if err != nil && st == nil {
		return err
	}
	defer st.Close()
	aside, err := st.Quarantine()
	if err != nil {
		return fmt.Errorf("move the checkpoint aside: %w", err)
	}
	fmt.Fprintf(stdout, "old checkpoint kept as %s\n", aside)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	l, stop, err := offlineLog(ctx, *dataDir)
	if err != nil {
		return err
	}
	defer stop()
	p := projector.New(l, st, projector.Config{})
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	if err := p.WaitReady(ctx); err != nil {
		return err
	}
	cancel() // Run writes the final checkpoint as it stops
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	b := p.BootInfo()
	fmt.Fprintf(stdout, "rebuilt from %d events in %d ms: checkpoint at cursor %d\n", b.Replayed, b.DurationMs, b.ReplayTo)
	return nil
}
