package app_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"cellos-allinone/api"
	"cellos-allinone/app"
	"cellos-allinone/apptest"
	"cellos-allinone/client"
	"cellos-allinone/projection"
	"cellos-allinone/projector"
	"cellos-allinone/testutil"
)

type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

type (
	formationPage = api.FormationList
	cellPage      = api.CellList
)

func TestReadAPI(t *testing.T) {
	a := apptest.Start(t, app.Config{})
	events := testutil.Workload(2000)
	seqs := a.Publish(events...)
	a.WaitCursor(seqs[len(seqs)-1])
	want := foldOf(t, a.Events)

	t.Run("formations paged", func(t *testing.T) {
		var ids []string
		after := ""
		for pages := 0; ; pages++ {
			var pg formationPage
			if code := getJSON(t, a, "/v1/formations?limit=7&after="+after, &pg); code != 200 {
				t.Fatalf("status %d", code)
			}
			if pg.Epoch != a.Events.Epoch() || pg.Cursor != 2000 {
				t.Fatalf("page epoch %q cursor %d, want %q 2000", pg.Epoch, pg.Cursor, a.Events.Epoch())
			}
			if len(pg.Formations) > 7 {
				t.Fatalf("page of %d, want ≤ 7", len(pg.Formations))
			}
			for _, f := range pg.Formations {
				ids = append(ids, f.ID)
			}
			if pg.Next == "" {
				break
			}
			if pg.Next != pg.Formations[len(pg.Formations)-1].ID {
				t.Fatalf("next %q, want the last id of the page", pg.Next)
			}
			after = pg.Next
		}
		wantF, _ := want.Formations(projection.FormationFilter{}, projection.Page{Limit: 1000})
		if len(ids) != len(wantF) || !slices.IsSorted(ids) {
			t.Fatalf("paged through %d formations (sorted %v), want %d", len(ids), slices.IsSorted(ids), len(wantF))
		}
	})

	t.Run("formation filters", func(t *testing.T) {
		var pg formationPage
		getJSON(t, a, "/v1/formations?tenant=tenant-1&status=completed&limit=1000", &pg)
		wantF, _ := want.Formations(projection.FormationFilter{Tenant: "tenant-1", Status: "completed"}, projection.Page{Limit: 1000})
		if len(pg.Formations) == 0 || len(pg.Formations) != len(wantF) {
			t.Fatalf("tenant-1/completed: %d formations, want %d (> 0)", len(pg.Formations), len(wantF))
		}
		for _, f := range pg.Formations {
			if f.TenantID != "tenant-1" || f.Status != "completed" || f.Labels == nil {
				t.Fatalf("formation %+v does not match the filter or has null labels", f)
			}
		}
	})

	t.Run("one formation with its cells", func(t *testing.T) {
		var one struct {
			Cursor    uint64               `json:"cursor"`
			Formation projection.Formation `json:"formation"`
			Cells     []projection.Cell    `json:"cells"`
		}
		if code := getJSON(t, a, "/v1/formations/f-00003", &one); code != 200 {
			t.Fatalf("status %d", code)
		}
		if one.Formation.ID != "f-00003" || len(one.Cells) != 10 || one.Formation.Cells.Total != 10 {
			t.Fatalf("formation %+v with %d cells, want f-00003 with 10", one.Formation, len(one.Cells))
		}
		c := one.Formation.Cells
		if c.Destroyed != 10 || c.Admitted+c.Running != 0 || c.Completed != 8 || c.Failed != 2 {
			t.Fatalf("cell counts %+v, want all 10 destroyed, of which 8 completed and 2 failed (fold v2: by outcome)", c)
		}
	})

	t.Run("cells by outcome after teardown", func(t *testing.T) {
		var pg cellPage
		getJSON(t, a, "/v1/cells?formation=f-00002&outcome=failed", &pg)
		if len(pg.Cells) != 2 {
			t.Fatalf("outcome=failed: %d cells, want the 2 that failed", len(pg.Cells))
		}
		for _, c := range pg.Cells {
			if c.State != "destroyed" || c.Outcome != "failed" || c.Reason != "oom" {
				t.Fatalf("outcome=failed gave %+v, want destroyed cells that failed with reason oom", c)
			}
		}
		getJSON(t, a, "/v1/cells?formation=f-00002&outcome=none", &pg)
		if len(pg.Cells) != 0 {
			t.Fatalf("outcome=none: %d cells, want none (every cell of f-00002 finished)", len(pg.Cells))
		}
	})

	t.Run("cells filtered and paged", func(t *testing.T) {
		var pg cellPage
		getJSON(t, a, "/v1/cells?formation=f-00002&limit=4", &pg)
		if len(pg.Cells) != 4 || pg.Next != "f-00002-c03" {
			t.Fatalf("first page: %d cells next %q, want 4 and f-00002-c03", len(pg.Cells), pg.Next)
		}
		getJSON(t, a, "/v1/cells?formation=f-00002&limit=4&after="+pg.Next, &pg)
		if len(pg.Cells) != 4 || pg.Cells[0].ID != "f-00002-c04" {
			t.Fatalf("second page starts at %v", pg.Cells)
		}
		getJSON(t, a, "/v1/cells?state=destroyed&tenant=tenant-0&limit=1000", &pg)
		wantC, _ := want.Cells(projection.CellFilter{State: "destroyed", Tenant: "tenant-0"}, projection.Page{Limit: 1000})
		if len(pg.Cells) != len(wantC) || len(wantC) == 0 {
			t.Fatalf("destroyed/tenant-0: %d cells, want %d", len(pg.Cells), len(wantC))
		}
	})

	t.Run("one cell", func(t *testing.T) {
		var one struct {
			Cell projection.Cell `json:"cell"`
		}
		getJSON(t, a, "/v1/cells/f-00001-c03", &one)
		wc, _ := want.Cell("f-00001-c03")
		if one.Cell.ID != "f-00001-c03" || one.Cell.Reason != "oom" || one.Cell.ExitCode != nil || one.Cell.FormationID != wc.FormationID {
			t.Fatalf("cell %+v, want failed with reason oom and null exitCode", one.Cell)
		}
	})

	t.Run("id prefix", func(t *testing.T) {
		var fp formationPage
		getJSON(t, a, "/v1/formations?prefix=f-0001&limit=3", &fp)
		if ids := formationIDsOf(fp.Formations); ids != "f-00010,f-00011,f-00012" || fp.Next != "f-00012" {
			t.Fatalf("prefix=f-0001: %s next %q, want f-00010,f-00011,f-00012 next f-00012", ids, fp.Next)
		}
		getJSON(t, a, "/v1/formations?prefix=f-00003&limit=1", &fp)
		if ids := formationIDsOf(fp.Formations); ids != "f-00003" || fp.Next != "" {
			t.Fatalf("prefix=f-00003 (a whole id): %s next %q, want just it", ids, fp.Next)
		}
		var cp cellPage
		getJSON(t, a, "/v1/cells?prefix=f-00002-c0&state=destroyed&outcome=failed", &cp)
		var ids []string
		for _, c := range cp.Cells {
			ids = append(ids, c.ID)
		}
		if strings.Join(ids, ",") != "f-00002-c03,f-00002-c07" {
			t.Fatalf("prefix=f-00002-c0 and failed: %v, want f-00002-c03,f-00002-c07", ids)
		}
		getJSON(t, a, "/v1/cells?prefix=zzz", &cp)
		if len(cp.Cells) != 0 || cp.Next != "" {
			t.Fatalf("prefix=zzz: %+v, want an empty last page", cp)
		}
		// Through the client as well.
		got, err := a.Client().Cells(testutil.Ctx(t, 10*time.Second), client.CellQuery{Prefix: "f-00001-c1", Limit: 5})
		if err != nil || len(got.Cells) != 0 {
			t.Fatalf("client prefix f-00001-c1: %v, %v; want no cell (ten cells c00..c09)", got, err)
		}
	})

	t.Run("summary", func(t *testing.T) {
		for _, tenant := range []string{"", "tenant-1", "nobody"} {
			var sum api.Summary
			if code := getJSON(t, a, "/v1/summary?tenant="+tenant, &sum); code != 200 {
				t.Fatalf("summary of %q: status %d", tenant, code)
			}
			if sum.Cursor != 2000 || sum.Epoch != a.Events.Epoch() {
				t.Fatalf("summary cursor %d epoch %q, want 2000 %q", sum.Cursor, sum.Epoch, a.Events.Epoch())
			}
			if g, w := jsonOf(t, sum.Summary), jsonOf(t, want.Summary(tenant)); g != w {
				t.Fatalf("summary of %q:\n %s\nwant\n %s", tenant, g, w)
			}
		}
		// The shape on the wire: the counts beside cursor and epoch, every
		// key present.
		_, _, body := get(t, a, "/v1/summary")
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(body, &raw); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"cursor", "epoch", "formations", "cells", "tenants"} {
			if _, ok := raw[k]; !ok {
				t.Errorf("/v1/summary lacks %q: %s", k, body)
			}
		}
		for _, k := range []string{`"byStatus":{"cancelled":`, `"byState":{"admitted":`, `"byOutcome":{"completed":`, `"none":`, `{"id":"tenant-0","formations":`} {
			if !strings.Contains(string(body), k) {
				t.Errorf("/v1/summary lacks %s: %s", k, body)
			}
		}
		// Through the client.
		cs, err := a.Client().Summary(testutil.Ctx(t, 10*time.Second), "tenant-2")
		if err != nil {
			t.Fatal(err)
		}
		if g, w := jsonOf(t, cs.Summary.Summary), jsonOf(t, want.Summary("tenant-2")); g != w || len(cs.Raw) == 0 {
			t.Fatalf("client summary of tenant-2:\n %s\nwant\n %s", g, w)
		}
		total := 0
		for _, ts := range cs.Tenants {
			total += ts.Cells
		}
		if all := want.Summary(""); total != all.Cells.Total || len(cs.Tenants) != 3 {
			t.Fatalf("tenants %+v: %d cells in all, want %d in 3 tenants", cs.Tenants, total, all.Cells.Total)
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			path, code string
			status     int
		}{
			{"/v1/formations?limit=0", "bad_parameter", 400},
			{"/v1/formations?limit=1001", "bad_parameter", 400},
			{"/v1/formations?limit=abc", "bad_parameter", 400},
			{"/v1/formations?limit=-1", "bad_parameter", 400},
			{"/v1/formations?limit=99999999999999999999999", "bad_parameter", 400},
			{"/v1/formations?status=sleeping", "bad_parameter", 400},
			{"/v1/formations?colour=red", "unknown_parameter", 400},
			{"/v1/formations?limit=1&limit=2", "bad_parameter", 400},
			{"/v1/formations?tenant=%ff", "bad_parameter", 400},
			{"/v1/formations?after=" + strings.Repeat("a", 300), "bad_parameter", 400},
			// A cursor that is not an id (a garbled next) is refused, not
			// used as a bound of the range.
			{"/v1/cells?after=" + strings.Repeat("a", 129), "bad_parameter", 400},
			{"/v1/cells?after=f-00001%01%02", "bad_parameter", 400},
			{"/v1/formations?after=f%20x", "bad_parameter", 400},
			{"/v1/cells?formation=f-00001&after=f-00001-c0%C3%A9", "bad_parameter", 400},
			{"/v1/cells?state=running2", "bad_parameter", 400},
			{"/v1/cells?outcome=destroyed", "bad_parameter", 400},
			{"/v1/cells?limit=1000000", "bad_parameter", 400},
			{"/v1/cells?prefix=" + strings.Repeat("c", 129), "bad_parameter", 400},
			{"/v1/formations?prefix=" + strings.Repeat("f", 129), "bad_parameter", 400},
			{"/v1/summary?limit=1", "unknown_parameter", 400},
			{"/v1/summary?tenant=a&tenant=b", "bad_parameter", 400},
			{"/v1/formations/nope", "not_found", 404},
			{"/v1/cells/nope", "not_found", 404},
			{"/v1/cells/f-00001-c03?x=1", "unknown_parameter", 400},
			{"/v1/nothing", "not_found", 404},
		} {
			var e apiError
			if got := getJSON(t, a, tc.path, &e); got != tc.status || e.Error.Code != tc.code || e.Error.Message == "" {
				t.Errorf("GET %s = %d %+v, want %d %s with a message", tc.path, got, e, tc.status, tc.code)
			}
		}
		resp, err := http.Post(a.URL()+"/v1/formations", "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 405 {
			t.Errorf("POST /v1/formations = %d, want 405", resp.StatusCode)
		}
	})
}

