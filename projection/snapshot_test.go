package projection

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func keysOf(m map[string][]byte) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return strings.Join(ks, ",")
}

func applyNext(p *Projection, pls ...[]byte) {
	for _, pl := range pls {
		seq := p.Cursor() + 1
		p.Apply(Message{Seq: seq, Time: msgTime(seq), Payload: pl})
	}
}

func TestTakeChanges(t *testing.T) {
	p := fold(t, formEv("created", "f1", nil), cellEv("admitted", "c1", obj{"formationId": "f1"}), cellEv("admitted", "c2", nil))
	ch := p.TakeChanges()
	if ch.Reset || keysOf(ch.Formations) != "f1" || keysOf(ch.Cells) != "c1,c2" {
		t.Fatalf("TakeChanges() = reset %v, formations %q, cells %q, want false, f1, c1,c2", ch.Reset, keysOf(ch.Formations), keysOf(ch.Cells))
	}
	if want := (Meta{Cursor: 3, CursorID: p.CursorID(), Counters: Counters{Applied: 3}}); jsonStr(ch.Meta) != jsonStr(want) {
		t.Errorf("TakeChanges().Meta = %s, want %s", jsonStr(ch.Meta), jsonStr(want))
	}

	cases := []struct {
		name       string
		events     [][]byte
		formations string
		cells      string
	}{
		{"nothing", nil, "", ""},
		{"no-op events", [][]byte{cellEv("admitted", "c1", nil), formEv("created", "f1", nil), []byte("bad"), ce("x.y", "", nil)}, "", ""},
		{"cell change leaves its formation alone", [][]byte{cellEv("started", "c1", nil)}, "", "c1"},
		{"formation change", [][]byte{formEv("running", "f1", nil)}, "f1", ""},
		{"several", [][]byte{cellEv("completed", "c2", nil), cellEv("summary", "c3", nil), formEv("created", "f2", nil)}, "f2", "c2,c3"},
		{"deleted", [][]byte{formEv("deleted", "f1", nil)}, "f1", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			applyNext(p, tc.events...)
			ch := p.TakeChanges()
			if keysOf(ch.Formations) != tc.formations || keysOf(ch.Cells) != tc.cells {
				t.Errorf("TakeChanges() = formations %q, cells %q, want %q, %q", keysOf(ch.Formations), keysOf(ch.Cells), tc.formations, tc.cells)
			}
			if got, want := ch.Empty(), tc.formations == "" && tc.cells == ""; got != want {
				t.Errorf("TakeChanges().Empty() = %v, want %v", got, want)
			}
			if ch.Meta.Cursor != p.Cursor() {
				t.Errorf("TakeChanges().Meta.Cursor = %d, want %d", ch.Meta.Cursor, p.Cursor())
			}
		})
	}
}

func TestRequeue(t *testing.T) {
	p := fold(t, cellEv("admitted", "c1", nil), cellEv("admitted", "c2", nil))
	st := newStore()
	failed := p.TakeChanges() // the write fails
	applyNext(p, cellEv("started", "c1", nil), cellEv("admitted", "c3", nil))
	p.Requeue(failed)
	ch := p.TakeChanges()
	if got, want := keysOf(ch.Cells), "c1,c2,c3"; got != want {
		t.Fatalf("TakeChanges().Cells after Requeue = %q, want %q", got, want)
	}
	if !strings.Contains(string(ch.Cells["c1"]), `"state":"running"`) {
		t.Errorf("TakeChanges().Cells[c1] = %s, want the current state running", ch.Cells["c1"])
	}
	st.write(ch)
	sameState(t, "restore after requeue", st.restore(t), p)

	t.Run("reset survives a failed write", func(t *testing.T) {
		p.MarkReset()
		failed := p.TakeChanges()
		if !failed.Reset {
			t.Fatalf("TakeChanges().Reset after MarkReset = false, want true")
		}
		p.Requeue(failed)
		ch := p.TakeChanges()
		if !ch.Reset || keysOf(ch.Cells) != "c1,c2,c3" {
			t.Errorf("TakeChanges() after Requeue = reset %v, cells %q, want true, c1,c2,c3", ch.Reset, keysOf(ch.Cells))
		}
		if p.TakeChanges().Reset {
			t.Errorf("TakeChanges().Reset on the following call = true, want false")
		}
	})
}

