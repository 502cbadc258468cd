package store

import (
	"encoding/binary"
	"fmt"
	"os"
	"runtime/debug"

	"golang.org/x/sys/unix"
)

// bbolt starts every transaction from the valid meta page (of the two)
// with the newest commit, and panics when neither is valid — inside
// Begin, holding its meta and mapping locks, which are then never
// released: every later read, commit and Close waits for ever (the
// corruption fuzzer found it: one damage to the older meta page, which
// has no effect while the newer holds, then one to the newer while no
// commit rewrote the older). So before a transaction begins, the Store
// reads both meta pages of the file (through a mapping of its own) and a
// file where neither holds is ErrDamaged: a repair, not a hang. Damage in the moment between
// that read and bbolt's is not covered.

const (
	metaPageHeader = 16
	metaChecksumAt = 56 // the FNV-64a checksum covers the meta before it
	metaLen        = metaChecksumAt + 8
	boltMagic      = 0xED0CDAED
)

// metaPages is a read-only mapping of a state file's two meta pages, the
// same page cache bbolt's mapping reads: checking them is a few memory
// reads, not a system call per transaction (a pread made a point read
// 60 % slower).
type metaPages struct {
	data     []byte
	pageSize int
}

// openMetaPages maps the meta pages of the file at path (the one bbolt
// has just opened).
func openMetaPages(path string, pageSize int) (*metaPages, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := unix.Mmap(int(f.Fd()), 0, 2*pageSize, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("map the meta pages of %s: %w", path, err)
	}
	return &metaPages{data: data, pageSize: pageSize}, nil
}

// close unmaps the pages; nil does nothing.
func (m *metaPages) close() {
	if m != nil {
		_ = unix.Munmap(m.data)
	}
}

// parseMeta reads a meta page's meta (from after its page header): its
// commit (txid) and freelist page, and whether its magic and checksum
// hold.
func parseMeta(b []byte) (txid, freelist uint64, ok bool) {
	le := binary.LittleEndian
	sum := uint64(14695981039346656037) // FNV-64a, as bbolt sums its meta
	for _, c := range b[:metaChecksumAt] {
		sum = (sum ^ uint64(c)) * 1099511628211
	}
	// magic, version, page size, flags, root (16), then freelist, pgid,
	// txid.
	ok = le.Uint32(b) == boltMagic && sum == le.Uint64(b[metaChecksumAt:])
	return le.Uint64(b[48:]), le.Uint64(b[32:]), ok
}

// metaOK fails when neither meta page of the file holds. A mapping
// unmapped under it (the file closed by a concurrent swap) is not damage:
// bbolt's own Begin then says what it is.
func (s *Store) metaOK() (err error) {
	m := s.metas.Load()
	if m == nil {
		return nil
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if recover() != nil {
			err = nil
		}
	}()
	for page := range 2 {
		at := page*m.pageSize + metaPageHeader
		if _, _, ok := parseMeta(m.data[at : at+metaLen]); ok {
			return nil
		}
	}
	return fmt.Errorf("%w: neither meta page of the file holds", ErrDamaged)
}
