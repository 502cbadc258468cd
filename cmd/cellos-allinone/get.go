package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"cellos-allinone/api"
	"cellos-allinone/client"
	"cellos-allinone/projection"
)

const getAbout = `Reads the registry of a running server.

  get formations      list formations (filters: --tenant, --status, --limit, --after, --all)
  get cells           list cells (filters: --tenant, --formation, --state, --outcome, --limit, --after, --all)
  get formation ID    show one formation and the first page of its cells (--limit), or all of them (--all)
  get cell ID         show one cell, with its correlation and compliance summary

Lists are ordered by id, one page at a time (--limit, default 100); when more
remain, the id to pass to --after is printed on stderr. --all fetches every
page. -o json prints the API's JSON body (with --all: one body holding every
item, with the cursor and epoch of the last page). Times are UTC; "-" marks
an empty field. --status and --state are the same filter. --outcome is how a
cell ended — completed, failed, or none — and stays after its teardown.

--min-seq N reads your own writes: the answer holds at least the events up
to sequence N (the seq= publish printed), the server waiting up to --wait
for them (default 5s, at most 30s); past it the command fails with
not_caught_up and the sequence the server had reached.`

// getOpts are the flags of get.
type getOpts struct {
	remote
	tenant, status, outcome, formation, after string
	limit                                     int
	all                                       bool
	minSeq                                    uint64
	wait                                      time.Duration
	out                                       *outputFlag
}

// reads are the read options of the flags: --min-seq and --wait.
func (o getOpts) reads() []client.ReadOption {
	if o.minSeq == 0 {
		return nil
	}
	opts := []client.ReadOption{client.MinSeq(o.minSeq)}
	if o.wait > 0 {
		opts = append(opts, client.Wait(o.wait))
	}
	return opts
}

