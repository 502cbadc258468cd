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
func BenchmarkCommit(b *testing.B) {
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
	commit := func() {
		for _, d := range rounds[i] {
			projection.Apply(bt, d)
		}
		if err := bt.Commit(time.Now()); err != nil {
			b.Fatal(err)
		}
		i++
	}
	for range warm / benchRound {
		commit()
	}
	b.ResetTimer()
	for b.Loop() {
		if i == len(rounds) {
			b.Fatalf("more than %d rounds", len(rounds))
		}
		commit()
	}
	b.ReportMetric(float64(b.N*benchRound)/b.Elapsed().Seconds(), "events/s")
}
