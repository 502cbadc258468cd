package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"cellos-allinone/projection"
)

// Records are compact binary encodings of the entities, a version byte
// first. Strings are length-prefixed (uvarint); JSON values are in the
// stored form of blob.go; label names are numbers of the key table; times
// are seconds (varint) and nanoseconds (uvarint), exact for every year the
// fold accepts. The last fields are lastSeq and the entity's span
// (projection.Span) as two differences, lastSeq-firstSeq and
// lastEvent-lastSeq, most often one byte each. Version 1 (schema 4) had no
// span. A record ends in its seal (seal.go; schema 6).
const recordVersion = 2

// The states, outcomes and statuses as stored: their index in these lists.
var (
	cellStates        = []string{projection.CellAdmitted, projection.CellRunning, projection.CellCompleted, projection.CellFailed, projection.CellDestroyed}
	cellOutcomes      = []string{projection.OutcomeNone, projection.OutcomeCompleted, projection.OutcomeFailed}
	formationStatuses = []string{projection.FormationCreated, projection.FormationLaunching, projection.FormationRunning, projection.FormationDegraded,
		projection.FormationCompleted, projection.FormationFailed, projection.FormationCancelled}
)

func indexOf(list []string, s string) (byte, bool) {
	for i, v := range list {
		if v == s {
			return byte(i), true
		}
	}
	return 0, false
}

// ErrDamaged marks a state file that cannot be read as written: a record
// that does not decode, or a page bbolt or the memory map refuses.
var ErrDamaged = errors.New("damaged state file")

// ownIDs are the strings a cell's JSON values may refer to.
func ownIDs(c *projection.Cell) *[5]string {
	return &[5]string{c.ID, c.FormationID, c.TenantID, c.SpecID, c.RunID}
}

// encodeCell appends c's record to dst.
func encodeCell(dst []byte, c *projection.Cell, keys *keyTable) []byte {
	start := len(dst)
	st, _ := indexOf(cellStates, c.State)
	oc, _ := indexOf(cellOutcomes, c.Outcome)
	dst = append(dst, recordVersion, st, oc)
	dst = appendString(dst, c.FormationID)
	dst = appendString(dst, c.TenantID)
	dst = appendString(dst, c.SpecID)
	dst = appendString(dst, c.RunID)
	dst = appendString(dst, c.Reason)
	if c.ExitCode != nil {
		dst = append(dst, 1)
		dst = binary.AppendVarint(dst, *c.ExitCode)
	} else {
		dst = append(dst, 0)
	}
	own := ownIDs(c)
	dst = appendBlob(dst, c.Correlation, keys, own)
	dst = appendBlob(dst, c.Compliance, keys, own)
	dst = appendTime(dst, c.CreatedAt)
	dst = appendTime(dst, c.UpdatedAt)
	return seal(idKey(c.ID), appendSeqs(dst, c.LastSeq, c.Span), start)
}

// appendSeqs appends lastSeq and the span as seqs reads them. The fold
// keeps firstSeq <= lastSeq <= lastEvent; a span outside that order (an
// entity made up by a tool) is stored clamped to it.
func appendSeqs(dst []byte, lastSeq uint64, sp projection.Span) []byte {
	dst = binary.AppendUvarint(dst, lastSeq)
	dst = binary.AppendUvarint(dst, lastSeq-min(sp.FirstSeq, lastSeq))
	return binary.AppendUvarint(dst, max(sp.LastEvent, lastSeq)-lastSeq)
}

// seqs reads what appendSeqs wrote: firstSeq <= lastSeq <= lastEvent.
func (r *reader) seqs() (lastSeq uint64, sp projection.Span) {
	lastSeq = r.uvarint()
	back, ahead := r.uvarint(), r.uvarint()
	if back > lastSeq || ahead > math.MaxUint64-lastSeq {
		r.err = ErrDamaged
		return 0, sp
	}
	return lastSeq, projection.Span{FirstSeq: lastSeq - back, LastEvent: lastSeq + ahead}
}

// decodeCell reads a record written by encodeCell for id, its seal
// first. Nothing of rec is kept: bbolt's bytes are valid only inside
// their transaction.
func decodeCell(id string, rec []byte, names []string) (projection.Cell, error) {
	c := projection.Cell{ID: id}
	rec, ok := unseal(idKey(id), rec)
	if !ok {
		return c, errSeal("cell", []byte(id))
	}
	r := reader{b: rec}
	if r.byte() != recordVersion {
		return c, fmt.Errorf("cell %q: %w: unknown version", id, ErrDamaged)
	}
	st, oc := r.byte(), r.byte()
	if int(st) >= len(cellStates) || int(oc) >= len(cellOutcomes) {
		return c, fmt.Errorf("cell %q: %w: state %d outcome %d", id, ErrDamaged, st, oc)
	}
	c.State, c.Outcome = cellStates[st], cellOutcomes[oc]
	c.FormationID = r.string()
	c.TenantID = r.string()
	c.SpecID = r.string()
	c.RunID = r.string()
	c.Reason = r.string()
	if r.byte() == 1 {
		n := r.varint()
		c.ExitCode = &n
	}
	corr, comp := r.raw(), r.raw()
	c.CreatedAt = r.time()
	c.UpdatedAt = r.time()
	c.LastSeq, c.Span = r.seqs()
	if r.err != nil || len(r.b) != 0 {
		return c, fmt.Errorf("cell %q: %w", id, ErrDamaged)
	}
	var err error
	own := ownIDs(&c)
	if c.Correlation, err = expandBlob(corr, names, own); err == nil {
		c.Compliance, err = expandBlob(comp, names, own)
	}
	if err != nil {
		return c, fmt.Errorf("cell %q: %w", id, err)
	}
	return c, nil
}

