package chat

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// jsonValue decodes JSON (RFC 8259) into template values, keeping object
// key order as Python's json.loads does. Invalid UTF-8 and lone surrogate
// escapes become U+FFFD, as with encoding/json.
func jsonValue(b []byte) (V, error) {
	d := jsonDecoder{s: b}
	d.space()
	v, err := d.value(0)
	if err != nil {
		return vUndef, err
	}
	d.space()
	if d.i < len(d.s) {
		return vUndef, errors.New("trailing data after JSON value")
	}
	return v, nil
}

const maxJSONDepth = 10000

type jsonDecoder struct {
	s []byte
	i int
	// work stacks for the items of the arrays and objects being decoded,
	// so that each gets a slice of exactly its size
	items []V
	ents  []dictEntry
}

func (d *jsonDecoder) errf(format string, args ...any) error {
	return fmt.Errorf("invalid JSON at offset %d: %s", d.i, fmt.Sprintf(format, args...))
}

func (d *jsonDecoder) space() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *jsonDecoder) value(depth int) (V, error) {
	if depth > maxJSONDepth {
		return vUndef, d.errf("nesting too deep")
	}
	if d.i >= len(d.s) {
		return vUndef, d.errf("unexpected end of input")
	}
	switch c := d.s[d.i]; {
	case c == '{':
		d.i++
		mark := len(d.ents)
		done := func() V {
			dict := &Dict{ents: append([]dictEntry(nil), d.ents[mark:]...)}
			clear(d.ents[mark:])
			d.ents = d.ents[:mark]
			if len(dict.ents) >= dictIndexMin {
				dict.idx = make(map[string]int32, len(dict.ents))
				for i, e := range dict.ents {
					dict.idx[e.k.s] = int32(i)
				}
			}
			return vDict(dict)
		}
		d.space()
		if d.i < len(d.s) && d.s[d.i] == '}' {
			d.i++
			return done(), nil
		}
		for {
			d.space()
			if d.i >= len(d.s) || d.s[d.i] != '"' {
				return vUndef, d.errf("expected a string key")
			}
			k, err := d.str()
			if err != nil {
				return vUndef, err
			}
			d.space()
			if d.i >= len(d.s) || d.s[d.i] != ':' {
				return vUndef, d.errf("expected ':'")
			}
			d.i++
			d.space()
			v, err := d.value(depth + 1)
			if err != nil {
				return vUndef, err
			}
			dup := false
			for j := mark; j < len(d.ents); j++ {
				if d.ents[j].k.s == k { // a repeated key: the last value wins
					d.ents[j].v = v
					dup = true
					break
				}
			}
			if !dup {
				d.ents = append(d.ents, dictEntry{vStr(k), v})
			}
			d.space()
			if d.i < len(d.s) && d.s[d.i] == ',' {
				d.i++
				continue
			}
			if d.i < len(d.s) && d.s[d.i] == '}' {
				d.i++
				return done(), nil
			}
			return vUndef, d.errf("expected ',' or '}'")
		}
	case c == '[':
		d.i++
		mark := len(d.items)
		done := func() V {
			items := append([]V(nil), d.items[mark:]...)
			clear(d.items[mark:])
			d.items = d.items[:mark]
			return vList(items)
		}
		d.space()
		if d.i < len(d.s) && d.s[d.i] == ']' {
			d.i++
			return done(), nil
		}
		for {
			d.space()
			v, err := d.value(depth + 1)
			if err != nil {
				return vUndef, err
			}
			d.items = append(d.items, v)
			d.space()
			if d.i < len(d.s) && d.s[d.i] == ',' {
				d.i++
				continue
			}
			if d.i < len(d.s) && d.s[d.i] == ']' {
				d.i++
				return done(), nil
			}
			return vUndef, d.errf("expected ',' or ']'")
		}
	case c == '"':
		s, err := d.str()
		return vStr(s), err
	case c == '-' || (c >= '0' && c <= '9'):
		return d.number()
	}
	for _, lit := range [...]struct {
		text string
		v    V
	}{{"true", vTrue}, {"false", vFalse}, {"null", vNone}} {
		if bytes.HasPrefix(d.s[d.i:], []byte(lit.text)) {
			d.i += len(lit.text)
			return lit.v, nil
		}
	}
	return vUndef, d.errf("unexpected character %q", d.s[d.i])
}

func (d *jsonDecoder) number() (V, error) {
	start := d.i
	digits := func() int {
		n := 0
		for d.i < len(d.s) && d.s[d.i] >= '0' && d.s[d.i] <= '9' {
			d.i++
			n++
		}
		return n
	}
	if d.s[d.i] == '-' {
		d.i++
	}
	if d.i < len(d.s) && d.s[d.i] == '0' {
		d.i++
	} else if digits() == 0 {
		return vUndef, d.errf("invalid number")
	}
	if d.i < len(d.s) && d.s[d.i] == '.' {
		d.i++
		if digits() == 0 {
			return vUndef, d.errf("invalid number")
		}
	}
	if d.i < len(d.s) && (d.s[d.i] == 'e' || d.s[d.i] == 'E') {
		d.i++
		if d.i < len(d.s) && (d.s[d.i] == '+' || d.s[d.i] == '-') {
			d.i++
		}
		if digits() == 0 {
			return vUndef, d.errf("invalid number")
		}
	}
	return numberText(string(d.s[start:d.i])), nil
}

// str decodes the string starting at the opening quote.
func (d *jsonDecoder) str() (string, error) {
	d.i++
	start := d.i
	// Fast path: no escapes, valid UTF-8.
	for d.i < len(d.s) {
		c := d.s[d.i]
		if c == '"' {
			s := d.s[start:d.i]
			d.i++
			if utf8.Valid(s) {
				return string(s), nil
			}
			return fixUTF8(string(s)), nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
		d.i++
	}
	var b strings.Builder
	b.Write(d.s[start:d.i])
	for d.i < len(d.s) {
		c := d.s[d.i]
		switch {
		case c == '"':
			d.i++
			s := b.String()
			if !utf8.ValidString(s) {
				s = fixUTF8(s)
			}
			return s, nil
		case c < 0x20:
			return "", d.errf("control character in string")
		case c != '\\':
			b.WriteByte(c)
			d.i++
			continue
		}
		d.i++
		if d.i >= len(d.s) {
			break
		}
		e := d.s[d.i]
		d.i++
		switch e {
		case '"', '\\', '/':
			b.WriteByte(e)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r, ok := d.hex4()
			if !ok {
				return "", d.errf("invalid \\u escape")
			}
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if d.i+1 < len(d.s) && d.s[d.i] == '\\' && d.s[d.i+1] == 'u' {
					save := d.i
					d.i += 2
					if x, ok := d.hex4(); ok {
						r2 = x
					} else {
						d.i = save
					}
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						b.WriteRune(dec)
						continue
					}
					d.i = save
				}
				r = utf8.RuneError
			}
			b.WriteRune(r)
		default:
			return "", d.errf("invalid escape '\\%c'", e)
		}
	}
	return "", d.errf("unterminated string")
}

func (d *jsonDecoder) hex4() (rune, bool) {
	if d.i+4 > len(d.s) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(d.s[d.i:d.i+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	d.i += 4
	return rune(n), true
}

// fixUTF8 replaces each invalid byte with U+FFFD, as encoding/json does.
func fixUTF8(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r) // an invalid byte decodes as RuneError, one at a time
	}
	return b.String()
}
