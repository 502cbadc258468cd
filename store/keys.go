package store

import (
	"encoding/binary"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// The object keys of stored JSON (correlation, compliance, label names)
// repeat in every record: each gets a small number, kept in bucket "keys"
// (number → the key's JSON text, sealed: seal.go) and loaded when the file is opened. The
// table only grows while the file lives (a rebuild starts a new file and
// a new table); it is bounded, and a key beyond the bound or too long is
// stored literally, so no producer can make it large.
const (
	maxKeys   = 4096
	maxKeyLen = 64
)

var bucketKeys = []byte("keys")

// keyTable is the number of each key. Only the writer (one Batch) adds;
// readers decode with a snapshot, which is never older than the records
// their transaction sees: a number is in the table before the commit that
// first uses it.
type keyTable struct {
	mu        sync.Mutex
	ids       map[string]uint64
	names     atomic.Pointer[[]string] // number-1 → key
	persisted int                      // names written to the file
}

// loadKeys reads the table of a file.
func loadKeys(tx *bolt.Tx) (*keyTable, error) {
	t := &keyTable{ids: map[string]uint64{}}
	var names []string
	if b := tx.Bucket(bucketKeys); b != nil {
		err := b.ForEach(func(k, v []byte) error {
			if len(k) != 4 || binary.BigEndian.Uint32(k) != uint32(len(names)+1) {
				return ErrDamaged
			}
			v, ok := unseal(k, v)
			if !ok {
				return errSeal("key table entry", k)
			}
			names = append(names, string(v))
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	for i, n := range names {
		t.ids[n] = uint64(i + 1)
	}
	t.names.Store(&names)
	t.persisted = len(names)
	return t, nil
}

// snapshot is the table for decoding.
func (t *keyTable) snapshot() []string { return *t.names.Load() }

// id numbers key, adding it when there is room; false: store it literally.
func (t *keyTable) id(key []byte) (uint64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if id, ok := t.ids[string(key)]; ok {
		return id, true
	}
	old := *t.names.Load()
	if len(old) >= maxKeys || len(key) > maxKeyLen {
		return 0, false
	}
	names := append(old[:len(old):len(old)], string(key))
	t.names.Store(&names)
	id := uint64(len(names))
	t.ids[string(key)] = id
	return id, true
}

// persist writes the keys added since the last successful commit into tx;
// committed marks them written once tx has committed.
func (t *keyTable) persist(tx *bolt.Tx) (committed func(), err error) {
	t.mu.Lock()
	names := *t.names.Load()
	from := t.persisted
	t.mu.Unlock()
	if from == len(names) {
		return func() {}, nil
	}
	b, err := tx.CreateBucketIfNotExists(bucketKeys)
	if err != nil {
		return nil, err
	}
	for i := from; i < len(names); i++ {
		k := make([]byte, 4)
		binary.BigEndian.PutUint32(k, uint32(i+1))
		if err := b.Put(k, sealed(k, []byte(names[i]))); err != nil {
			return nil, err
		}
	}
	return func() {
		t.mu.Lock()
		t.persisted = max(t.persisted, len(names))
		t.mu.Unlock()
	}, nil
}
