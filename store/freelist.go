package store

import (
	"encoding/binary"
	"fmt"
	"os"

	bolt "go.etcd.io/bbolt"
)

// bbolt keeps its list of free pages in a page of its own, without a
// checksum, and trusts it: it reads it when it opens the file (and when a
// commit fails), and every commit frees the old one page by page, its
// length taken from its header. A garbled freelist page has no effect
// while the server runs — until the next commit, which then loops over
// billions of "overflow" pages (the fuzzer found a start that never got
// ready, its memory growing by gigabytes), panics, or allocates pages that
// are in use and writes over live records. So before every write, and
// when a file is opened, the freelist page the commit starts from is read
// from the file and checked: a freelist page of its own id, within the
// pages the file uses, holding as many ids as it has room for, each a page
// of the file, in order. Any other is ErrDamaged: a repair, never a write.
// The cost is two small reads per commit (the list itself, 8 bytes per
// free page, is in the page cache).

const freelistFlag = 0x10

// checkFreelist checks the freelist page, in the file at path, of the
// commit tx starts from
// (tx.ID() for a read transaction, tx.ID()-1 for a write one).
func checkFreelist(tx *bolt.Tx, path string) error {
	db := tx.DB()
	ps := uint64(db.Info().PageSize)
	commit := uint64(tx.ID())
	if tx.Writable() {
		commit--
	}
	f, err := os.Open(path) // not db.Path(): a compacted copy is renamed under its handle
	if err != nil {
		return err
	}
	defer f.Close()
	le := binary.LittleEndian
	damaged := func(format string, args ...any) error {
		return fmt.Errorf("%w: freelist: %s", ErrDamaged, fmt.Sprintf(format, args...))
	}
	freelist, found := uint64(0), false
	meta := make([]byte, metaLen)
	for page := range uint64(2) {
		if _, err := f.ReadAt(meta, int64(page*ps+metaPageHeader)); err != nil {
			return damaged("meta page %d: %v", page, err)
		}
		if txid, fl, ok := parseMeta(meta); ok && txid == commit {
			freelist, found = fl, true
		}
	}
	if !found {
		return damaged("no meta page holds commit %d", commit)
	}
	if freelist == ^uint64(0) {
		return nil // not kept in the file (NoFreelistSync)
	}
	used := uint64(tx.Size()) / ps // the pages the commit uses
	if freelist < 2 || freelist >= used {
		return damaged("page %d is outside the %d pages in use", freelist, used)
	}
	hdr := make([]byte, metaPageHeader+8)
	if _, err := f.ReadAt(hdr, int64(freelist*ps)); err != nil {
		return damaged("page %d: %v", freelist, err)
	}
	id, flags, count, overflow := le.Uint64(hdr), le.Uint16(hdr[8:]), uint64(le.Uint16(hdr[10:])), uint64(le.Uint32(hdr[12:]))
	if id != freelist || flags != freelistFlag || freelist+overflow >= used {
		return damaged("page %d: header says page %d, flags %#x, %d overflow pages (%d pages in use)", freelist, id, flags, overflow, used)
	}
	skip := uint64(0)
	if count == 0xFFFF { // the count is in the first element
		count, skip = le.Uint64(hdr[metaPageHeader:]), 1
	}
	if count > (overflow+1)*ps/8 || metaPageHeader+(count+skip)*8 > (overflow+1)*ps {
		return damaged("page %d: %d ids do not fit in %d pages", freelist, count, overflow+1)
	}
	ids := make([]byte, count*8)
	if _, err := f.ReadAt(ids, int64(freelist*ps+metaPageHeader+skip*8)); err != nil {
		return damaged("page %d: %v", freelist, err)
	}
	prev := uint64(1)
	for i := uint64(0); i < count; i++ {
		p := le.Uint64(ids[i*8:])
		if p <= prev || p >= used {
			return damaged("page %d: free page id %d (after %d) is not a page of the file in order", freelist, p, prev)
		}
		prev = p
	}
	return nil
}