func get(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o getOpts
	fs := newFlagSet("get formations|cells|formation ID|cell ID", getAbout,
		"cellos-allinone get cells --tenant acme --state failed -o table")
	fs.SetOutput(stderr)
	o.remote.bind(fs, client.DefaultServer)
	fs.StringVar(&o.tenant, "tenant", "", "only this tenant")
	fs.StringVar(&o.status, "status", "", "formations: only this status; cells: only this state")
	fs.StringVar(&o.status, "state", "", "same as --status")
	fs.StringVar(&o.outcome, "outcome", "", "cells: only this outcome (completed, failed, or none)")
	fs.StringVar(&o.formation, "formation", "", "cells: only the cells of this formation")
	fs.IntVar(&o.limit, "limit", 0, "page size, 1 to 1000 (default: the server's, 100)")
	fs.StringVar(&o.after, "after", "", "start after this id (the next page of a list)")
	fs.BoolVar(&o.all, "all", false, "follow the pages to the end of the list (a formation: all its cells)")
	fs.Uint64Var(&o.minSeq, "min-seq", 0, "read your writes: answer only once the events up to this sequence are in (the seq= publish printed)")
	fs.DurationVar(&o.wait, "wait", 0, "with --min-seq: how long the server may wait for it, up to 30s (default: the server's, 5s)")
	o.out = bindOutput(fs, "table", "json")
	pos, given, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageError{"what to get? formations, cells, formation ID or cell ID (see --help)"}
	}
	kind, ids := strings.ToLower(pos[0]), pos[1:]
	if len(ids) > 1 {
		return usageError{fmt.Sprintf("one id at a time, got %d: %v", len(ids), ids)}
	}
	var listFlags []string
	switch kind {
	case "formation", "formations":
		kind, listFlags = "formation", []string{"tenant", "status", "state", "limit", "after", "all"}
		if o.status != "" && !projection.ValidFormationStatus(o.status) {
			return usageError{fmt.Sprintf("--status %q: want created, launching, running, degraded, completed, failed or cancelled", o.status)}
		}
	case "cell", "cells":
		kind, listFlags = "cell", []string{"tenant", "formation", "status", "state", "outcome", "limit", "after", "all"}
		if o.status != "" && !projection.ValidCellState(o.status) {
			return usageError{fmt.Sprintf("--state %q: want admitted, running, completed, failed or destroyed", o.status)}
		}
		if o.outcome != "" && o.outcome != projection.OutcomeCompleted && o.outcome != projection.OutcomeFailed && o.outcome != projection.OutcomeUnset {
			return usageError{fmt.Sprintf("--outcome %q: want completed, failed or none", o.outcome)}
		}
	default:
		return usageError{fmt.Sprintf("cannot get %q: want formations, cells, formation ID or cell ID", pos[0])}
	}
	switch {
	case len(ids) == 1 && kind == "formation":
		// One formation: a page of its cells, or all of them.
		listFlags = []string{"limit", "all"}
	case len(ids) == 1:
		listFlags = nil
	}
	for name := range given {
		if !isGetFlag(name, listFlags) {
			return usageError{fmt.Sprintf("--%s does not apply to %s", name, strings.Join(pos, " "))}
		}
	}
	if o.limit < 0 || o.limit > projection.MaxLimit {
		return usageError{fmt.Sprintf("--limit %d: want 1 to %d", o.limit, projection.MaxLimit)}
	}
	if given["wait"] && (o.minSeq == 0 || o.wait < 0 || o.wait > 30*time.Second) {
		return usageError{fmt.Sprintf("--wait %v: want 0s to 30s, with --min-seq", o.wait)}
	}
	if o.all && o.limit == 0 {
		o.limit = projection.MaxLimit // fewer round trips
	}
	c, err := o.client("")
	if err != nil {
		return err
	}
	switch {
	case kind == "formation" && len(ids) == 1:
		err = getFormation(ctx, c, ids[0], o, stdout, stderr)
	case kind == "cell" && len(ids) == 1:
		err = getCell(ctx, c, ids[0], o, stdout)
	case kind == "formation":
		err = listFormations(ctx, c, o, stdout, stderr)
	default:
		err = listCells(ctx, c, o, stdout, stderr)
	}
	if err != nil {
		return remoteError(o.server, err, true)
	}
	return nil
}

// isGetFlag: --server, -o, --min-seq and --wait apply everywhere, the
// others to lists only (and a formation's cells).
func isGetFlag(name string, listFlags []string) bool {
	switch name {
	case "server", "token", "creds", "cacert", "o", "output", "min-seq", "wait":
		return true
	}
	for _, f := range listFlags {
		if f == name {
			return true
		}
	}
	return false
}

func listFormations(ctx context.Context, c *client.Client, o getOpts, stdout, stderr io.Writer) error {
	q := client.FormationQuery{Tenant: o.tenant, Status: o.status, Limit: o.limit, After: o.after}
	return listPages(o, stdout, stderr, lister[projection.Formation]{
		noun: "formations",
		fetch: func(after string) (page[projection.Formation], error) {
			q.After = after
			l, err := c.Formations(ctx, q, o.reads()...)
			if err != nil {
				return page[projection.Formation]{}, err
			}
			return page[projection.Formation]{l.Formations, l.Next, l.Cursor, l.Epoch, l.Raw}, nil
		},
		whole: func(cursor uint64, epoch string, all []projection.Formation) any {
			return api.FormationList{Cursor: cursor, Epoch: epoch, Formations: all}
		},
		table: formationTable,
	})
}

