package testutil

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
)

// The damage kit: it reads a bbolt file the way bbolt lays it out (v1.5,
// internal/common: page.go, meta.go, bucket.go) far enough to aim a
// damage at a kind of page or a part of one, and writes the damage into
// the file with pwrite — into a file a running bbolt maps shared too, so
// its readers see the damage at once, as they would a medium's. Every
// damage is drawn from a seed and prints as what it did, so that a
// failure names the damage and can be redone.

// Page layout (bbolt internal/common/page.go): a 16-byte header (id
// uint64, flags uint16, count uint16, overflow uint32), then count
// elements of 16 bytes, then the keys and values they point at.
const (
	boltPageHeader = 16
	boltElemSize   = 16
	boltBranch     = 0x01
	boltLeaf       = 0x02
	boltMeta       = 0x04
	boltFreelist   = 0x10
	boltBucketLeaf = 0x01 // a leaf element that is a bucket
	boltMagic      = 0xED0CDAED
)

// Page classes of a BoltMap.
const (
	PageMeta     = "meta"
	PageFreelist = "freelist"
	PageBranch   = "branch"
	PageLeaf     = "leaf"
	PageFree     = "free" // not reachable from the last commit: stale or never used
)

// BoltPage is one page of a bbolt file as the last commit sees it.
type BoltPage struct {
	ID       uint64
	Class    string // PageMeta, …
	Bucket   string // the top-level bucket a branch or leaf page belongs to ("" for the root)
	Overflow uint32 // pages that follow it as part of it
	// Elements of a branch or leaf page: where each key and value is, as
	// offsets in the file.
	Elems []BoltElem
}

// BoltElem is one element of a branch or leaf page: its 16-byte header,
// its key and (leaf) its value, as file offsets and lengths.
type BoltElem struct {
	Header, Key, Val int64
	KeyLen, ValLen   int
}

// BoltMap is the page map of a bbolt file.
type BoltMap struct {
	PageSize int
	HighMark uint64 // pages below it are in use by the file (meta's pgid)
	Pages    []BoltPage
	byClass  map[string][]int
}

