package store

import (
	"os"
	"path/filepath"
	"testing"

	"cellos-allinone/projection"
	"cellos-allinone/testutil"
)

func newKeyTable() *keyTable {
	t := &keyTable{ids: map[string]uint64{}}
	t.names.Store(new([]string))
	return t
}

// FuzzDecodeRecords feeds arbitrary bytes to the record decoders, as they
// are and with a seal that holds (so that the decoding behind the seal is
// fuzzed too): they return an entity or an error, never panic, and an
// entity they return encodes to a record that decodes to the same entity.
func FuzzDecodeRecords(f *testing.F) {
	p := fold(testutil.Workload(60))
	keys := newKeyTable()
	unsealed := func(rec []byte) []byte { return rec[:len(rec)-sealLen] }
	for _, c := range []string{"f-00000-c00", "f-00000-c03"} {
		cell, _ := p.Cell(c)
		cell.ID = "c"
		f.Add(unsealed(encodeCell(nil, &cell, keys)), []byte{})
	}
	form, _ := p.LoadFormation("f-00000")
	form.ID = "f"
	f.Add([]byte{}, unsealed(encodeFormation(nil, &form, keys)))
	f.Add([]byte{1, 9, 9}, []byte{1, 0, 0, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, cellPart, formPart []byte) {
		names := keys.snapshot()
		_, _ = decodeCell("c", cellPart, names)
		_, _ = decodeFormation("f", formPart, names)
		cellRec, formRec := sealed([]byte("c"), cellPart), sealed([]byte("f"), formPart)
		if c, err := decodeCell("c", cellRec, names); err == nil {
			again, err := decodeCell("c", encodeCell(nil, &c, keys), keys.snapshot())
			if err != nil || jsonOf(again) != jsonOf(c) {
				t.Fatalf("cell %s re-encoded decodes to %s (%v)", jsonOf(c), jsonOf(again), err)
			}
		}
		if fm, err := decodeFormation("f", formRec, names); err == nil {
			again, err := decodeFormation("f", encodeFormation(nil, &fm, keys), keys.snapshot())
			if err != nil || jsonOf(again) != jsonOf(fm) {
				t.Fatalf("formation %s re-encoded decodes to %s (%v)", jsonOf(fm), jsonOf(again), err)
			}
		}
	})
}

// FuzzBlob stores arbitrary bytes as a JSON value: what comes back is
// exactly what went in, whichever form was chosen, and a stored form that
// is damaged decodes to an error or a value, never a panic.
func FuzzBlob(f *testing.F) {
	for _, s := range []string{
		`{"tenantId":"acme","traceId":"0d4f"}`,
		`{"a":[1,-2.5e3,true,false,null,{"b":"x\"y"}],"c":{},"d":[]}`,
		`{"cellId":"c-1","k":"\u00e9"}`,
		`{"a":1,}`, `[`, `"`, `{"a" : 1}`, `{"a":tru}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		keys := newKeyTable()
		own := &[5]string{"c-1", "f-1", "acme", "", "r"}
		stored := appendBlob(nil, v, keys, own)
		r := reader{b: stored}
		raw := r.raw()
		if r.err != nil || len(r.b) != 0 {
			t.Fatalf("stored form of %q is not one length-prefixed value: %v", v, stored)
		}
		back, err := expandBlob(raw, keys.snapshot(), own)
		if err != nil || string(back) != string(v) {
			t.Fatalf("%q came back as %q (%v)", v, back, err)
		}
		// Damage: the decoder must not panic on a stored form cut short.
		for i := range raw {
			_, _ = expandBlob(raw[:i], keys.snapshot(), own)
		}
	})
}

// FuzzOpenFile puts arbitrary bytes where the checkpoint file is: Open must
// either open it or move it aside, and a file it opens must read back as a
// checkpoint or an error, never a panic.
func FuzzOpenFile(f *testing.F) {
	valid := checkpointFile(f, 30)
	f.Add(valid)
	f.Add(valid[:4096])
	f.Add(valid[:len(valid)/2])
	f.Add([]byte{})
	f.Add([]byte("SQLite format 3\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "cp.db")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, _, err := Open(path)
		if err != nil {
			return
		}
		defer s.Close()
		cp, found, err := s.Info()
		if err != nil || !found || cp.Schema != SchemaVersion {
			return
		}
		// A file that opens must read back as a state or an error.
		_ = s.View(func(v *View) error {
			v.Dump()
			v.Summary("")
			v.Cells(projection.CellFilter{State: projection.CellRunning}, projection.Page{})
			return nil
		})
	})
}