// MarkReset after change sets were already taken: the next change set
// must still hold the whole state, since the store drops everything first.
func TestMarkResetCarriesEverything(t *testing.T) {
	p := fold(t, formEv("created", "f1", nil), cellEv("admitted", "c1", obj{"formationId": "f1"}))
	st := newStore()
	st.write(p.TakeChanges())
	applyNext(p, cellEv("admitted", "c2", nil))
	p.MarkReset()
	ch := p.TakeChanges()
	if !ch.Reset || keysOf(ch.Formations) != "f1" || keysOf(ch.Cells) != "c1,c2" {
		t.Fatalf("TakeChanges() after MarkReset = reset %v, formations %q, cells %q, want true, f1, c1,c2", ch.Reset, keysOf(ch.Formations), keysOf(ch.Cells))
	}
	st.formations["stale"] = []byte(`{"id":"stale"}`)
	st.write(ch)
	sameState(t, "restore after reset", st.restore(t), p)
}

func TestRestoreErrors(t *testing.T) {
	good := fold(t, formEv("created", "f1", nil), cellEv("started", "c1", obj{"formationId": "f1"})).TakeChanges()
	cases := []struct {
		name       string
		formations map[string][]byte
		cells      map[string][]byte
	}{
		{"formation not JSON", map[string][]byte{"f1": []byte("{")}, good.Cells},
		{"formation id mismatch", map[string][]byte{"f2": good.Formations["f1"]}, good.Cells},
		{"formation null", map[string][]byte{"f1": []byte("null")}, good.Cells},
		{"cell not JSON", good.Formations, map[string][]byte{"c1": []byte("[]")}},
		{"cell id mismatch", good.Formations, map[string][]byte{"c2": good.Cells["c1"]}},
		{"cell bad state", good.Formations, map[string][]byte{"c1": []byte(`{"id":"c1","state":"zombie"}`)}},
		{"cell no state", good.Formations, map[string][]byte{"c1": []byte(`{"id":"c1"}`)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Restore(good.Meta, iterRecords(tc.formations), iterRecords(tc.cells))
			if err == nil || p != nil {
				t.Errorf("Restore(%s) = %v, %v, want nil, an error", tc.name, p, err)
			}
		})
	}
	t.Run("iterator error is returned", func(t *testing.T) {
		boom := errors.New("disk on fire")
		failing := func(func(string, []byte) error) error { return boom }
		if _, err := Restore(good.Meta, failing, iterRecords(good.Cells)); !errors.Is(err, boom) {
			t.Errorf("Restore(failing formations) error = %v, want %v", err, boom)
		}
		if _, err := Restore(good.Meta, iterRecords(good.Formations), failing); !errors.Is(err, boom) {
			t.Errorf("Restore(failing cells) error = %v, want %v", err, boom)
		}
	})
	t.Run("good records restore", func(t *testing.T) {
		p, err := Restore(good.Meta, iterRecords(good.Formations), iterRecords(good.Cells))
		if err != nil {
			t.Fatalf("Restore(good) error = %v", err)
		}
		f, _ := mustFormation(t, p, "f1")
		if want := (CellCounts{Total: 1, Running: 1}); f.Cells != want {
			t.Errorf("Restore(good): Formation(%q).Cells = %+v, want %+v", "f1", f.Cells, want)
		}
		if ch := p.TakeChanges(); !ch.Empty() {
			t.Errorf("Restore(good): TakeChanges() = %+v, want empty", ch)
		}
		if got := p.Meta(); jsonStr(got) != jsonStr(good.Meta) {
			t.Errorf("Restore(good): Meta() = %s, want %s", jsonStr(got), jsonStr(good.Meta))
		}
	})
}

// A tombstone and restored counters survive a checkpoint round trip, and
// later events on the tombstone stay no-ops after the restore.
func TestRestoreTombstone(t *testing.T) {
	pls := [][]byte{
		formEv("created", "f1", obj{"labels": obj{"a": "<&>"}}),
		cellEv("completed", "c1", obj{"formationId": "f1", "exitCode": 2, "correlation": obj{"note": "<x>\u2028"}}),
		[]byte("garbage"),
		ce("x.y", "", nil),
		formEv("deleted", "f1", nil),
		cellEv("summary", "c1", obj{"html": "<script>&amp;</script>"}),
	}
	tail := [][]byte{formEv("created", "f1", obj{"name": "x"}), cellEv("summary", "c1", obj{"html": "<script>&amp;</script>"})}
	full := fold(t, append(slices.Clone(pls), tail...)...)
	part := fold(t, pls...)
	st := newStore()
	st.write(part.TakeChanges())
	r := st.restore(t)
	applyNext(r, tail...)
	sameState(t, "restored", r, full)
	if ch := r.TakeChanges(); !ch.Empty() {
		t.Errorf("TakeChanges() after no-op tail = formations %q, cells %q, want empty", keysOf(ch.Formations), keysOf(ch.Cells))
	}
}
