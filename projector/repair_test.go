package projector

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"cellos-allinone/testutil"
)

// A record that does not decode is found where it is used — boot reads no
// record, or it would not be flat: by a read, or by the fold. Either way
// the read answers ErrStateDamaged, the state is rebuilt from the stream
// beside the served one, and the damaged file is kept aside.
func TestDamagedRecordIsRebuiltFromTheStream(t *testing.T) {
	const damaged = "f-00000-c00"
	byFold := func(t *testing.T, e *bootEnv, r *rig) {
		testutil.MustPublish(t, e.nc, testutil.Cell(damaged, "started", nil))
	}
	for _, tc := range []struct {
		name string
		meet func(t *testing.T, e *bootEnv, r *rig)
		// blocked: the rebuild's file cannot be made at first (a
		// non-empty directory holds its name): the state is stale
		// meanwhile, and the repair starts by itself once it can.
		blocked bool
	}{{
		name: "met by a read",
		meet: func(t *testing.T, e *bootEnv, r *rig) {
			err := r.p.Read(func(v View) { v.Cell(damaged) })
			if !errors.Is(err, ErrStateDamaged) || !strings.Contains(err.Error(), damaged) {
				t.Fatalf("Read of the damaged cell = %v, want ErrStateDamaged naming it", err)
			}
		},
	}, {
		name: "met by the fold",
		meet: byFold,
	}, {
		name:    "met by the fold, the rebuild's file blocked at first",
		meet:    byFold,
		blocked: true,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			e := &bootEnv{}
			e.dir, e.nc, e.log = startNATS(t, 0)
			e.publish(t, 40)
			e.checkpoint(t)
			mutateBolt(t, e.checkpointPath(), func(tx *bolt.Tx) error {
				return tx.Bucket([]byte("cells")).Put([]byte(damaged), []byte("{not a record"))
			})
			r := startProjector(t, e.dir, e.nc, Config{})
			if b := r.p.BootInfo(); b.CheckpointCursor != 40 || b.Replayed != 0 || b.Rebuild != "" {
				t.Fatalf("BootInfo() = %+v, want a flat boot from the checkpoint at 40", b)
			}
			if tc.blocked {
				if err := os.MkdirAll(filepath.Join(e.checkpointPath()+".rebuild", "x"), 0o700); err != nil {
					t.Fatal(err)
				}
			}
			tc.meet(t, e, r)
			if tc.blocked {
				testutil.WaitFor(t, 10*time.Second, "the damaged state to be stale", func() bool {
					st, err := r.p.Status(testutil.Ctx(t, 5*time.Second), "test")
					return err == nil && st.Stale
				})
				if err := os.RemoveAll(e.checkpointPath() + ".rebuild"); err != nil {
					t.Fatal(err)
				}
				// Asked nothing more (no read meets the damage again):
				// the repair tries again by itself.
				testutil.WaitFor(t, 30*time.Second, "the repair to finish", func() bool {
					st, err := r.p.Status(testutil.Ctx(t, 5*time.Second), "test")
					return err == nil && !st.Stale && st.Rebuild != nil && st.Rebuild.FinishedAt != nil
				})
			}

			want := string(foldStream(t, e.log).Dump())
			testutil.WaitFor(t, 30*time.Second, "the repaired state to equal a fold of the stream", func() bool {
				var got string
				err := r.p.Read(func(v View) { got = string(v.Dump()) })
				return err == nil && got == want
			})
			st, err := r.p.Status(testutil.Ctx(t, 5*time.Second), "test")
			if err != nil {
				t.Fatal(err)
			}
			if st.Stale || st.Rebuild == nil || !strings.HasPrefix(st.Rebuild.Reason, RebuildUnreadable) || st.Rebuild.FinishedAt == nil {
				t.Fatalf("status after the repair: stale %v, last rebuild %+v; want a finished %s rebuild", st.Stale, st.Rebuild, RebuildUnreadable)
			}
			if m, _ := filepath.Glob(e.checkpointPath() + ".bad-*"); len(m) != 1 {
				t.Fatalf("files kept aside: %v, want the damaged one", m)
			}
			// The repaired state folds on.
			seqs := testutil.MustPublish(t, e.nc, testutil.Cell(damaged, "completed", nil))
			r.waitCursor(seqs[0])
			r.assertEqualsFold()
		})
	}
}
