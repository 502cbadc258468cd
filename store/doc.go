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
// A file that bbolt cannot open, whose records do not decode, or whose
// schema is newer than this binary's is moved aside (never deleted) and a
// fresh file takes its place, so a bad checkpoint costs a rebuild, never a
// crash loop.
package store
