package chat

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ardanlabs/jinja"
)

// This file gives the engine's values Python semantics: str(), repr(),
// ==, ordering, truth, and json.dumps as Hugging Face's tojson calls it.

type V = jinja.Value

var (
	vNone  = jinja.None()
	vUndef = jinja.Undefined()
	vTrue  = jinja.NewBool(true)
	vFalse = jinja.NewBool(false)
	vEmpty = jinja.NewString("")
)

func vStr(s string) V    { return jinja.NewString(s) }
func vInt(i int64) V     { return jinja.NewInt(i) }
func vBool(b bool) V     { return jinja.NewBool(b) }
func vList(xs []V) V     { return jinja.NewList(xs) }
func vFloat(f float64) V { return jinja.NewFloat(f) }

// pyType is the Python type name of a value, for error messages.
func pyType(v V) string {
	switch {
	case v.IsUndefined():
		return "Undefined"
	case v.IsNone():
		return "NoneType"
	case v.IsBool():
		return "bool"
	case v.IsInt():
		return "int"
	case v.IsFloat():
		return "float"
	case v.IsString():
		return "str"
	case v.IsList():
		return "list"
	case v.IsDict():
		return "dict"
	case v.IsCallable():
		return "function"
	}
	return "object"
}

// isNum reports whether v is a Python number (bool counts, as in Python).
func isNum(v V) bool { return v.IsInt() || v.IsFloat() || v.IsBool() }

func toF(v V) float64 {
	switch {
	case v.IsFloat():
		return v.AsFloat()
	case v.IsInt():
		return float64(v.AsInt())
	case v.IsBool():
		if v.AsBool() {
			return 1
		}
	}
	return 0
}

