package store

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"os"
)

// bbolt starts every transaction from the valid meta page (of the two)
// with the newest commit, and panics when neither is valid — inside
// Begin, holding its meta and mapping locks, which are then never
// released: every later read, commit and Close waits for ever (the
// corruption fuzzer found it: one damage to the older meta page, which
// has no effect while the newer holds, then one to the newer while no
// commit rewrote the older). So before a transaction begins, the Store
// reads both meta pages from the file (two small reads of the page cache,
// through a handle kept open beside bbolt's) and a file where neither
// holds is ErrDamaged: a repair, not a hang. Damage in the moment between
// that read and bbolt's is not covered.

const (
	metaPageHeader = 16
	metaChecksumAt = 56 // the FNV-64a checksum covers the meta before it
	metaLen        = metaChecksumAt + 8
	boltMagic      = 0xED0CDAED
)

// metaPages is a read-only handle on a state file, for its meta pages.
type metaPages struct {
	f        *os.File
	pageSize int64
}

// openMetaPages opens the file at path (the one bbolt has just opened)
// for reading its meta pages.
func openMetaPages(path string, pageSize int) (*metaPages, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	return &metaPages{f: f, pageSize: int64(pageSize)}, nil
}

// close closes the handle; nil does nothing.
func (m *metaPages) close() {
	if m != nil {
		_ = m.f.Close()
	}
}

// parseMeta reads a meta page's meta (from after its page header): its
// commit (txid) and freelist page, and whether its magic and checksum
// hold.
func parseMeta(b []byte) (txid, freelist uint64, ok bool) {
	le := binary.LittleEndian
	h := fnv.New64a()
	_, _ = h.Write(b[:metaChecksumAt])
	// magic, version, page size, flags, root (16), then freelist, pgid,
	// txid.
	ok = le.Uint32(b) == boltMagic && h.Sum64() == le.Uint64(b[metaChecksumAt:])
	return le.Uint64(b[48:]), le.Uint64(b[32:]), ok
}

// metaOK fails when neither meta page of the file holds. A handle that
// cannot be read (closed by a concurrent swap) is not damage: bbolt's
// own Begin then says what it is.
func (s *Store) metaOK() error {
	m := s.metas.Load()
	if m == nil {
		return nil
	}
	var b [metaLen]byte
	for page := range int64(2) {
		if _, err := m.f.ReadAt(b[:], page*m.pageSize+metaPageHeader); err != nil {
			return nil
		}
		if _, _, ok := parseMeta(b[:]); ok {
			return nil
		}
	}
	return fmt.Errorf("%w: neither meta page of the file holds", ErrDamaged)
}
