package grammar

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// object is a JSON object that keeps its key order (property order is the
// order the grammar emits properties in).
type object struct {
	keys []string
	vals map[string]any
}

func (o *object) get(k string) (any, bool) {
	if o == nil {
		return nil, false
	}
	v, ok := o.vals[k]
	return v, ok
}

func (o *object) set(k string, v any) {
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

func newObject() *object { return &object{vals: map[string]any{}} }

// decodeOrdered decodes JSON with objects as *object, arrays as []any,
// numbers as json.Number.
func decodeOrdered(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := decodeValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the JSON value")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder, depth int) (any, error) {
	if depth > 512 {
		return nil, errors.New("JSON nested too deeply")
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			o := newObject()
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, _ := kt.(string)
				v, err := decodeValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				o.set(k, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return o, nil
		case '[':
			a := []any{}
			for dec.More() {
				v, err := decodeValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return a, nil
		}
	}
	return tok, nil
}

// encodeCompact writes v (from decodeOrdered) as compact JSON, keys in
// their order, without HTML escaping.
func encodeCompact(b *strings.Builder, v any) {
	switch x := v.(type) {
	case *object:
		b.WriteByte('{')
		for i, k := range x.keys {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(jsonString(k))
			b.WriteByte(':')
			encodeCompact(b, x.vals[k])
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			encodeCompact(b, e)
		}
		b.WriteByte(']')
	case string:
		b.WriteString(jsonString(x))
	case json.Number:
		b.WriteString(string(x))
	case bool:
		if x {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case nil:
		b.WriteString("null")
	}
}

// jsonString is s as a JSON string literal without HTML escaping.
func jsonString(s string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	return strings.TrimSuffix(buf.String(), "\n")
}

// gbnfLiteral quotes s as a GBNF string literal.
func gbnfLiteral(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7F:
			fmt.Fprintf(&b, `\x%02X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// gbnfClass writes code point ranges as a GBNF character class, every
// character that is not a letter or digit escaped.
func gbnfClass(rs []cpRange) string {
	var b strings.Builder
	b.WriteByte('[')
	one := func(r rune) {
		switch {
		case r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		case r < 0x100:
			fmt.Fprintf(&b, `\x%02X`, r)
		case r < 0x10000:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			fmt.Fprintf(&b, `\U%08X`, r)
		}
	}
	for _, r := range rs {
		one(r.lo)
		if r.hi > r.lo {
			b.WriteByte('-')
			one(r.hi)
		}
	}
	b.WriteByte(']')
	return b.String()
}

// jsonCharExpr returns a GBNF expression for one character of a JSON
// string's content whose decoded value is a code point in rs: plain
// characters as themselves, '"', '\' and control characters escaped.
func jsonCharExpr(rs []cpRange) string {
	plain := subtractRanges(rs, []cpRange{{0, 0x1F}, {'"', '"'}, {'\\', '\\'}, {0xD800, 0xDFFF}})
	var parts []string
	if len(plain) > 0 {
		parts = append(parts, gbnfClass(plain))
	}
	if inRanges(rs, '"') {
		parts = append(parts, gbnfLiteral(`\"`))
	}
	if inRanges(rs, '\\') {
		parts = append(parts, gbnfLiteral(`\\`))
	}
	for c := rune(0); c < 0x20; c++ {
		if inRanges(rs, c) {
			parts = append(parts, gbnfLiteral(strings.Trim(jsonString(string(c)), `"`)))
		}
	}
	switch len(parts) {
	case 0:
		return "[]"
	case 1:
		return parts[0]
	}
	return "(" + strings.Join(parts, " | ") + ")"
}

func inRanges(rs []cpRange, c rune) bool {
	for _, r := range rs {
		if c >= r.lo && c <= r.hi {
			return true
		}
	}
	return false
}

// subtractRanges returns a minus b (both normalized).
func subtractRanges(a, b []cpRange) []cpRange {
	return intersectRanges(a, negateRanges(normRanges(b)))
}

func intersectRanges(a, b []cpRange) []cpRange {
	var out []cpRange
	for _, x := range a {
		for _, y := range b {
			lo, hi := max(x.lo, y.lo), min(x.hi, y.hi)
			if lo <= hi {
				out = append(out, cpRange{lo, hi})
			}
		}
	}
	return normRanges(out)
}
