package store

import (
	"fmt"
	"path/filepath"
	"testing"

	"cellos-allinone/projection"
	"cellos-allinone/testutil"
)

// benchState is a state of 20,000 workload events (about 370 formations
// and 3,700 cells) for the read benchmarks.
func benchState(b *testing.B) *Store {
	b.Helper()
	s := mustOpen(b, filepath.Join(b.TempDir(), "cp.db"))
	write(b, s, "e", testutil.Workload(20_000), 1000)
	return s
}

// BenchmarkReadCell is GET /v1/cells/{id}: one View, one record.
func BenchmarkReadCell(b *testing.B) {
	s := benchState(b)
	ids := make([]string, 0, 1000)
	for f := range 100 {
		for c := range 10 {
			ids = append(ids, fmt.Sprintf("f-%05d-c%02d", f, c))
		}
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		id := ids[i%len(ids)]
		if err := s.View(func(v *View) error {
			if _, ok := v.Cell(id); !ok {
				b.Fatalf("no cell %s", id)
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadCellsPage is GET /v1/cells?after=…&limit=100: a page of
// the whole bucket.
func BenchmarkReadCellsPage(b *testing.B) {
	benchmarkPage(b, projection.CellFilter{}, 100)
}

// BenchmarkReadCellsPageByClass is GET /v1/cells?state=destroyed&limit=100:
// a page through an index.
func BenchmarkReadCellsPageByClass(b *testing.B) {
	benchmarkPage(b, projection.CellFilter{State: projection.CellDestroyed}, 100)
}

func benchmarkPage(b *testing.B, fl projection.CellFilter, limit int) {
	s := benchState(b)
	after := ""
	for b.Loop() {
		if err := s.View(func(v *View) error {
			page, next := v.Cells(fl, projection.Page{After: after, Limit: limit})
			if len(page) == 0 {
				b.Fatal("empty page")
			}
			after = next
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
}