// MapBolt reads the bbolt file at path and classifies its pages, walking
// the tree of the meta page with the highest transaction id.
func MapBolt(path string) (*BoltMap, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) < 2*boltPageHeader+64 {
		return nil, fmt.Errorf("%s: too short for a bbolt file", path)
	}
	le := binary.LittleEndian
	// meta (internal/common/meta.go) after the page header: magic,
	// version, pageSize, flags (uint32 each), root bucket (root pgid,
	// sequence), freelist pgid, pgid (high water mark), txid, checksum.
	metaAt := func(off int) (ok bool, pageSize int, root, freelist, hwm, txid uint64) {
		m := data[off+boltPageHeader:]
		if le.Uint32(m[0:]) != boltMagic {
			return false, 0, 0, 0, 0, 0
		}
		return true, int(le.Uint32(m[8:])), le.Uint64(m[16:]), le.Uint64(m[32:]), le.Uint64(m[40:]), le.Uint64(m[48:])
	}
	ok0, ps, root, fl, hwm, tx := metaAt(0)
	if !ok0 || ps < 512 || ps > 1<<16 {
		// Meta page 0 is damaged (a damage that had no effect, as bbolt
		// reads the other): find page 1 where a page size puts it.
		ok0 = false
		for try := 512; try <= 1<<16 && !ok0; try *= 2 {
			if len(data) >= try+boltPageHeader+64 {
				var ps1 int
				if ok0, ps1, root, fl, hwm, tx = metaAt(try); ok0 && ps1 != try {
					ok0 = false
				}
				ps = try
			}
		}
		if !ok0 {
			return nil, fmt.Errorf("%s: neither meta page holds", path)
		}
	} else if len(data) >= ps+boltPageHeader+64 {
		if ok1, ps1, root1, fl1, hwm1, tx1 := metaAt(ps); ok1 && ps1 == ps && tx1 > tx {
			root, fl, hwm, tx = root1, fl1, hwm1, tx1
		}
	}
	_ = tx
	m := &BoltMap{PageSize: ps, HighMark: hwm, byClass: map[string][]int{}}
	n := uint64(len(data) / ps)
	class := make([]*BoltPage, n)
	pageAt := func(id uint64) []byte { return data[id*uint64(ps):] }
	header := func(id uint64) (flags, count uint16, overflow uint32) {
		p := pageAt(id)
		return le.Uint16(p[8:]), le.Uint16(p[10:]), le.Uint32(p[12:])
	}
	mark := func(id uint64, c, bucket string) *BoltPage {
		if id >= n {
			return nil
		}
		_, _, ov := header(id)
		p := &BoltPage{ID: id, Class: c, Bucket: bucket, Overflow: ov}
		for i := uint64(0); i <= uint64(ov) && id+i < n; i++ {
			class[id+i] = p
		}
		return p
	}
	mark(0, PageMeta, "")
	mark(1, PageMeta, "")
	if fl != ^uint64(0) {
		mark(fl, PageFreelist, "")
	}
	var walk func(id uint64, bucket string, depth int) error
	walk = func(id uint64, bucket string, depth int) error {
		if id < 2 || id >= n || depth > 64 {
			return fmt.Errorf("page %d out of the file", id)
		}
		flags, count, _ := header(id)
		base := int64(id) * int64(ps)
		switch flags {
		case boltBranch:
			p := mark(id, PageBranch, bucket)
			for i := 0; i < int(count); i++ {
				e := base + boltPageHeader + int64(i)*boltElemSize
				pos, ksize, child := le.Uint32(data[e:]), le.Uint32(data[e+4:]), le.Uint64(data[e+8:])
				p.Elems = append(p.Elems, BoltElem{Header: e, Key: e + int64(pos), KeyLen: int(ksize)})
				if err := walk(child, bucket, depth+1); err != nil {
					return err
				}
			}
		case boltLeaf:
			p := mark(id, PageLeaf, bucket)
			for i := 0; i < int(count); i++ {
				e := base + boltPageHeader + int64(i)*boltElemSize
				eflags, pos, ksize, vsize := le.Uint32(data[e:]), le.Uint32(data[e+4:]), le.Uint32(data[e+8:]), le.Uint32(data[e+12:])
				k := e + int64(pos)
				p.Elems = append(p.Elems, BoltElem{Header: e, Key: k, KeyLen: int(ksize), Val: k + int64(ksize), ValLen: int(vsize)})
				if eflags&boltBucketLeaf != 0 {
					name := string(data[k : k+int64(ksize)])
					if bucket != "" {
						name = bucket + "/" + name
					}
					if sub := le.Uint64(data[k+int64(ksize):]); sub != 0 {
						if err := walk(sub, name, depth+1); err != nil {
							return err
						}
					}
				}
			}
		default:
			return fmt.Errorf("page %d: flags %#x, want branch or leaf", id, flags)
		}
		return nil
	}
	if err := walk(root, "", 0); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for id := uint64(0); id < n; id++ {
		p := class[id]
		if p == nil {
			p = &BoltPage{ID: id, Class: PageFree}
		} else if p.ID != id {
			continue // an overflow page of p
		}
		m.Pages = append(m.Pages, *p)
		m.byClass[p.Class] = append(m.byClass[p.Class], len(m.Pages)-1)
	}
	return m, nil
}

// Count is the number of pages of class c (overflow pages not counted).
func (m *BoltMap) Count(c string) int { return len(m.byClass[c]) }

// Damage kinds.
const (
	DamageFlip   = "flip"   // one bit flipped
	DamageZero   = "zero"   // 4 KiB zeroed: a page lost, as a medium loses a sector run
	DamageGarble = "garble" // half a page of random bytes
)

// Areas of a page a damage is aimed at.
const (
	AreaHeader = "header" // the 16-byte page header
	AreaElems  = "elems"  // the element headers (positions, sizes, child page ids)
	AreaKey    = "key"
	AreaValue  = "value"
	AreaPage   = "page" // anywhere in the page
)

// Damage is one damage to a bbolt file: what it is aimed at and the bytes
// it writes.
type Damage struct {
	Seed   uint64
	Kind   string // DamageFlip, …
	Class  string // the page class aimed at
	Area   string
	Bucket string
	Page   uint64
	Off    int64  // file offset of the first byte written
	Bytes  []byte // what is written there
}

func (d Damage) String() string {
	b := d.Bucket
	if b == "" {
		b = "-"
	}
	return fmt.Sprintf("seed %d: %s of %d bytes at offset %d (page %d, %s page of bucket %s, %s)",
		d.Seed, d.Kind, len(d.Bytes), d.Off, d.Page, d.Class, b, d.Area)
}

