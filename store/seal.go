package store

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"unsafe"
)

// Every value the state stores carries a checksum of what it says, so
// that a page garbled by the medium (docs/durability.md, "Checksums") is
// found when it is read instead of being served (docs/design.md §4: the
// state never answers what the log does not say):
//
//   - the records of formations and cells, the formation counts (fcounts,
//     fpruned), the tenant aggregates, the key table and the meta entries
//     but the schema end in a seal: CRC-32C (Castagnoli) over the key and
//     the value, the key's length mixed in. Covering the key means a record
//     is never served under another id, and mixing in its length means a
//     damaged page header cannot move the boundary between key and value
//     unnoticed.
//   - index entries (ix-*) hold their whole meaning in the key and had an
//     empty value: the value is now the seal of the key (and an empty
//     value), so a garbled id in an index is found before it is followed.
//
// The schema entry stays eight bare bytes: a damaged one reads as another
// schema, which is rebuilt (older) or moved aside (newer) — a repair
// either way, and the check that tells an old file from a new one must not
// depend on the new layout.
//
// On read, a seal that does not hold is ErrDamaged: a View fails with it
// (the API answers 503 state_damaged and the projector starts a repair),
// never with a record it could not vouch for. Lists go further (View.Cells,
// View.Formations): an id taken from an index must name a record whose
// seal holds and whose fields file it under that very index key; a missing
// or mismatching record is damage too, never a silently shorter page, so
// the next cursor of a page is always an id some sealed record has.
const sealLen = 4

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checksum is the seal's value for key and val: the CRC-32C of key+val
// XOR the key's length times an odd constant (a bijection), so that two
// splits of the same bytes into key and value never have one checksum.
func checksum(key, val []byte) uint32 {
	c := crc32.Update(0, castagnoli, key)
	c = crc32.Update(c, castagnoli, val)
	return c ^ uint32(len(key))*0x9e3779b1
}

// idKey is id as a key for checksum, without a copy: what crc32 is given
// escapes (a copy would be an allocation per read), and it only reads it.
func idKey(id string) []byte { return unsafe.Slice(unsafe.StringData(id), len(id)) }

// seal appends to rec (a value stored under key, from rec[from:]) its
// seal.
func seal(key, rec []byte, from int) []byte {
	return binary.BigEndian.AppendUint32(rec, checksum(key, rec[from:]))
}

// sealed returns a new value: val with its seal for key.
func sealed(key, val []byte) []byte {
	return seal(key, append(make([]byte, 0, len(val)+sealLen), val...), 0)
}

// unseal returns the value rec holds under key without its seal; false
// when the seal does not hold.
func unseal(key, rec []byte) ([]byte, bool) {
	if len(rec) < sealLen {
		return nil, false
	}
	val := rec[:len(rec)-sealLen]
	return val, binary.BigEndian.Uint32(rec[len(val):]) == checksum(key, val)
}

// indexValue is the value of index key k: its seal.
func indexValue(k []byte) []byte { return seal(k, make([]byte, 0, sealLen), 0) }

// indexSealed reports whether val is the seal of index key k.
func indexSealed(k, val []byte) bool {
	v, ok := unseal(k, val)
	return ok && len(v) == 0
}

// errSeal is the damage of a value whose seal does not hold.
func errSeal(what string, key []byte) error {
	return fmt.Errorf("%s %q: %w: checksum mismatch", what, key, ErrDamaged)
}
