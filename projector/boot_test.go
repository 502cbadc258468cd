package projector

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	bolt "go.etcd.io/bbolt"

	"cellos-allinone/eventlog"
	"cellos-allinone/projection"
	"cellos-allinone/store"
	"cellos-allinone/testutil"
)

// Each boot case of docs/design.md §4: the projector must start, report what it
// did in Boot, and end up equal to a fold of the stream.

// bootCase is one way the checkpoint and the stream meet at boot.
type bootCase struct {
	name string
	// prepare makes the checkpoint and the stream the projector boots on,
	// and returns what it must serve then: nil for a fold of the whole
	// retained stream.
	prepare func(t *testing.T, e *bootEnv) *projection.Projection
	// boot is the Boot the projector must report; its Rebuild is a
	// prefix ("": no rebuild), its DurationMs is not compared.
	boot  Boot
	aside int // checkpoint files moved aside
	// status checks more of Status after the boot (nil: nothing more).
	status func(t *testing.T, st Status)
}

func TestBoot(t *testing.T) {
	for _, tc := range []bootCase{{
		name:    "no checkpoint",
		prepare: func(t *testing.T, e *bootEnv) *projection.Projection { e.publish(t, 300); return nil },
		boot:    Boot{ReplayFrom: 1, ReplayTo: 300, Replayed: 300},
	}, {
		name: "from a checkpoint only the rest is replayed",
		prepare: func(t *testing.T, e *bootEnv) *projection.Projection {
			e.publish(t, 200)
			e.checkpoint(t)
			e.publish(t, 250)
			return nil
		},
		boot: Boot{CheckpointCursor: 200, ReplayFrom: 201, ReplayTo: 250, Replayed: 50},
	}, {
		name: "other epoch rebuilds",
		prepare: func(t *testing.T, e *bootEnv) *projection.Projection {
			e.publish(t, 100)
			e.checkpoint(t)
			// The stream is deleted and created again: a new incarnation.
			testutil.RemoveStream(t, e.log)
			e.log = openLog(t, e.nc)
			e.publish(t, 130)
			return nil
		},
		boot: Boot{Rebuild: RebuildEpoch, ReplayFrom: 1, ReplayTo: 30, Replayed: 30},
	}, {
		name: "cursor beyond the stream rebuilds",
		prepare: func(t *testing.T, e *bootEnv) *projection.Projection {
			e.publish(t, 80)
			// The checkpoint saw 120 events; the stream lost its unflushed tail.
			e.writeCheckpoint(t, 120)
			return nil
		},
		boot: Boot{Rebuild: RebuildBeyond, ReplayFrom: 1, ReplayTo: 80, Replayed: 80},
	}, {
		name: "different message at the cursor rebuilds",
		prepare: func(t *testing.T, e *bootEnv) *projection.Projection {
			e.publish(t, 60)
			// Same sequences, other events (new ids): after a power cut
			// JetStream handed the lost sequence numbers to new events.
			e.writeCheckpoint(t, 40)
			return nil
		},
		boot: Boot{Rebuild: RebuildMsgMismatch, ReplayFrom: 1, ReplayTo: 60, Replayed: 60},
	}, {
		name: "expired gap continues from the first sequence",
		prepare: func(t *testing.T, e *bootEnv) *projection.Projection {
			e.publish(t, 50)
			e.checkpoint(t)
			want := foldStream(t, e.log)
			e.publish(t, 100)
			// 51..80 expire before the projector sees them.
			e.purge(t, jetstream.WithPurgeSequence(81))
			// The projection is the checkpointed state (1..50) plus 81..100,
			// less what ended before the floor (docs/design.md §3).
			err := e.log.Follow(testutil.Ctx(t, 10*time.Second), e.log.Current(), 81, func(d eventlog.Delivery) error {
				want.Apply(projection.Message{Seq: d.Seq, Time: d.Time, Payload: d.Payload})
				if d.Seq == 100 {
					return errStop
				}
				return nil
			})
			if err != errStop {
				t.Fatal(err)
			}
			want.Prune(81)
			return want
		},
		boot: Boot{CheckpointCursor: 50, ReplayFrom: 81, ReplayTo: 100, Replayed: 20},
		status: func(t *testing.T, st Status) {
			if len(st.Gaps) != 1 || st.Gaps[0] != (projection.Gap{From: 51, To: 80}) {
				t.Fatalf("Status().Gaps = %+v, want [{51 80}]", st.Gaps)
			}
			if st.Cursor != 100 || st.Events.Applied+st.Events.Ignored+st.Events.Malformed != 70 {
				t.Fatalf("Status() cursor %d events %+v, want cursor 100 and 70 events counted", st.Cursor, st.Events)
			}
		},
	}, {
		name: "all expired after the cursor",
		prepare: func(t *testing.T, e *bootEnv) *projection.Projection {
			e.publish(t, 30)
			e.checkpoint(t)
			want := foldStream(t, e.log)
			e.publish(t, 40)
			e.purge(t)
			// The checkpointed state (1..30), with 31..40 skipped, less
			// what ended before the floor: the stream holds nothing, its
			// floor is 41.
			want.Skip(40)
			want.Prune(41)
			return want
		},
		boot: Boot{CheckpointCursor: 30, ReplayFrom: 41, ReplayTo: 40, Replayed: 0},
		status: func(t *testing.T, st Status) {
			if st.Cursor != 40 || st.Lag != 0 || len(st.Gaps) != 1 || st.Gaps[0] != (projection.Gap{From: 31, To: 40}) {
				t.Fatalf("Status() = cursor %d lag %d gaps %+v, want cursor 40, lag 0, gap 31..40", st.Cursor, st.Lag, st.Gaps)
			}
		},
	}, {
		name: "a hole below the cursor rebuilds",
		prepare: func(t *testing.T, e *bootEnv) *projection.Projection {
			e.publish(t, 70)
			e.checkpoint(t)
			// 31..35 are gone while 36..70 survive, as when a power cut
			// kept a later block's pages and lost an earlier one's tail:
			// the checkpoint shows events the log lost.
			e.deleteMsgs(t, 31, 35)
			return nil
		},
		boot: Boot{Rebuild: RebuildHole, ReplayFrom: 1, ReplayTo: 70, Replayed: 65},
		status: func(t *testing.T, st Status) {
			if len(st.Gaps) != 1 || st.Gaps[0] != (projection.Gap{From: 31, To: 35}) {
				t.Fatalf("Status().Gaps = %+v, want [{31 35}]", st.Gaps)
			}
		},
	}, {
		name: "a hole the checkpoint recorded as a gap keeps it",
		prepare: func(t *testing.T, e *bootEnv) *projection.Projection {
			e.publish(t, 40)
			e.deleteMsgs(t, 21, 22)
			e.checkpoint(t) // folds 1..20, 23..40: 21..22 a gap
			e.publish(t, 50)
			e.deleteMsgs(t, 45, 45) // after the cursor: the replay's gap
			return nil
		},
		boot: Boot{CheckpointCursor: 40, ReplayFrom: 41, ReplayTo: 50, Replayed: 9},
	}, {
		name: "corrupt file rebuilds",
		prepare: func(t *testing.T, e *bootEnv) *projection.Projection {
			e.publish(t, 40)
			if err := os.WriteFile(e.checkpointPath(), []byte("garbage, not bbolt\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			return nil
		},
		boot:  Boot{Rebuild: RebuildUnreadable, ReplayFrom: 1, ReplayTo: 40, Replayed: 40},
		aside: 1,
	}, {
		// The file opens, but the boot's commit (which prunes through
		// ix-ended) meets a zeroed page: the start goes on, repairs and
		// gets ready, instead of failing — a crash loop (the corruption
		// fuzzer found a start that never got ready).
		name: "a page the boot's commit meets damaged rebuilds",
		prepare: func(t *testing.T, e *bootEnv) *projection.Projection {
			e.publish(t, 600)
			e.checkpoint(t)
			m, err := testutil.MapBolt(e.checkpointPath())
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range m.Pages {
				if p.Class == testutil.PageLeaf && p.Bucket == "ix-ended" {
					d := testutil.Damage{Off: int64(p.ID) * int64(m.PageSize), Bytes: make([]byte, m.PageSize)}
					if err := d.Apply(e.checkpointPath()); err != nil {
						t.Fatal(err)
					}
					return nil
				}
			}
			t.Fatalf("no ix-ended leaf page: %s", m.Classes())
			return nil
		},
		boot:  Boot{Rebuild: RebuildUnreadable, ReplayFrom: 1, ReplayTo: 600, Replayed: 600},
		aside: 1,
	}, {
		name: "older schema rebuilds", // schema 4: records without spans, nothing pruned
		prepare: func(t *testing.T, e *bootEnv) *projection.Projection {
			e.checkpointOfSchema(t, store.SchemaVersion-1)
			return nil
		},
		boot: Boot{Rebuild: RebuildOldSchema, ReplayFrom: 1, ReplayTo: 25, Replayed: 25},
	}, {
		// Schema 4 kept every entity it ever saw: rebuilt from the retained
		// events, the state holds what they and the live entities need.
		name: "a state of schema 4 rebuilds from what is retained",
		prepare: func(t *testing.T, e *bootEnv) *projection.Projection {
			e.publish(t, 120)
			e.checkpoint(t)
			e.purge(t, jetstream.WithPurgeSequence(61))
			mutateBolt(t, e.checkpointPath(), func(tx *bolt.Tx) error {
				return tx.Bucket([]byte("meta")).Put([]byte("schema"), []byte{0, 0, 0, 0, 0, 0, 0, 4})
			})
			return nil
		},
		boot: Boot{Rebuild: RebuildOldSchema, ReplayFrom: 61, ReplayTo: 120, Replayed: 60},
	}, {
		// What fold v2 made of a cross-tenant event is no state of fold v3.
		name: "a state of fold v2 rebuilds",
		prepare: func(t *testing.T, e *bootEnv) *projection.Projection {
			e.checkpointOfFoldV2(t)
			return nil
		},
		boot: Boot{Rebuild: RebuildOldSchema, ReplayFrom: 1, ReplayTo: 3, Replayed: 3},
		status: func(t *testing.T, st Status) {
			want := projection.Counters{Applied: 2, Rejected: 1, UntenantedOfTenant: map[string]uint64{"t0": 2, "t1": 1}}
			if !st.Events.Equal(want) {
				t.Fatalf("Status().Events = %+v, want %+v", st.Events, want)
			}
		},
	}, {
		name: "newer schema rebuilds and keeps the file",
		prepare: func(t *testing.T, e *bootEnv) *projection.Projection {
			e.checkpointOfSchema(t, store.SchemaVersion+1)
			return nil
		},
		boot:  Boot{Rebuild: RebuildNewSchema, ReplayFrom: 1, ReplayTo: 25, Replayed: 25},
		aside: 1,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			e := &bootEnv{}
			e.dir, e.nc, e.log = startNATS(t, 0)
			want := tc.prepare(t, e)
			r := startProjector(t, e.dir, e.nc, Config{})
			b := r.p.BootInfo()
			rebuildOK := b.Rebuild == tc.boot.Rebuild || tc.boot.Rebuild != "" && strings.HasPrefix(b.Rebuild, tc.boot.Rebuild)
			if !rebuildOK || b.CheckpointCursor != tc.boot.CheckpointCursor || b.ReplayFrom != tc.boot.ReplayFrom ||
				b.ReplayTo != tc.boot.ReplayTo || b.Replayed != tc.boot.Replayed {
				t.Fatalf("BootInfo() = %+v, want %+v (Rebuild by its prefix)", b, tc.boot)
			}
			if tc.status != nil {
				st, err := r.p.Status(testutil.Ctx(t, 5*time.Second), "test")
				if err != nil {
					t.Fatal(err)
				}
				tc.status(t, st)
			}
			if want == nil {
				r.assertEqualsFold()
			} else {
				r.assertEquals(want, "the checkpointed state plus the retained events")
			}
			if m, _ := filepath.Glob(e.checkpointPath() + ".bad-*"); len(m) != tc.aside {
				t.Fatalf("files kept aside: %v, want %d", m, tc.aside)
			}
		})
	}
}

// bootEnv is a stream and the data dir of its checkpoint.
type bootEnv struct {
	dir       string
	nc        *nats.Conn
	log       *eventlog.Stream
	published int // events of testutil.Workload stored so far
}

// publish stores the next events of a workload, up to n in all.
func (e *bootEnv) publish(t *testing.T, n int) {
	t.Helper()
	testutil.MustPublish(t, e.nc, testutil.Workload(n)[e.published:]...)
	e.published = n
}

// checkpoint leaves a checkpoint at the stream's last sequence.
func (e *bootEnv) checkpoint(t *testing.T) {
	t.Helper()
	checkpointAtEnd(t, e.dir, e.nc)
}

// checkpointOfSchema leaves a checkpoint of 25 events that says it has
// the given schema.
func (e *bootEnv) checkpointOfSchema(t *testing.T, schema uint64) {
	t.Helper()
	e.publish(t, 25)
	e.checkpoint(t)
	mutateBolt(t, e.checkpointPath(), func(tx *bolt.Tx) error {
		b := make([]byte, 8)
		b[7] = byte(schema)
		return tx.Bucket([]byte("meta")).Put([]byte("schema"), b)
	})
}

// checkpointOfFoldV2 stores three events — a cell of t0, a "started"
// that declares t1, a "completed" that claims nothing — and leaves the
// checkpoint fold v2 wrote of them (schema 3): the cell completed through
// the foreign event's start. Fold v3 rejects that event, so the cell
// stays admitted until the "completed".
func (e *bootEnv) checkpointOfFoldV2(t *testing.T) {
	t.Helper()
	testutil.MustPublish(t, e.nc,
		testutil.Cell("c1", "admitted", map[string]any{"tenantId": "t0"}),
		testutil.Cell("c1", "started", map[string]any{"tenantId": "t1"}),
		testutil.Cell("c1", "completed", map[string]any{"exitCode": 0}))
	st, _, err := store.Open(e.checkpointPath())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Reset(e.log.Epoch()); err != nil {
		t.Fatal(err)
	}
	b, err := st.Batch()
	if err != nil {
		t.Fatal(err)
	}
	var dec projection.Decoder
	var times []time.Time
	err = e.log.FoldUpTo(testutil.Ctx(t, 10*time.Second), 3, func(d eventlog.Delivery) {
		projection.Apply(b, dec.Decode(projection.Message{Seq: d.Seq, Subject: d.Subject, Time: d.Time, Payload: d.Payload}))
		times = append(times, d.Time.UTC())
	})
	if err != nil || len(times) != 3 {
		t.Fatalf("fold of the stream: %d events, %v", len(times), err)
	}
	// What fold v2 had: the start applied (same cell otherwise), every
	// event counted as applied, no tenant counters.
	c, _ := b.LoadCell("c1")
	c.State, c.Outcome, c.ExitCode = projection.CellRunning, "", nil
	c.LastSeq, c.UpdatedAt = 2, times[1]
	b.SaveCell(c)
	b.Meta().Counters = projection.Counters{Applied: 3}
	if err := b.Commit(time.Now()); err != nil {
		t.Fatal(err)
	}
	b.Close()
	st.Close()
	mutateBolt(t, e.checkpointPath(), func(tx *bolt.Tx) error {
		v := make([]byte, 8)
		v[7] = 3
		return tx.Bucket([]byte("meta")).Put([]byte("schema"), v)
	})
}

func (e *bootEnv) purge(t *testing.T, opts ...jetstream.StreamPurgeOpt) {
	t.Helper()
	if err := e.log.Handle().Purge(testutil.Ctx(t, 5*time.Second), opts...); err != nil {
		t.Fatal(err)
	}
}

// deleteMsgs removes the messages from..to from the stream.
func (e *bootEnv) deleteMsgs(t *testing.T, from, to uint64) {
	t.Helper()
	for seq := from; seq <= to; seq++ {
		if err := e.log.Handle().DeleteMsg(testutil.Ctx(t, 5*time.Second), seq); err != nil {
			t.Fatal(err)
		}
	}
}

func (e *bootEnv) checkpointPath() string { return filepath.Join(e.dir, "checkpoint.db") }

// writeCheckpoint stores, for the stream's epoch, the checkpoint of a
// fold of n workload events of its own: the same sequences and phases as
// the stream's, other event ids.
func (e *bootEnv) writeCheckpoint(t *testing.T, n int) {
	t.Helper()
	st, _, err := store.Open(e.checkpointPath())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Reset(e.log.Epoch()); err != nil {
		t.Fatal(err)
	}
	b, err := st.Batch()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var dec projection.Decoder
	for i, ev := range testutil.Workload(n) {
		projection.Apply(b, dec.Decode(projection.Message{Seq: uint64(i + 1), Time: time.Now(), Payload: ev.Payload}))
	}
	if err := b.Commit(time.Now()); err != nil {
		t.Fatal(err)
	}
}

func mutateBolt(t *testing.T, path string, fn func(*bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}
