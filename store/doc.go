// Package store keeps the projection's checkpoint in a bbolt file.
//
// A checkpoint is the projection's changed entities plus its position,
// written in ONE bbolt transaction, so the cursor on disk always describes
// exactly the entities beside it. bbolt fsyncs every commit.
//
// Bucket tree:
//
//	meta/
//	  schema     big-endian uint64, SchemaVersion
//	  epoch      the stream incarnation the checkpoint belongs to
//	  cursor     big-endian uint64, last applied stream sequence
//	  position   JSON projection.Meta (cursor id, counters, gaps)
//	  at         RFC 3339 time of the commit
//	formations/  id -> JSON projection.Formation (tombstones included)
//	cells/       id -> JSON projection.Cell
//
// Schema versions: 1 was fold v1; 2 adds a cell's outcome (fold v2). A
// checkpoint of an older schema is rebuilt from the stream.
//
// A file that bbolt opened but could not read, whose records do not
// decode, or whose schema is newer than this binary's is moved aside
// (never deleted) and a fresh file takes its place, so a bad checkpoint
// costs a rebuild, never a crash loop. A file the operating system does
// not let the process open (permissions, a read-only mount, a full disk)
// is an error naming the file: nothing is moved, since a rebuild would not
// fix it.
package store
