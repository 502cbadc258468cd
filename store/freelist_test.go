package store

import (
	"encoding/binary"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"cellos-allinone/testutil"
)

// garbleFreelist writes a huge overflow count into the header of the
// freelist page of the bbolt file at path.
func garbleFreelist(t *testing.T, path string) {
	t.Helper()
	m, err := testutil.MapBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Pages {
		if p.Class == testutil.PageFreelist {
			d := testutil.Damage{Off: int64(p.ID)*int64(m.PageSize) + 12, Bytes: binary.LittleEndian.AppendUint32(nil, 0xfffff0f0)}
			if err := d.Apply(path); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("no freelist page: %s", m.Classes())
}

// A freelist page whose header was garbled under a running store: the
// next commit would free its "overflow" pages one by one — four billion
// map entries (the fuzzer found a start that never got ready, its memory
// growing by gigabytes). It is damage, found before the commit writes;
// and a file opened with it is moved aside.
func TestGarbledFreelistIsDamageBeforeAWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cp.db")
	s := mustOpen(t, path)
	write(t, s, "e", testutil.Workload(600), 300)
	garbleFreelist(t, path)
	b, err := s.Batch()
	if err != nil {
		t.Fatal(err)
	}
	b.Meta().Cursor++
	done := make(chan error, 1)
	go func() { done <- b.Commit(time.Now()) }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrDamaged) {
			t.Fatalf("Commit over a garbled freelist page = %v, want ErrDamaged", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Commit over a garbled freelist page did not return")
	}
	b.Close()
	s.Close()

	s, aside, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if aside == "" {
		t.Fatal("a file whose freelist page is garbled was opened as it is")
	}
}