// encodeFormation appends f's record (without its derived counts).
func encodeFormation(dst []byte, f *projection.Formation, keys *keyTable) []byte {
	start := len(dst)
	st, _ := indexOf(formationStatuses, f.Status)
	deleted := byte(0)
	if f.Deleted {
		deleted = 1
	}
	dst = append(dst, recordVersion, st, deleted)
	dst = appendString(dst, f.Name)
	dst = appendString(dst, f.TenantID)
	dst = binary.AppendUvarint(dst, uint64(len(f.Labels)))
	for _, k := range sortedKeys(f.Labels) {
		if id, ok := keys.id([]byte(k)); ok {
			dst = binary.AppendUvarint(dst, id)
		} else {
			dst = append(dst, 0)
			dst = appendString(dst, k)
		}
		dst = appendString(dst, f.Labels[k])
	}
	dst = appendTime(dst, f.CreatedAt)
	dst = appendTime(dst, f.UpdatedAt)
	return seal(idKey(f.ID), appendSeqs(dst, f.LastSeq, f.Span), start)
}

// decodeFormation reads a record written by encodeFormation for id, its
// seal first.
func decodeFormation(id string, rec []byte, names []string) (projection.Formation, error) {
	f := projection.Formation{ID: id}
	rec, ok := unseal(idKey(id), rec)
	if !ok {
		return f, errSeal("formation", []byte(id))
	}
	r := reader{b: rec}
	if r.byte() != recordVersion {
		return f, fmt.Errorf("formation %q: %w: unknown version", id, ErrDamaged)
	}
	st, deleted := r.byte(), r.byte()
	if int(st) >= len(formationStatuses) || deleted > 1 {
		return f, fmt.Errorf("formation %q: %w: status %d", id, ErrDamaged, st)
	}
	f.Status, f.Deleted = formationStatuses[st], deleted == 1
	f.Name = r.string()
	f.TenantID = r.string()
	if n := r.uvarint(); n > 0 && n <= uint64(len(r.b)) {
		f.Labels = make(map[string]string, n)
		for range n {
			var k string
			switch code := r.uvarint(); {
			case code == 0:
				k = r.string()
			case code-1 < uint64(len(names)):
				k = names[code-1]
			default:
				r.err = ErrDamaged
			}
			f.Labels[k] = r.string()
		}
	} else if n > 0 {
		r.err = ErrDamaged
	}
	f.CreatedAt = r.time()
	f.UpdatedAt = r.time()
	f.LastSeq, f.Span = r.seqs()
	if r.err != nil || len(r.b) != 0 {
		return f, fmt.Errorf("formation %q: %w", id, ErrDamaged)
	}
	return f, nil
}

// encodeCounts and decodeCounts store a formation's derived cell counts,
// sealed under the formation id.
func encodeCounts(id string, c projection.CellCounts) []byte {
	var b []byte
	for _, n := range []int{c.Total, c.Admitted, c.Running, c.Completed, c.Failed, c.Destroyed} {
		b = binary.AppendUvarint(b, uint64(n))
	}
	return seal(idKey(id), b, 0)
}

// decodeCounts reads the counts record of formation id; no record is all
// zeros.
func decodeCounts(id string, rec []byte) (projection.CellCounts, error) {
	var c projection.CellCounts
	if rec == nil {
		return c, nil
	}
	rec, ok := unseal(idKey(id), rec)
	if !ok {
		return c, errSeal("cell counts", []byte(id))
	}
	r := reader{b: rec}
	c = projection.CellCounts{
		Total: int(r.uvarint()), Admitted: int(r.uvarint()), Running: int(r.uvarint()),
		Completed: int(r.uvarint()), Failed: int(r.uvarint()), Destroyed: int(r.uvarint()),
	}
	if r.err != nil || len(r.b) != 0 {
		return projection.CellCounts{}, fmt.Errorf("cell counts: %w", ErrDamaged)
	}
	return c, nil
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

func appendTime(dst []byte, t time.Time) []byte {
	dst = binary.AppendVarint(dst, t.Unix())
	return binary.AppendUvarint(dst, uint64(t.Nanosecond()))
}

// reader decodes a record; the first error sticks and later reads return
// zero values.
type reader struct {
	b   []byte
	err error
}

func (r *reader) byte() byte {
	if r.err != nil || len(r.b) == 0 {
		r.err = ErrDamaged
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = ErrDamaged
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = ErrDamaged
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) raw() []byte {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.b)) {
		r.err = ErrDamaged
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) string() string { return string(r.raw()) }

func (r *reader) time() time.Time {
	sec := r.varint()
	nsec := r.uvarint()
	if nsec >= 1e9 {
		r.err = ErrDamaged
	}
	return time.Unix(sec, int64(nsec)).UTC()
}
