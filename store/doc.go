// Package store keeps the projection's state in a bbolt file: the file is
// the state, not a snapshot of one held in memory.
//
// The write side is a Batch (a projection.State): the fold changes
// entities in it, and Commit writes every change, the derived counts,
// indexes and aggregates, and the position in ONE bbolt transaction, so
// the cursor on disk always describes exactly the state beside it. bbolt
// fsyncs every commit. The read side is a View (a projection.Reader) over
// one read transaction: one answer is one committed state. A View is also
// a projection.Walker: it walks every record in id order, for the state
// hash (docs/design.md §5).
//
// Bucket tree (schema 6). Every value but the schema ends in a seal, a
// CRC-32C over its key and itself, and an index entry's value is the
// seal of its key (seal.go):
//
//	meta/
//	  schema     big-endian uint64, SchemaVersion
//	  epoch      the stream incarnation the state is a fold of
//	  cursor     big-endian uint64, last applied stream sequence
//	  position   JSON projection.Meta (cursor id, counters, gaps, what the
//	             retention rule pruned and the floor it pruned at) but …
//	  untenanted … the counters' untenanted-form count per tenant, JSON:
//	             up to 1,001 keys that only the status reads, kept out of
//	             the position every read decodes
//	  at         RFC 3339 time of the commit
//	formations/           id -> formation record (record.go; tombstones included)
//	cells/                id -> cell record
//	fcounts/              formation id -> its cells held, counted by state
//	fpruned/              formation id -> its pruned cells it still counts
//	aggregates/           't' + tenant -> the tenant's counts (aggregate.go)
//	keys/                 big-endian uint32 n -> the object key numbered n (keys.go)
//	ix-cell-tenant/       len, tenant, class, id -> ""
//	ix-cell-formation/    len, formation, class, id -> ""
//	ix-cell-class/        class, id -> ""
//	ix-formation-tenant/  len, tenant, status, id -> ""
//	ix-formation-status/  status, id -> ""
//	ix-ended/             lastEvent, kind ('f' or 'c'), id -> "": what the
//	                      retention rule removes once lastEvent expired
//
// A class is a cell's state and outcome in one byte. Every index range is
// ordered by id, as the lists are, so a filtered page is a merge of a few
// ranges and never a scan of every entity.
//
// Schema versions: 1 was fold v1; 2 adds a cell's outcome (fold v2), both
// as JSON records read whole into memory; 3 is this layout; 4 is the same
// layout holding a fold v3 (tenants from the subject, rejected events,
// inherited tenants, the counters that come with them), which a state of
// fold v2 is not; 5 adds the retention rule (prune.go): each record keeps
// the span of the log its entity depends on, fpruned and ix-ended are new,
// and the position says what was pruned; 6 seals every value (seal.go).
// A file of an older schema is rebuilt from the stream.
//
// A formation's cells, which it hands its tenant when it first gets one
// (Batch.FormationCells), are its ix-cell-formation range (every class)
// plus those that joined it since the last commit; a formation without a
// counts record has no committed cells, so the range is read only for a
// formation that has some.
//
// A file that bbolt opened but could not read, whose key table does not
// decode, or whose schema is newer than this binary's is moved aside
// (never deleted) and a fresh file takes its place, so a bad file costs a
// rebuild, never a crash loop. A record whose seal does not hold, or that
// does not decode, is found when it is read and reported as ErrDamaged;
// so is an index entry whose seal does not hold, or whose record is
// missing or filed elsewhere. A file the operating system
// does not let the process open (permissions, a read-only mount, a full
// disk) is an error naming the file: nothing is moved, since a rebuild
// would not fix it. Opening a file that has every bucket writes nothing.
//
// Scrub (scrub.go) reads the whole state in short read transactions at a
// share of one core and checks what reads only check where they go: every
// record against its seal and its index entries, every index entry
// against its record, the counts and aggregates against what they count,
// the keys' order, and bbolt's own consistency check.
//
// bbolt keeps the pages a commit frees for later commits and never gives
// them back to the file system. Compact copies the last commit densely
// into a file beside the served one (CompactSuffix), reading the served
// file only, and SwapIn renames the copy over it: until that rename the
// served file is untouched, so a crash during a compaction leaves it as it
// was and the copy is a leftover (RemoveLeftovers); after it the copy,
// complete and holding the same commit, is the state file. FileStats says
// how much of the file is live and how much is free.
package store