func listCells(ctx context.Context, c *client.Client, o getOpts, stdout, stderr io.Writer) error {
	q := client.CellQuery{Tenant: o.tenant, Formation: o.formation, State: o.status, Outcome: o.outcome, Limit: o.limit, After: o.after}
	return listPages(o, stdout, stderr, lister[projection.Cell]{
		noun: "cells",
		fetch: func(after string) (page[projection.Cell], error) {
			q.After = after
			l, err := c.Cells(ctx, q, o.reads()...)
			if err != nil {
				return page[projection.Cell]{}, err
			}
			return page[projection.Cell]{l.Cells, l.Next, l.Cursor, l.Epoch, l.Raw}, nil
		},
		whole: func(cursor uint64, epoch string, all []projection.Cell) any {
			return api.CellList{Cursor: cursor, Epoch: epoch, Cells: all}
		},
		table: func(w io.Writer, cells []projection.Cell) error { return cellTable(w, cells, true) },
	})
}

// page is one page of a list as the CLI prints it.
type page[T any] struct {
	items  []T
	next   string
	cursor uint64
	epoch  string
	raw    json.RawMessage
}

// lister is how listPages reads and prints one kind of list.
type lister[T any] struct {
	noun  string
	fetch func(after string) (page[T], error)
	whole func(cursor uint64, epoch string, all []T) any // the JSON body of --all
	table func(io.Writer, []T) error
}

// listPages prints one page (saying on stderr how to get the next), or
// with --all every page as one list with the cursor and epoch of the last.
func listPages[T any](o getOpts, stdout, stderr io.Writer, l lister[T]) error {
	all := []T{}
	after := o.after
	for {
		p, err := l.fetch(after)
		if err != nil {
			return err
		}
		if !o.all {
			if p.next != "" {
				fmt.Fprintf(stderr, "more %s follow: --after %s (or --all)\n", l.noun, p.next)
			}
			if o.out.value == "json" {
				return writeRaw(stdout, p.raw)
			}
			return l.table(stdout, p.items)
		}
		all = append(all, p.items...)
		if p.next == "" {
			if o.out.value == "json" {
				return writeJSON(stdout, l.whole(p.cursor, p.epoch, all))
			}
			return l.table(stdout, all)
		}
		after = p.next
	}
}

// getFormation prints one formation and the first page of its cells
// (saying on stderr how to get the rest), or with --all every cell.
func getFormation(ctx context.Context, c *client.Client, id string, o getOpts, stdout, stderr io.Writer) error {
	var d *client.FormationDetail
	var err error
	if o.all {
		d, err = c.FormationAll(ctx, id, o.reads()...)
	} else {
		opts := o.reads()
		if o.limit > 0 {
			opts = append(opts, client.CellsLimit(o.limit))
		}
		d, err = c.Formation(ctx, id, opts...)
	}
	if err != nil {
		return err
	}
	if d.CellsNext != "" {
		fmt.Fprintf(stderr, "more cells follow: get cells --formation %s --after %s (or get formation %s --all)\n", id, d.CellsNext, id)
	}
	if o.out.value == "json" {
		if o.all {
			return writeJSON(stdout, d.FormationDetail)
		}
		return writeRaw(stdout, d.Raw)
	}
	f := d.Formation
	n := f.Cells
	tw := newTable(stdout)
	fmt.Fprintf(tw, "Formation:\t%s\n", f.ID)
	fmt.Fprintf(tw, "Name:\t%s\n", dash(f.Name))
	fmt.Fprintf(tw, "Tenant:\t%s\n", dash(f.TenantID))
	fmt.Fprintf(tw, "Status:\t%s\n", f.Status)
	fmt.Fprintf(tw, "Labels:\t%s\n", labels(f.Labels))
	fmt.Fprintf(tw, "Cells:\t%d total: %d admitted, %d running, %d destroyed; outcome %d completed, %d failed\n",
		n.Total, n.Admitted, n.Running, n.Destroyed, n.Completed, n.Failed)
	fmt.Fprintf(tw, "Created:\t%s\n", when(f.CreatedAt))
	fmt.Fprintf(tw, "Updated:\t%s\n", when(f.UpdatedAt))
	fmt.Fprintf(tw, "Last seq:\t%d\n", f.LastSeq)
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(d.Cells) == 0 {
		return nil
	}
	fmt.Fprintln(stdout)
	return cellTable(stdout, d.Cells, false)
}

