package projector

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"cellos-allinone/eventlog"
	"cellos-allinone/store"
	"cellos-allinone/testutil"
)

// benchEvents is the stream size of the boot benchmarks (override with
// CELLOS_BENCH_EVENTS).
func benchEvents(b *testing.B) int {
	if v := os.Getenv("CELLOS_BENCH_EVENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	return 200_000
}

// bootOnce runs a projector over the checkpoint at path until it is ready,
// then stops it outside the timed part (the final checkpoint of a rebuild
// is not boot time).
func bootOnce(b *testing.B, l *eventlog.Stream, path string) Boot {
	st, _, err := store.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	p := New(l, st, Config{CheckpointEvents: 1 << 30, CheckpointInterval: MaxCheckpointInterval})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer wcancel()
	if err := p.WaitReady(wctx); err != nil {
		b.Fatal(err)
	}
	boot := p.BootInfo()
	b.StopTimer()
	defer b.StartTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return boot
}

// BenchmarkBoot compares a boot from a checkpoint at the stream's end with
// a full rebuild of the same stream, side by side in one run.
func BenchmarkBoot(b *testing.B) {
	n := benchEvents(b)
	dir := b.TempDir()
	_, nc := testutil.MustStartNATS(b, dir)
	l, err := eventlog.Open(context.Background(), nc, eventlog.Config{})
	if err != nil {
		b.Fatal(err)
	}
	testutil.MustPublish(b, nc, testutil.Workload(n)...)
	cp := filepath.Join(dir, "checkpoint.db")
	if boot := bootOnce(b, l, cp); boot.Replayed != uint64(n) {
		b.Fatalf("initial build replayed %d, want %d", boot.Replayed, n)
	}

	b.Run("from-checkpoint", func(b *testing.B) {
		for b.Loop() {
			if boot := bootOnce(b, l, cp); boot.Replayed != 0 || boot.CheckpointCursor != uint64(n) {
				b.Fatalf("boot %+v, want checkpoint %d and nothing replayed", boot, n)
			}
		}
	})
	b.Run("full-rebuild", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			path := filepath.Join(b.TempDir(), "cp-"+strconv.Itoa(i)+".db")
			if boot := bootOnce(b, l, path); boot.Replayed != uint64(n) {
				b.Fatalf("rebuild replayed %d, want %d", boot.Replayed, n)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
}