// DrawDamage draws one damage to the file mapped by m (whose bytes are
// data) from seed: a page class (meta, freelist, branch, leaf, free —
// those the file has), a kind (a flipped bit, a zeroed 4 KiB, a garbled
// half page) and, for a flipped bit, the area of the page.
func DrawDamage(seed uint64, m *BoltMap, data []byte) Damage {
	r := rand.New(rand.NewPCG(seed, seed^0x5bd1e995))
	d := Damage{Seed: seed}
	// Leaf pages hold what is served: half the damages aim at them.
	weights := []struct {
		class string
		w     int
	}{{PageMeta, 8}, {PageFreelist, 8}, {PageBranch, 17}, {PageLeaf, 50}, {PageFree, 17}}
	total := 0
	for _, w := range weights {
		if m.Count(w.class) > 0 {
			total += w.w
		}
	}
	pick := r.IntN(total)
	for _, w := range weights {
		if m.Count(w.class) == 0 {
			continue
		}
		if pick < w.w {
			d.Class = w.class
			break
		}
		pick -= w.w
	}
	pages := m.byClass[d.Class]
	if d.Class == PageFree {
		// Mostly the stale pages below the high mark (old copies of
		// records); sometimes the never-used tail.
		var stale []int
		for _, i := range pages {
			if m.Pages[i].ID < m.HighMark {
				stale = append(stale, i)
			}
		}
		if len(stale) > 0 && r.IntN(4) != 0 {
			pages = stale
		}
	}
	p := m.Pages[pages[r.IntN(len(pages))]]
	d.Page, d.Bucket = p.ID, p.Bucket
	base := int64(p.ID) * int64(m.PageSize)
	span := int64(m.PageSize) * int64(p.Overflow+1)
	switch r.IntN(3) {
	case 0:
		d.Kind = DamageFlip
		// The area: for pages with elements, header, element headers,
		// keys or values; else anywhere.
		d.Area = AreaPage
		off := base + r.Int64N(span)
		if len(p.Elems) > 0 {
			e := p.Elems[r.IntN(len(p.Elems))]
			switch a := r.IntN(10); {
			case a == 0:
				d.Area, off = AreaHeader, base+r.Int64N(boltPageHeader)
			case a < 3:
				d.Area, off = AreaElems, e.Header+r.Int64N(boltElemSize)
			case a < 6 || e.ValLen == 0:
				if e.KeyLen > 0 {
					d.Area, off = AreaKey, e.Key+r.Int64N(int64(e.KeyLen))
				}
			default:
				d.Area, off = AreaValue, e.Val+r.Int64N(int64(e.ValLen))
			}
		} else if r.IntN(4) == 0 {
			d.Area, off = AreaHeader, base+r.Int64N(boltPageHeader)
		}
		if off >= int64(len(data)) {
			off = base
		}
		d.Off, d.Bytes = off, []byte{data[off] ^ 1<<r.IntN(8)}
	case 1:
		d.Kind, d.Area = DamageZero, AreaPage
		d.Off, d.Bytes = base, make([]byte, min(4096, len(data)-int(base)))
	default:
		d.Kind = DamageGarble
		half := int64(m.PageSize / 2)
		d.Area, d.Off = "first half", base
		if r.IntN(2) == 1 {
			d.Area, d.Off = "second half", base+half
		}
		d.Bytes = make([]byte, min(half, int64(len(data))-d.Off))
		for i := range d.Bytes {
			d.Bytes[i] = byte(r.Uint32())
		}
	}
	return d
}

// Apply writes the damage into the file at path (pwrite, no fsync: a
// running bbolt sees it through its shared mapping at once).
func (d Damage) Apply(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(d.Bytes, d.Off); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Classes lists the page classes of m with their counts, for a log line.
func (m *BoltMap) Classes() string {
	var cs []string
	for c := range m.byClass {
		cs = append(cs, c)
	}
	sort.Strings(cs)
	s := ""
	for _, c := range cs {
		s += fmt.Sprintf("%s:%d ", c, len(m.byClass[c]))
	}
	return s
}

// NewestMetaDamage is the damage that zeroes the meta page of the bbolt
// file at path with the highest transaction id.
func NewestMetaDamage(path string) (Damage, error) {
	m, err := MapBolt(path)
	if err != nil {
		return Damage{}, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Damage{}, err
	}
	// The txid: after the page header and magic, version, page size,
	// flags, root bucket, freelist and pgid.
	txid := func(page int) uint64 {
		return binary.LittleEndian.Uint64(data[page*m.PageSize+boltPageHeader+48:])
	}
	newest := 0
	if txid(1) > txid(0) {
		newest = 1
	}
	return Damage{Kind: DamageZero, Class: PageMeta, Area: AreaPage, Page: uint64(newest),
		Off: int64(newest * m.PageSize), Bytes: make([]byte, m.PageSize)}, nil
}