func TestDeletedFormationDisappears(t *testing.T) {
	a := apptest.Start(t, app.Config{})
	seqs := a.Publish(
		testutil.Formation("gone", "created", map[string]any{"name": "gone"}),
		testutil.Cell("gone-c1", "admitted", map[string]any{"formationId": "gone"}),
		testutil.Formation("gone", "deleted", nil),
		testutil.Formation("gone", "running", nil),
	)
	a.WaitCursor(seqs[3])
	var e apiError
	if code := getJSON(t, a, "/v1/formations/gone", &e); code != 404 {
		t.Fatalf("deleted formation: %d, want 404", code)
	}
	var pg formationPage
	getJSON(t, a, "/v1/formations", &pg)
	if len(pg.Formations) != 0 {
		t.Fatalf("formations after delete: %+v, want none", pg.Formations)
	}
	var c struct{ Cell projection.Cell }
	getJSON(t, a, "/v1/cells/gone-c1", &c)
	if c.Cell.FormationID != "gone" {
		t.Fatalf("cell formationId %q after delete, want it kept", c.Cell.FormationID)
	}
}

func TestStatusAndMetrics(t *testing.T) {
	a := apptest.Start(t, app.Config{})
	events := append(testutil.Workload(40), testutil.Raw("not json"))
	seqs := a.Publish(events...)
	a.WaitCursor(seqs[len(seqs)-1])
	var st map[string]any
	if code := getJSON(t, a, "/v1/status", &st); code != 200 {
		t.Fatalf("status %d", code)
	}
	for _, k := range []string{"version", "cursor", "epoch", "lag", "stream", "boot", "checkpoint", "events", "gaps"} {
		if _, ok := st[k]; !ok {
			t.Errorf("/v1/status lacks %q: %v", k, st)
		}
	}
	sub := func(k string) map[string]any { m, _ := st[k].(map[string]any); return m }
	for k, fields := range map[string][]string{
		"stream":     {"name", "firstSeq", "lastSeq", "messages", "bytes"},
		"boot":       {"checkpointCursor", "replayFrom", "replayed", "durationMs", "rebuild"},
		"checkpoint": {"cursor", "at"},
		"events":     {"applied", "ignored", "malformed"},
	} {
		for _, f := range fields {
			if _, ok := sub(k)[f]; !ok {
				t.Errorf("/v1/status %s lacks %q: %v", k, f, sub(k))
			}
		}
	}
	if ev := sub("events"); ev["malformed"].(float64) != 1 || ev["applied"].(float64) != 40 {
		t.Errorf("events %v, want 40 applied and 1 malformed", ev)
	}
	if sub("stream")["lastSeq"].(float64) != 41 || st["lag"].(float64) != 0 {
		t.Errorf("stream %v lag %v, want lastSeq 41 lag 0", sub("stream"), st["lag"])
	}

	// The state hash: none until asked for; ?hash=1 computes it, and the
	// status shows it with the epoch (it equals a fold of the stream).
	if h, ok := sub("integrity")["hash"]; !ok || h != nil {
		t.Errorf("integrity %v before any hash, want hash: null", sub("integrity"))
	}
	var hashed struct {
		Epoch     string `json:"epoch"`
		Integrity struct {
			Hash *projector.StateHash `json:"hash"`
		} `json:"integrity"`
	}
	if code := getJSON(t, a, "/v1/status?hash=1", &hashed); code != 200 {
		t.Fatalf("/v1/status?hash=1: %d", code)
	}
	want, _ := projection.Hash(foldOf(t, a.Events))
	if h := hashed.Integrity.Hash; h == nil || h.StateHash != want || h.Epoch != hashed.Epoch || h.At.IsZero() {
		t.Errorf("/v1/status?hash=1: integrity.hash = %+v, want %+v of epoch %s", h, want, hashed.Epoch)
	}
	if code := getJSON(t, a, "/v1/status", &st); code != 200 {
		t.Fatalf("status %d", code)
	}
	if h, _ := sub("integrity")["hash"].(map[string]any); h["value"] != want.Value || h["cursor"] != float64(want.Cursor) || h["version"] != projection.HashVersion {
		t.Errorf("/v1/status after a hash: integrity.hash = %v, want value %s at cursor %d", h, want.Value, want.Cursor)
	}

	// The stream's end and the lag are measured every second.
	var text string
	testutil.WaitFor(t, 5*time.Second, "the lag measurement in /metrics", func() bool {
		_, _, body := get(t, a, "/metrics")
		text = string(body)
		return strings.Contains(text, "cellos_stream_last_sequence 41")
	})
	for _, line := range []string{
		"cellos_projection_cursor 41",
		"cellos_stream_last_sequence 41",
		"cellos_projection_lag 0",
		"cellos_projection_lag_seconds 0",
		"cellos_projection_stale 0",
		"cellos_events_applied_total 40",
		"cellos_events_malformed_total 1",
		"cellos_events_ignored_total 0",
		"cellos_ready 1",
		"cellos_checkpoint_duration_seconds_bucket",
		"cellos_boot_replay_duration_seconds",
	} {
		if !strings.Contains(text, line) {
			t.Errorf("/metrics lacks %q", line)
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code := getJSON(t, a, path, nil); code != 200 {
			t.Errorf("GET %s = %d, want 200", path, code)
		}
	}
}

func formationIDsOf(fs []projection.Formation) string {
	ids := make([]string, len(fs))
	for i, f := range fs {
		ids[i] = f.ID
	}
	return strings.Join(ids, ",")
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// One summary's cursor, epoch and counts belong together: read while
// events are being published, each answer equals the fold of the stream up
// to its own cursor.
func TestSummaryIsOneView(t *testing.T) {
	a := apptest.Start(t, app.Config{})
	events := testutil.Workload(3000)
	nc, err := nats.Connect(a.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < len(events); i += 100 {
			if _, err := testutil.Publish(nc, events[i:min(i+100, len(events))]...); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var answers []api.Summary
	for {
		var sum api.Summary
		if code := getJSON(t, a, "/v1/summary?tenant=tenant-0", &sum); code != 200 {
			t.Fatalf("status %d", code)
		}
		if len(answers) == 0 || answers[len(answers)-1].Cursor != sum.Cursor {
			answers = append(answers, sum)
		}
		select {
		case <-done:
		default:
			time.Sleep(5 * time.Millisecond)
			continue
		}
		break
	}
	if len(answers) < 3 {
		t.Logf("only %d distinct answers while publishing", len(answers))
	}
	// The first, the last and a few between.
	step := max(1, len(answers)/5)
	for i := 0; i < len(answers); i += step {
		sum := answers[i]
		p, err := projector.FoldLog(testutil.Ctx(t, 60*time.Second), a.Events, sum.Cursor)
		if err != nil {
			t.Fatal(err)
		}
		if p.Cursor() != sum.Cursor || sum.Epoch != a.Events.Epoch() {
			t.Fatalf("fold up to %d reached %d (epoch %q, stream %q)", sum.Cursor, p.Cursor(), sum.Epoch, a.Events.Epoch())
		}
		if g, w := jsonOf(t, sum.Summary), jsonOf(t, p.Summary("tenant-0")); g != w {
			t.Fatalf("summary at cursor %d:\n %s\nwant the fold up to it:\n %s", sum.Cursor, g, w)
		}
	}
	t.Logf("%d answers while publishing, checked every %d", len(answers), step)
}
