package main

import (
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

	"github.com/nats-io/nats.go"

	"cellos-allinone/app"
	"cellos-allinone/client"
	natsembed "cellos-allinone/embed"
	"cellos-allinone/eventlog"
	"cellos-allinone/projection"
	"cellos-allinone/projector"
	"cellos-allinone/store"
)

const snapshotUsage = `Usage: cellos-allinone snapshot inspect|verify|rebuild [flags]

  inspect   show the checkpoint: cursor, epoch, schema, counters, entity counts, file size
            with its live and free pages (server stopped; reads <data-dir>/checkpoint.db)
  verify    fold the stream from its first sequence in a scratch projection and diff it
            against the checkpoint (server stopped, --data-dir) or against a running
            server (--server URL with --nats-url); exit 1 with the first differences
  rebuild   discard the checkpoint (kept aside) and build a new one from the stream
            (server stopped)

Examples:
  cellos-allinone snapshot inspect --data-dir ./cellos-data
  cellos-allinone snapshot verify --server http://127.0.0.1:8080 --nats-url nats://127.0.0.1:4222
  cellos-allinone snapshot rebuild --data-dir ./cellos-data`

func snapshot(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"want a subcommand: inspect, verify or rebuild\n\n" + snapshotUsage}
	}
	switch args[0] {
	case "inspect":
		return snapshotInspect(args[1:], stdout, stderr)
	case "verify":
		return snapshotVerify(ctx, args[1:], stdout, stderr)
	case "rebuild":
		return snapshotRebuild(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, snapshotUsage)
		return nil
	}
	return usageError{fmt.Sprintf("unknown subcommand %q\n\n%s", args[0], snapshotUsage)}
}

func dataDirFlag(fs *flag.FlagSet) *string {
	return fs.String("data-dir", app.DefaultDataDir, "the server's data directory")
}

// openCheckpoint opens the checkpoint of a stopped server. A running server
// holds the file's lock: that is reported, never waited out.
func openCheckpoint(dataDir string) (*store.Store, error) {
	path := filepath.Join(dataDir, app.CheckpointFile)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no checkpoint at %s: %w", path, err)
	}
	st, aside, err := store.Open(path)
	if errors.Is(err, store.ErrLocked) {
		return nil, fmt.Errorf("%s is in use by a running server: stop it, or use --server with verify", path)
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
		Cursor: cp.Meta.Cursor, CursorID: cp.Meta.CursorID, At: cp.At, Events: cp.Meta.Counters, Gaps: cp.Meta.Gaps}
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
	fmt.Fprintf(stdout, "events      applied %d, ignored %d, malformed %d, rejected %d\nuntenanted  %s\nregistry    %d formations, %d cells\ngaps        %v\n",
		in.Events.Applied, in.Events.Ignored, in.Events.Malformed, in.Events.Rejected, untenantedText(in.Events.UntenantedOfTenant),
		in.Formations, in.Cells, in.Gaps)
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
		"Folds the stream from its first sequence in a scratch projection and compares it, entity by\n"+
			"entity, with the checkpoint of a stopped server (--data-dir) or with what a running server\n"+
			"serves (--server, reading the stream through --nats-url). Exit 1 on any difference.",
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
	var want, got projection.Entities
	var cursor uint64
	var note string
	// derived lists what the state keeps beside its records (indexes,
	// counts, aggregates, the summary) and disagrees with them or with
	// the fold: the lists and summaries are answered from those.
	var derived []string
	server := rm.server
	if server != "" {
		var err error
		if want, got, cursor, note, err = verifyServer(ctx, &rm, *natsURL); err != nil {
			return err
		}
	} else {
		st, err := openCheckpoint(*dataDir)
		if err != nil {
			return err
		}
		defer st.Close()
		cp, found, err := st.Info()
		if err != nil || !found || cp.Schema != store.SchemaVersion {
			return fmt.Errorf("no usable checkpoint (found %v, schema %d, err %v): nothing to verify", found, cp.Schema, err)
		}
		var stored projection.Entities
		var storedSummary projection.Summary
		err = st.View(func(v *store.View) error {
			stored = v.Entities()
			derived = v.Check(*maxDiffs)
			storedSummary = v.Summary("")
			return nil
		})
		if err != nil {
			return fmt.Errorf("checkpoint records unreadable: %w", err)
		}
		l, stop, err := offlineLog(ctx, *dataDir)
		if err != nil {
			return err
		}
		defer stop()
		if l.Epoch() != cp.Epoch {
			return fmt.Errorf("checkpoint is of stream epoch %s, the stream's is %s: the next start rebuilds", cp.Epoch, l.Epoch())
		}
		scratch, err := projector.FoldLog(ctx, l, cp.Meta.Cursor)
		if err != nil {
			return err
		}
		cursor, want, got = cp.Meta.Cursor, scratch.Entities(), stored
		if w, g := fmt.Sprintf("%+v", scratch.Summary("")), fmt.Sprintf("%+v", storedSummary); w != g {
			derived = append(derived, fmt.Sprintf("summary:\n  want %s\n  got  %s", w, g))
		}
		// The counters count every event folded, also those that expired
		// since: compared only while the stream holds them all.
		if note = expiryNote(ctx, l); note == "" && !scratch.Counters().Equal(cp.Meta.Counters) {
			derived = append(derived, fmt.Sprintf("event counters:\n  want %+v\n  got  %+v", scratch.Counters(), cp.Meta.Counters))
		}
	}
	diffs := append(projection.DiffEntities(want, got, *maxDiffs), derived...)
	if len(diffs) == 0 {
		fmt.Fprintf(stdout, "ok: %d formations and %d cells at cursor %d equal a fold of the stream%s%s\n",
			len(want.Formations), len(want.Cells), cursor, checkedNote(server), note)
		return nil
	}
	for _, d := range diffs {
		fmt.Fprintln(stdout, d)
	}
	return fmt.Errorf("the projection at cursor %d differs from a fold of the stream (first %d differences above)%s", cursor, len(diffs), note)
}

