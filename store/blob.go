package store

import (
	"bytes"
	"encoding/binary"
)

// A cell's correlation and compliance are JSON objects the fold keeps as
// it normalised them. They are stored in a compact form of their tokens:
// object keys as numbers of the key table (keys.go), string values that
// repeat one of the record's own ids (its id, formation, tenant, spec or
// run) as a reference to it, numbers and other strings as their exact
// text. The form gives the value back byte for byte — every encoding is
// checked by decoding it — and a value it cannot take (not compact JSON,
// nested too deep) is stored as it is.

// The first byte of a stored value says its form.
const (
	blobRaw     = 0
	blobCompact = 1
)

// Tokens of the compact form. An object is its members — a key code and a
// value each — ended by key code 0; key code 1 is a literal key (length
// and text), k ≥ 2 the key numbered k-1. An array is its values ended by
// tEnd.
const (
	tNull byte = iota
	tFalse
	tTrue
	tNumber // length, text
	tString // length, text between the quotes (escapes as written)
	tOwn    // one byte: which of the record's own ids
	tObject
	tArray
	tEnd
)

// maxDepth bounds the nesting the compact form takes (and decodes).
const maxDepth = 32

// appendBlob appends the stored form of v, length-prefixed; an empty v is
// an empty prefix.
func appendBlob(dst, v []byte, keys *keyTable, own *[5]string) []byte {
	if len(v) == 0 {
		return append(dst, 0)
	}
	c := compacter{in: v, keys: keys, own: own, out: []byte{blobCompact}}
	if c.value(0) && c.pos == len(v) {
		back, err := expandBlob(c.out, keys.snapshot(), own)
		if err == nil && bytes.Equal(back, v) {
			return appendBytes(dst, c.out)
		}
	}
	dst = binary.AppendUvarint(dst, uint64(1+len(v)))
	dst = append(dst, blobRaw)
	return append(dst, v...)
}

// expandBlob gives back the JSON of a stored value (nil for empty).
func expandBlob(stored []byte, names []string, own *[5]string) ([]byte, error) {
	if len(stored) == 0 {
		return nil, nil
	}
	switch stored[0] {
	case blobRaw:
		return append([]byte(nil), stored[1:]...), nil
	case blobCompact:
		x := expander{r: reader{b: stored[1:]}, names: names, own: own}
		x.value(0)
		if x.r.err != nil || len(x.r.b) != 0 {
			return nil, ErrDamaged
		}
		return x.out, nil
	}
	return nil, ErrDamaged
}

// compacter reads compact JSON (no white space, as the fold writes it)
// and writes the compact form; false when the input is anything else.
type compacter struct {
	in   []byte
	pos  int
	out  []byte
	keys *keyTable
	own  *[5]string
}

func (c *compacter) value(depth int) bool {
	if c.pos >= len(c.in) || depth > maxDepth {
		return false
	}
	switch ch := c.in[c.pos]; {
	case ch == '{':
		return c.object(depth)
	case ch == '[':
		return c.array(depth)
	case ch == '"':
		raw, ok := c.str()
		if !ok {
			return false
		}
		for i, s := range c.own {
			if s != "" && string(raw) == s {
				c.out = append(c.out, tOwn, byte(i))
				return true
			}
		}
		c.out = append(c.out, tString)
		c.out = appendBytes(c.out, raw)
		return true
	case ch == 't':
		return c.literal("true", tTrue)
	case ch == 'f':
		return c.literal("false", tFalse)
	case ch == 'n':
		return c.literal("null", tNull)
	case ch == '-' || ch >= '0' && ch <= '9':
		start := c.pos
		for c.pos < len(c.in) && bytes.IndexByte([]byte("+-.eE0123456789"), c.in[c.pos]) >= 0 {
			c.pos++
		}
		c.out = append(c.out, tNumber)
		c.out = appendBytes(c.out, c.in[start:c.pos])
		return true
	}
	return false
}

