package store

import (
	"os"
	"path/filepath"
	"testing"

	"cellos-allinone/projection"
	"cellos-allinone/testutil"
)

// FuzzDecodeRecords feeds arbitrary bytes to the record decoders: they
// return an entity or an error, never panic, and an entity they return
// encodes to a record that decodes to the same entity.
func FuzzDecodeRecords(f *testing.F) {
	p := fold(testutil.Workload(60))
	for _, c := range []string{"f-00000-c00", "f-00000-c03"} {
		cell, _ := p.Cell(c)
		f.Add(encodeCell(nil, &cell), []byte{})
	}
	form, _ := p.LoadFormation("f-00000")
	f.Add([]byte{}, encodeFormation(nil, &form))
	f.Add([]byte{1, 9, 9}, []byte{1, 0, 0, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, cellRec, formRec []byte) {
		if c, err := decodeCell("c", cellRec); err == nil {
			again, err := decodeCell("c", encodeCell(nil, &c))
			if err != nil || jsonOf(again) != jsonOf(c) {
				t.Fatalf("cell %s re-encoded decodes to %s (%v)", jsonOf(c), jsonOf(again), err)
			}
		}
		if fm, err := decodeFormation("f", formRec); err == nil {
			again, err := decodeFormation("f", encodeFormation(nil, &fm))
			if err != nil || jsonOf(again) != jsonOf(fm) {
				t.Fatalf("formation %s re-encoded decodes to %s (%v)", jsonOf(fm), jsonOf(again), err)
			}
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
