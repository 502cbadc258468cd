package store

import (
	"path/filepath"
	"testing"
	"time"

	"cellos-allinone/projection"
	"cellos-allinone/testutil"
)

// benchRound is how many events one commit of BenchmarkCommit holds: a
// live commit's size (projector.liveCommitEvents).
const benchRound = 2000

// decodedRounds decodes n events of formations that live and finish
// (testutil.Workload) as sequences from 1, in rounds of benchRound.
func decodedRounds(n int) [][]projection.Decoded {
	var dec projection.Decoder
	var out [][]projection.Decoded
	for i, ev := range testutil.Workload(n) {
		if i%benchRound == 0 {
			out = append(out, make([]projection.Decoded, 0, benchRound))
		}
		seq := uint64(i + 1)
		out[len(out)-1] = append(out[len(out)-1], dec.Decode(projection.Message{Seq: seq, Subject: ev.Subject, Time: time.Unix(1700000000, 0), Payload: ev.Payload}))
	}
	return out
}

// BenchmarkCommit folds rounds of benchRound events into a Batch over a
// registry that already holds 50,000 events' worth of entities, and
// commits each round: the cost of the live write path per event, fsync
// left out.
func BenchmarkCommit(b *testing.B) { benchmarkCommit(b, 0) }

// BenchmarkCommitPruning is BenchmarkCommit on a stream that keeps the
// last 50,000 events: each commit also prunes what ended before the floor
// (about a round's worth of finished formations and cells), and the
// registry stays the size of the window.
func BenchmarkCommitPruning(b *testing.B) { benchmarkCommit(b, 50_000) }

// benchmarkCommit runs the benchmark; with window > 0 the floor follows
// the cursor at that distance.
func benchmarkCommit(b *testing.B, window uint64) {
	const warm = 50_000
	rounds := decodedRounds(warm + 400*benchRound)
	s := mustOpen(b, filepath.Join(b.TempDir(), "cp.db"))
	// fsync is the disk's cost, not the write path's, and the largest
	// noise of a figure: off here.
	s.db.NoSync = true
	if err := s.Reset("e"); err != nil {
		b.Fatal(err)
	}
	bt, err := s.Batch()
	if err != nil {
		b.Fatal(err)
	}
	defer bt.Close()
	i := 0
	var inCommit time.Duration
	commit := func() {
		for _, d := range rounds[i] {
			projection.Apply(bt, d)
		}
		if cursor := bt.Meta().Cursor; window > 0 && cursor > window {
			bt.SetFloor(cursor - window)
		}
		start := time.Now()
		if err := bt.Commit(start); err != nil {
			b.Fatal(err)
		}
		inCommit += time.Since(start)
		i++
	}
	for range warm / benchRound {
		commit()
	}
	b.ResetTimer()
	inCommit = 0
	for b.Loop() {
		if i == len(rounds) {
			b.Fatalf("more than %d rounds", len(rounds))
		}
		commit()
	}
	b.ReportMetric(float64(b.N*benchRound)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(inCommit.Microseconds())/float64(b.N), "µs-in-commit/op")
	b.ReportMetric(float64(bt.Meta().Pruned.Formations+bt.Meta().Pruned.Cells)/float64(i), "pruned/commit")
}
