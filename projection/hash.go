package projection

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"iter"
	"maps"
	"slices"
	"time"
)

// The state hash (docs/design.md §5, "The state hash"): one digest of the
// registry a state holds at its cursor, like etcd's HashKV, so that a
// state file can be compared with a fold of the log (a rebuild) and two
// servers with each other without shipping the registry. It is defined
// here once, over a Walker, which the in-memory Projection and the
// store's View both are; it depends on what the entities say, never on
// how a state keeps them (bbolt's layout, the key table, map order, Go's
// JSON encoding). The encoding is explicit and versioned:
//
//	hash      = SHA-256(header, formation*, cell*, trailer)
//	header    = str("cellos-state-hash/v1"), u64(cursor)
//	formation = byte('F'), str(id), str(name), str(tenantId), str(status),
//	            u32(number of labels), (str(key), str(value))* by key,
//	            i64(cells.total), i64(admitted), i64(running),
//	            i64(completed), i64(failed), i64(destroyed),
//	            time(createdAt), time(updatedAt), u64(lastSeq),
//	            byte(deleted: 0 or 1), u64(firstSeq), u64(lastEvent)
//	cell      = byte('C'), str(id), str(formationId), str(tenantId),
//	            str(specId), str(runId), str(state), str(outcome),
//	            byte(0) | byte(1), i64(exitCode), str(reason),
//	            str(correlation), str(compliance),
//	            time(createdAt), time(updatedAt), u64(lastSeq),
//	            u64(firstSeq), u64(lastEvent)
//	trailer   = byte('E'), u64(formations), u64(cells)
//	str(s)    = u32(len(s)), the bytes of s
//	time(t)   = i64(Unix seconds), u32(nanoseconds)
//
// Integers are big-endian, i64 two's complement. Formations — tombstones
// included, each with its served cell counts — come in id order, then
// cells in id order (ids compare as bytes). correlation and compliance are
// the JSON text the fold keeps (compacted by the decoder, a compliance's
// keys sorted), "" when absent. The counters, gaps and what the retention
// rule pruned are not part of it: they count events, not the registry, and
// a fold of the retained log counts differently from a state that folded
// what has since expired.

// HashVersion names the encoding above; a change of it is a new version.
const HashVersion = "cellos-state-hash/v1"

// Walker is a state whose entities can be visited one at a time, in id
// order: what Hash reads, never the whole registry at once.
type Walker interface {
	Cursor() uint64
	// EachFormation calls fn with every formation held, tombstones
	// included, with its served counts and its span, in id order; it
	// stops at fn's first error and returns it.
	EachFormation(fn func(Formation) error) error
	// EachCell calls fn with every cell held, in id order.
	EachCell(fn func(Cell) error) error
}

// StateHash is the state hash of a state at its cursor.
type StateHash struct {
	Version string `json:"version"`
	Cursor  uint64 `json:"cursor"`
	// Value is the SHA-256, in lowercase hex.
	Value string `json:"value"`
	// Formations (tombstones included) and Cells count what was hashed.
	Formations int `json:"formations"`
	Cells      int `json:"cells"`
}

// Hash computes the state hash of w, streaming: one entity in memory at a
// time.
func Hash(w Walker) (StateHash, error) {
	return HashContext(context.Background(), w)
}

// hashCheckEvery is how many entities HashContext hashes between two
// looks at its context: often enough to stop within milliseconds, rare
// enough to cost nothing.
const hashCheckEvery = 4096

// HashContext is Hash that stops, with ctx's error, once ctx is done: a
// hash of a large state reads for seconds, and whoever waits for it to
// stop (a shutdown) should not wait for all of it.
func HashContext(ctx context.Context, w Walker) (StateHash, error) {
	if err := ctx.Err(); err != nil {
		return StateHash{}, err
	}
	h := newHasher(w.Cursor())
	n := 0
	check := func() error {
		if n++; n%hashCheckEvery == 0 {
			return ctx.Err()
		}
		return nil
	}
	if err := w.EachFormation(func(f Formation) error { h.formation(&f); return check() }); err != nil {
		return StateHash{}, err
	}
	if err := w.EachCell(func(c Cell) error { h.cell(&c); return check() }); err != nil {
		return StateHash{}, err
	}
	return h.sum(), nil
}

// hasher writes the encoding into SHA-256 through one reused buffer.
type hasher struct {
	h          hash.Hash
	buf        []byte
	cursor     uint64
	formations int
	cells      int
}

func newHasher(cursor uint64) *hasher {
	h := &hasher{h: sha256.New(), cursor: cursor}
	b := appendStr(nil, HashVersion)
	h.h.Write(binary.BigEndian.AppendUint64(b, cursor))
	return h
}

func (h *hasher) formation(f *Formation) {
	h.buf = encodeFormation(h.buf[:0], f)
	h.h.Write(h.buf)
	h.formations++
}

func (h *hasher) cell(c *Cell) {
	h.buf = encodeCell(h.buf[:0], c)
	h.h.Write(h.buf)
	h.cells++
}

func (h *hasher) sum() StateHash {
	b := binary.BigEndian.AppendUint64([]byte{'E'}, uint64(h.formations))
	h.h.Write(binary.BigEndian.AppendUint64(b, uint64(h.cells)))
	return StateHash{Version: HashVersion, Cursor: h.cursor, Value: hex.EncodeToString(h.h.Sum(nil)),
		Formations: h.formations, Cells: h.cells}
}