func (c *compacter) literal(text string, tok byte) bool {
	if !bytes.HasPrefix(c.in[c.pos:], []byte(text)) {
		return false
	}
	c.pos += len(text)
	c.out = append(c.out, tok)
	return true
}

// str reads a string at pos and returns its text between the quotes.
func (c *compacter) str() ([]byte, bool) {
	start := c.pos + 1
	for i := start; i < len(c.in); i++ {
		switch c.in[i] {
		case '\\':
			i++
		case '"':
			c.pos = i + 1
			return c.in[start:i], true
		}
	}
	return nil, false
}

func (c *compacter) next(ch byte) bool {
	if c.pos < len(c.in) && c.in[c.pos] == ch {
		c.pos++
		return true
	}
	return false
}

func (c *compacter) object(depth int) bool {
	c.pos++
	c.out = append(c.out, tObject)
	if c.next('}') {
		c.out = append(c.out, 0)
		return true
	}
	for {
		if c.pos >= len(c.in) || c.in[c.pos] != '"' {
			return false
		}
		key, ok := c.str()
		if !ok || !c.next(':') {
			return false
		}
		if id, ok := c.keys.id(key); ok {
			c.out = binary.AppendUvarint(c.out, id+1)
		} else {
			c.out = append(c.out, 1)
			c.out = appendBytes(c.out, key)
		}
		if !c.value(depth + 1) {
			return false
		}
		if c.next('}') {
			c.out = append(c.out, 0)
			return true
		}
		if !c.next(',') {
			return false
		}
	}
}

func (c *compacter) array(depth int) bool {
	c.pos++
	c.out = append(c.out, tArray)
	if c.next(']') {
		c.out = append(c.out, tEnd)
		return true
	}
	for {
		if !c.value(depth + 1) {
			return false
		}
		if c.next(']') {
			c.out = append(c.out, tEnd)
			return true
		}
		if !c.next(',') {
			return false
		}
	}
}

// expander writes the JSON of the compact form; errors stick in r.err.
type expander struct {
	r     reader
	out   []byte
	names []string
	own   *[5]string
}

func (x *expander) value(depth int) {
	if depth > maxDepth {
		x.r.err = ErrDamaged
		return
	}
	switch tok := x.r.byte(); tok {
	case tNull:
		x.out = append(x.out, "null"...)
	case tFalse:
		x.out = append(x.out, "false"...)
	case tTrue:
		x.out = append(x.out, "true"...)
	case tNumber:
		x.out = append(x.out, x.r.raw()...)
	case tString:
		x.quoted(x.r.raw())
	case tOwn:
		if i := x.r.byte(); int(i) < len(x.own) {
			x.quoted([]byte(x.own[i]))
		} else {
			x.r.err = ErrDamaged
		}
	case tObject:
		x.out = append(x.out, '{')
		for n := 0; x.r.err == nil; n++ {
			code := x.r.uvarint()
			if code == 0 {
				break
			}
			if n > 0 {
				x.out = append(x.out, ',')
			}
			switch {
			case code == 1:
				x.quoted(x.r.raw())
			case code-2 < uint64(len(x.names)):
				x.quoted([]byte(x.names[code-2]))
			default:
				x.r.err = ErrDamaged
			}
			x.out = append(x.out, ':')
			x.value(depth + 1)
		}
		x.out = append(x.out, '}')
	case tArray:
		x.out = append(x.out, '[')
		for n := 0; x.r.err == nil; n++ {
			if len(x.r.b) > 0 && x.r.b[0] == tEnd {
				x.r.b = x.r.b[1:]
				break
			}
			if n > 0 {
				x.out = append(x.out, ',')
			}
			x.value(depth + 1)
		}
		x.out = append(x.out, ']')
	default:
		x.r.err = ErrDamaged
	}
}

func (x *expander) quoted(text []byte) {
	x.out = append(x.out, '"')
	x.out = append(x.out, text...)
	x.out = append(x.out, '"')
}