// checkedNote says what more than the entities a verify compared.
func checkedNote(server string) string {
	if server != "" {
		return ""
	}
	return "; its indexes, cell counts, tenant aggregates and summary agree"
}

func expiryNote(ctx context.Context, l *eventlog.Stream) string {
	if st, err := l.State(ctx); err == nil && st.FirstSeq > 1 {
		return fmt.Sprintf(" (note: events 1..%d expired from the stream; entities they touched may legitimately differ)", st.FirstSeq-1)
	}
	return ""
}

// verifyServer reads a running server's registry at one cursor and folds
// the stream through that cursor. The registry is read page by page; if
// the cursor moves meanwhile, it is read again.
func verifyServer(ctx context.Context, rm *remote, natsURL string) (want, got projection.Entities, cursor uint64, note string, err error) {
	c, err := rm.client("")
	if err != nil {
		return want, got, 0, "", err
	}
	opts := []nats.Option{nats.Name("cellos-allinone snapshot verify")}
	if token, _ := rm.credential(); token != "" {
		// An admin's token is also its NATS credential (docs/security.md).
		opts = append(opts, nats.Token(token))
	}
	if rm.cacert != "" {
		opts = append(opts, nats.RootCAs(rm.cacert))
	}
	nc, err := nats.Connect(natsURL, opts...)
	if err != nil {
		return want, got, 0, "", fmt.Errorf("connect to the server's NATS at %s: %w", natsURL, err)
	}
	defer nc.Close()
	l, err := eventlog.Attach(ctx, nc)
	if err != nil {
		return want, got, 0, "", err
	}
	for attempt := 0; attempt < 5; attempt++ {
		var consistent bool
		got, cursor, consistent, err = servedRegistry(ctx, c)
		if err != nil {
			return want, got, 0, "", remoteError(rm.server, err, false)
		}
		if consistent {
			scratch, err := projector.FoldLog(ctx, l, cursor)
			if err != nil {
				return want, got, 0, "", err
			}
			return scratch.Entities(), got, cursor, expiryNote(ctx, l), nil
		}
	}
	return want, got, 0, "", errors.New("the server's cursor kept moving while its registry was read; verify when the stream is quiet")
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
	st, err := openCheckpoint(*dataDir)
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
