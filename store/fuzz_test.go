package store

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"cellos-allinone/projection"
	"cellos-allinone/testutil"
)

// FuzzDecodeCheckpoint feeds arbitrary bytes to the checkpoint decoder (the
// position record and entity records as Load reads them): it must return a
// projection or an error, never panic.
func FuzzDecodeCheckpoint(f *testing.F) {
	p := fold(testutil.Workload(60))
	ch := p.TakeChanges()
	meta, _ := json.Marshal(ch.Meta)
	var fRec, cRec []byte
	for _, r := range ch.Formations {
		fRec = r
		break
	}
	for _, r := range ch.Cells {
		cRec = r
		break
	}
	f.Add(meta, fRec, cRec)
	f.Add([]byte(`{"cursor":1}`), []byte(`{"id":"f"}`), []byte(`{"id":"c","state":"admitted"}`))
	f.Add([]byte(`null`), []byte(`[]`), []byte(`{"id":"c","state":"weird","exitCode":1e400}`))
	f.Add([]byte(`{"gaps":[{"from":18446744073709551615}]}`), []byte(`{"id":"f","labels":{"a":1}}`), []byte(`{}`))
	f.Fuzz(func(t *testing.T, meta, fRec, cRec []byte) {
		var m projection.Meta
		if json.Unmarshal(meta, &m) != nil {
			return
		}
		one := func(id string, rec []byte) func(func(string, []byte) error) error {
			return func(yield func(string, []byte) error) error { return yield(id, rec) }
		}
		var fid, cid struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(fRec, &fid)
		_ = json.Unmarshal(cRec, &cid)
		p, err := projection.Restore(m, one(fid.ID, fRec), one(cid.ID, cRec))
		if err != nil {
			return
		}
		// A restored projection must be usable.
		p.Dump()
		p.TakeChanges()
		p.Apply(projection.Message{Seq: p.Cursor() + 1, Time: time.Unix(0, 0), Payload: testutil.Workload(1)[0].Payload})
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
		_, _ = s.Load(cp)
	})
}