// asInt returns v as an integer if it is an int or bool.
func asInt(v V) (int64, bool) {
	switch {
	case v.IsInt():
		return v.AsInt(), true
	case v.IsBool():
		if v.AsBool() {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

func truthy(v V) bool { return v.IsTruthy() }

// pyStr is Python's str() as jinja2 prints values (Undefined prints empty).
// Without render state, tuples print as lists.
func pyStr(v V) string { return (*state)(nil).str(v) }

// pyRepr is Python's repr().
func pyRepr(v V) string { return (*state)(nil).repr(v) }

func (s *state) str(v V) string {
	switch {
	case v.IsString():
		return v.AsString()
	case v.IsUndefined(), v.IsCallable():
		return ""
	}
	var b strings.Builder
	s.writeRepr(&b, v, 0)
	return b.String()
}

func (s *state) repr(v V) string {
	var b strings.Builder
	s.writeRepr(&b, v, 0)
	return b.String()
}

func (s *state) isTuple(v V) bool {
	return s != nil && v.IsList() && s.tuples[v.AsList()]
}

func (s *state) isNamespace(v V) bool {
	return s != nil && v.IsDict() && s.namespaces[v.AsDict()]
}

func (s *state) writeRepr(b *strings.Builder, v V, depth int) {
	if depth > 200 {
		b.WriteString("...")
		return
	}
	switch {
	case v.IsUndefined():
		b.WriteString("Undefined")
	case v.IsNone():
		b.WriteString("None")
	case v.IsBool():
		if v.AsBool() {
			b.WriteString("True")
		} else {
			b.WriteString("False")
		}
	case v.IsInt():
		b.WriteString(strconv.FormatInt(v.AsInt(), 10))
	case v.IsFloat():
		b.WriteString(pyFloatRepr(v.AsFloat()))
	case v.IsString():
		b.WriteString(pyStrRepr(v.AsString()))
	case v.IsList():
		open, close := "[", "]"
		items := v.AsList().Items
		if s.isTuple(v) {
			open, close = "(", ")"
			if len(items) == 1 {
				close = ",)"
			}
		}
		b.WriteString(open)
		for i, it := range items {
			if i > 0 {
				b.WriteString(", ")
			}
			s.writeRepr(b, it, depth+1)
		}
		b.WriteString(close)
	case v.IsDict():
		d := v.AsDict()
		if s.isNamespace(v) {
			b.WriteString("<Namespace ")
			defer b.WriteString(">")
		}
		b.WriteByte('{')
		for i, k := range d.Keys {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(pyStrRepr(k))
			b.WriteString(": ")
			s.writeRepr(b, d.Data[k], depth+1)
		}
		b.WriteByte('}')
	case v.IsCallable():
		fmt.Fprintf(b, "<function %s>", v.AsCallable().Name)
	}
}

// pyStrRepr is repr() of a Python str.
func pyStrRepr(s string) string {
	q := byte('\'')
	if strings.IndexByte(s, '\'') >= 0 && strings.IndexByte(s, '"') < 0 {
		q = '"'
	}
	var b strings.Builder
	b.WriteByte(q)
	for _, r := range s {
		switch {
		case r == rune(q) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r < 0x7f:
			b.WriteRune(r)
		case unicode.IsPrint(r):
			b.WriteRune(r)
		case r <= 0xff:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
	}
	b.WriteByte(q)
	return b.String()
}

// pyFloatRepr is Python's repr(float).
func pyFloatRepr(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case f == 0:
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	s := strconv.FormatFloat(f, 'e', -1, 64) // [-]d.ddde±XX
	neg := ""
	if s[0] == '-' {
		neg, s = "-", s[1:]
	}
	mant, expS, _ := strings.Cut(s, "e")
	exp, _ := strconv.Atoi(expS)
	digits := strings.Replace(mant, ".", "", 1)
	decpt := exp + 1
	if decpt > -4 && decpt <= 16 {
		n := len(digits)
		switch {
		case decpt <= 0:
			return neg + "0." + strings.Repeat("0", -decpt) + digits
		case decpt >= n:
			return neg + digits + strings.Repeat("0", decpt-n) + ".0"
		default:
			return neg + digits[:decpt] + "." + digits[decpt:]
		}
	}
	m := digits[:1]
	if len(digits) > 1 {
		m += "." + digits[1:]
	}
	sign := "+"
	if exp < 0 {
		sign, exp = "-", -exp
	}
	return fmt.Sprintf("%s%se%s%02d", neg, m, sign, exp)
}

// pyEq is Python ==.
func pyEq(a, b V) bool { return pyEqDepth(a, b, 0) }

func pyEqDepth(a, b V, depth int) bool {
	if depth > 500 { // cyclic namespaces; Python raises RecursionError
		return false
	}
	switch {
	case a.IsUndefined() || b.IsUndefined():
		return a.IsUndefined() && b.IsUndefined()
	case isNum(a) && isNum(b):
		ai, aok := asInt(a)
		bi, bok := asInt(b)
		if aok && bok {
			return ai == bi
		}
		return toF(a) == toF(b)
	case a.IsNone() || b.IsNone():
		return a.IsNone() && b.IsNone()
	case a.IsString() && b.IsString():
		return a.AsString() == b.AsString()
	case a.IsList() && b.IsList():
		x, y := a.AsList().Items, b.AsList().Items
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if !pyEqDepth(x[i], y[i], depth+1) {
				return false
			}
		}
		return true
	case a.IsDict() && b.IsDict():
		x, y := a.AsDict(), b.AsDict()
		if x.Len() != y.Len() {
			return false
		}
		for _, k := range x.Keys {
			yv, ok := y.Get(k)
			if !ok || !pyEqDepth(x.Data[k], yv, depth+1) {
				return false
			}
		}
		return true
	}
	return false
}

// pyLess implements Python < for the types that support it.
func pyLess(op string, a, b V) (bool, error) {
	if a.IsUndefined() || b.IsUndefined() {
		return false, undefErr("compare")
	}
	c, err := pyCompare(a, b, op)
	if err != nil {
		return false, err
	}
	if c == 2 { // NaN
		return false, nil
	}
	switch op {
	case "<":
		return c < 0, nil
	case ">":
		return c > 0, nil
	case "<=":
		return c <= 0, nil
	}
	return c >= 0, nil
}

func pyCompare(a, b V, op string) (int, error) { return pyCompareDepth(a, b, op, 0) }

func pyCompareDepth(a, b V, op string, depth int) (int, error) {
	if depth > 500 {
		return 0, &Error{Kind: "RecursionError", Msg: "maximum recursion depth exceeded in comparison"}
	}
	switch {
	case isNum(a) && isNum(b):
		ai, aok := asInt(a)
		bi, bok := asInt(b)
		if aok && bok {
			return cmpInt(ai, bi), nil
		}
		x, y := toF(a), toF(b)
		switch {
		case x < y:
			return -1, nil
		case x > y:
			return 1, nil
		case x == y:
			return 0, nil
		}
		return 2, nil // NaN: every comparison false; callers map 2 below
	case a.IsString() && b.IsString():
		return strings.Compare(a.AsString(), b.AsString()), nil
	case a.IsList() && b.IsList():
		x, y := a.AsList().Items, b.AsList().Items
		for i := 0; i < len(x) && i < len(y); i++ {
			if pyEq(x[i], y[i]) {
				continue
			}
			return pyCompareDepth(x[i], y[i], op, depth+1)
		}
		return cmpInt(int64(len(x)), int64(len(y))), nil
	}
	return 0, typeErr("'%s' not supported between instances of '%s' and '%s'", op, pyType(a), pyType(b))
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ---- json.dumps ----

type jsonOpts struct {
	ensureASCII bool
	indent      *string
	itemSep     string
	keySep      string
	sortKeys    bool
	max         int64 // output size limit; 0 means none
}

func pyJSON(v V, o jsonOpts) (string, error) {
	var b strings.Builder
	if err := writeJSON(&b, v, o, 0); err != nil {
		return "", err
	}
	return b.String(), nil
}

func writeJSON(b *strings.Builder, v V, o jsonOpts, level int) error {
	if level > 500 {
		return &Error{Kind: "RecursionError", Msg: "maximum recursion depth exceeded while encoding a JSON object"}
	}
	if o.max > 0 && int64(b.Len()) > o.max {
		return limitErr("tojson output exceeds the %d-byte limit", o.max)
	}
	newline := func(l int) {
		if o.indent != nil {
			b.WriteByte('\n')
			for i := 0; i < l; i++ {
				b.WriteString(*o.indent)
			}
		}
	}
	switch {
	case v.IsNone():
		b.WriteString("null")
	case v.IsBool():
		if v.AsBool() {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case v.IsInt():
		b.WriteString(strconv.FormatInt(v.AsInt(), 10))
	case v.IsFloat():
		f := v.AsFloat()
		switch {
		case math.IsNaN(f):
			b.WriteString("NaN")
		case math.IsInf(f, 1):
			b.WriteString("Infinity")
		case math.IsInf(f, -1):
			b.WriteString("-Infinity")
		default:
			b.WriteString(pyFloatRepr(f))
		}
	case v.IsString():
		writeJSONString(b, v.AsString(), o.ensureASCII)
	case v.IsList():
		items := v.AsList().Items
		if len(items) == 0 {
			b.WriteString("[]")
			return nil
		}
		b.WriteByte('[')
		for i, it := range items {
			if i > 0 {
				b.WriteString(o.itemSep)
			}
			newline(level + 1)
			if err := writeJSON(b, it, o, level+1); err != nil {
				return err
			}
		}
		newline(level)
		b.WriteByte(']')
	case v.IsDict():
		d := v.AsDict()
		if d.Len() == 0 {
			b.WriteString("{}")
			return nil
		}
		keys := d.Keys
		if o.sortKeys {
			keys = append([]string(nil), keys...)
			sort.Strings(keys)
		}
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteString(o.itemSep)
			}
			newline(level + 1)
			writeJSONString(b, k, o.ensureASCII)
			b.WriteString(o.keySep)
			if err := writeJSON(b, d.Data[k], o, level+1); err != nil {
				return err
			}
		}
		newline(level)
		b.WriteByte('}')
	default:
		return typeErr("Object of type %s is not JSON serializable", pyType(v))
	}
	return nil
}

func writeJSONString(b *strings.Builder, s string, ascii bool) {
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			switch {
			case r < 0x20:
				fmt.Fprintf(b, `\u%04x`, r)
			case ascii && r > 0x7e:
				if r > 0xffff {
					r -= 0x10000
					fmt.Fprintf(b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
				} else {
					fmt.Fprintf(b, `\u%04x`, r)
				}
			default:
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
}