func getCell(ctx context.Context, c *client.Client, id string, o getOpts, stdout io.Writer) error {
	d, err := c.Cell(ctx, id, o.reads()...)
	if err != nil {
		return err
	}
	if o.out.value == "json" {
		return writeRaw(stdout, d.Raw)
	}
	cl := d.Cell
	tw := newTable(stdout)
	fmt.Fprintf(tw, "Cell:\t%s\n", cl.ID)
	fmt.Fprintf(tw, "Formation:\t%s\n", dash(cl.FormationID))
	fmt.Fprintf(tw, "Tenant:\t%s\n", dash(cl.TenantID))
	fmt.Fprintf(tw, "Spec:\t%s\n", dash(cl.SpecID))
	fmt.Fprintf(tw, "Run:\t%s\n", dash(cl.RunID))
	fmt.Fprintf(tw, "State:\t%s\n", cl.State)
	fmt.Fprintf(tw, "Outcome:\t%s\n", dash(cl.Outcome))
	fmt.Fprintf(tw, "Exit code:\t%s\n", exitCode(cl.ExitCode))
	fmt.Fprintf(tw, "Reason:\t%s\n", dash(cl.Reason))
	fmt.Fprintf(tw, "Correlation:\t%s\n", dash(string(cl.Correlation)))
	fmt.Fprintf(tw, "Compliance:\t%s\n", dash(string(cl.Compliance)))
	fmt.Fprintf(tw, "Created:\t%s\n", when(cl.CreatedAt))
	fmt.Fprintf(tw, "Updated:\t%s\n", when(cl.UpdatedAt))
	fmt.Fprintf(tw, "Last seq:\t%d\n", cl.LastSeq)
	return tw.Flush()
}

func formationTable(w io.Writer, fs []projection.Formation) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "ID\tNAME\tTENANT\tSTATUS\tCELLS\tRUNNING\tCOMPLETED\tFAILED\tUPDATED")
	for _, f := range fs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", f.ID, dash(f.Name), dash(f.TenantID), f.Status,
			f.Cells.Total, f.Cells.Running, f.Cells.Completed, f.Cells.Failed, when(f.UpdatedAt))
	}
	return tw.Flush()
}

// cellTable lists cells; the formation column is left out under a
// formation, where it would repeat its id.
func cellTable(w io.Writer, cells []projection.Cell, withFormation bool) error {
	tw := newTable(w)
	if withFormation {
		fmt.Fprint(tw, "ID\tFORMATION\tTENANT\tSTATE\tOUTCOME\tEXIT\tREASON\tUPDATED\n")
	} else {
		fmt.Fprint(tw, "CELL\tTENANT\tSTATE\tOUTCOME\tEXIT\tREASON\tUPDATED\n")
	}
	for _, c := range cells {
		if withFormation {
			fmt.Fprintf(tw, "%s\t%s\t", c.ID, dash(c.FormationID))
		} else {
			fmt.Fprintf(tw, "%s\t", c.ID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", dash(c.TenantID), c.State, dash(c.Outcome), exitCode(c.ExitCode),
			dash(truncate(c.Reason, 40)), when(c.UpdatedAt))
	}
	return tw.Flush()
}

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	// A tab or newline in a value would break the columns.
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func exitCode(p *int64) string {
	if p == nil {
		return "-"
	}
	return strconv.FormatInt(*p, 10)
}

func labels(m map[string]string) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "=" + m[k]
	}
	return dash(strings.Join(keys, ", "))
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// writeRaw prints an API body as the server sent it, ending in a newline.
func writeRaw(w io.Writer, raw []byte) error {
	raw = []byte(strings.TrimRight(string(raw), "\n"))
	_, err := fmt.Fprintf(w, "%s\n", raw)
	return err
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