// encodeFormation appends f's encoding (above) to b.
func encodeFormation(b []byte, f *Formation) []byte {
	b = append(b, 'F')
	b = appendStr(b, f.ID)
	b = appendStr(b, f.Name)
	b = appendStr(b, f.TenantID)
	b = appendStr(b, f.Status)
	b = binary.BigEndian.AppendUint32(b, uint32(len(f.Labels)))
	for _, k := range slices.Sorted(maps.Keys(f.Labels)) {
		b = appendStr(appendStr(b, k), f.Labels[k])
	}
	c := &f.Cells
	for _, n := range [...]int{c.Total, c.Admitted, c.Running, c.Completed, c.Failed, c.Destroyed} {
		b = binary.BigEndian.AppendUint64(b, uint64(int64(n)))
	}
	b = appendHashTime(appendHashTime(b, f.CreatedAt), f.UpdatedAt)
	b = binary.BigEndian.AppendUint64(b, f.LastSeq)
	b = append(b, boolByte(f.Deleted))
	return appendSpan(b, f.Span)
}

// encodeCell appends c's encoding (above) to b.
func encodeCell(b []byte, c *Cell) []byte {
	b = append(b, 'C')
	for _, s := range [...]string{c.ID, c.FormationID, c.TenantID, c.SpecID, c.RunID, c.State, c.Outcome} {
		b = appendStr(b, s)
	}
	if c.ExitCode != nil {
		b = binary.BigEndian.AppendUint64(append(b, 1), uint64(*c.ExitCode))
	} else {
		b = append(b, 0)
	}
	b = appendStr(b, c.Reason)
	b = appendStr(b, string(c.Correlation))
	b = appendStr(b, string(c.Compliance))
	b = appendHashTime(appendHashTime(b, c.CreatedAt), c.UpdatedAt)
	b = binary.BigEndian.AppendUint64(b, c.LastSeq)
	return appendSpan(b, c.Span)
}

func appendStr(b []byte, s string) []byte {
	return append(binary.BigEndian.AppendUint32(b, uint32(len(s))), s...)
}

func appendHashTime(b []byte, t time.Time) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(b, uint64(t.Unix())), uint32(t.Nanosecond()))
}

func appendSpan(b []byte, sp Span) []byte {
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(b, sp.FirstSeq), sp.LastEvent)
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// EachFormation implements Walker.
func (p *Projection) EachFormation(fn func(Formation) error) error {
	for _, id := range slices.Sorted(maps.Keys(p.formations)) {
		if err := fn(p.formationView(p.formations[id])); err != nil {
			return err
		}
	}
	return nil
}

// EachCell implements Walker.
func (p *Projection) EachCell(fn func(Cell) error) error {
	for _, id := range slices.Sorted(maps.Keys(p.cells)) {
		if err := fn(*p.cells[id]); err != nil {
			return err
		}
	}
	return nil
}

var _ Walker = (*Projection)(nil)

// errFound stops a walk once FirstDifference has its answer.
var errFound = errors.New("found")

// FirstDifference walks got beside want, both in id order, one entity at
// a time, and names the first entity whose encoding differs — held by one
// side only, or by both with another content — or the cursor when only
// it differs; "" when they hash the same. want is the reference (a fold
// of the log), got the state compared with it.
func FirstDifference(want, got Walker) (string, error) {
	diff, err := firstDifference("formation", want.EachFormation, got.EachFormation, func(b []byte, f *Formation) ([]byte, string) {
		return encodeFormation(b, f), f.ID
	})
	if diff != "" || err != nil {
		return diff, err
	}
	diff, err = firstDifference("cell", want.EachCell, got.EachCell, func(b []byte, c *Cell) ([]byte, string) {
		return encodeCell(b, c), c.ID
	})
	if diff == "" && err == nil && want.Cursor() != got.Cursor() {
		diff = fmt.Sprintf("cursor: the state is at %d, the fold at %d", got.Cursor(), want.Cursor())
	}
	return diff, err
}

// firstDifference merges the entities of one kind that want and got walk,
// in id order, comparing their encodings.
func firstDifference[E any](kind string, want, got func(func(E) error) error, enc func([]byte, *E) ([]byte, string)) (string, error) {
	var werr error
	next, stop := iter.Pull(func(yield func(E) bool) {
		werr = want(func(e E) error {
			if !yield(e) {
				return errFound
			}
			return nil
		})
	})
	defer stop()
	var wb, gb []byte
	var wid string
	w, wok := next()
	if wok {
		wb, wid = enc(wb[:0], &w)
	}
	var diff string
	err := got(func(e E) error {
		var gid string
		gb, gid = enc(gb[:0], &e)
		switch {
		case wok && wid < gid:
			diff = fmt.Sprintf("%s %s: the state does not hold it, a fold of the log does", kind, wid)
		case !wok || wid != gid:
			diff = fmt.Sprintf("%s %s: the state holds it, a fold of the log does not", kind, gid)
		case string(wb) != string(gb):
			diff = fmt.Sprintf("%s %s: differs from a fold of the log", kind, gid)
		}
		if diff != "" {
			return errFound
		}
		if w, wok = next(); wok {
			wb, wid = enc(wb[:0], &w)
		}
		return nil
	})
	if err != nil && !errors.Is(err, errFound) {
		return "", err
	}
	if diff == "" && wok {
		diff = fmt.Sprintf("%s %s: the state does not hold it, a fold of the log does", kind, wid)
	}
	stop() // ends want's walk: werr is then its own error, or errFound
	if werr != nil && !errors.Is(werr, errFound) {
		return "", werr
	}
	return diff, nil
}
