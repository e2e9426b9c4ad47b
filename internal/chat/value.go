package chat

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file defines the template's values: Python's types as jinja2 sees
// them (Undefined, None, bool, int, float, str, list, tuple, dict,
// Namespace, callables, the loop object), with Python's str(), repr(), ==,
// ordering, truth, and json.dumps as Hugging Face's tojson calls it.

type kind uint8

const (
	kUndef kind = iota
	kNone
	kBool
	kInt
	kFloat
	kStr
	kList
	kTuple
	kDict
	kNS
	kFunc
	kLoop
	kRange // range(): a sequence with its own repr
	kView  // dict.keys(), .values(), .items(): iterable, sized, not indexable
	kIter  // a generator (map, select, ... filters): lazy, single use, no len
)

// view kinds, in V.n of a kView
const (
	viewKeys = iota
	viewValues
	viewItems
)

// rangeObj is a range: its items (at most maxRange) and its arguments.
type rangeObj struct {
	List
	start, stop, step int64
}

// iterObj is a Python iterator: items are pulled one at a time, once.
type iterObj struct {
	typ  string // Python type: "generator", "list_reverseiterator", ...
	fn   string // a generator's function, as jinja2 names it
	next func() (V, bool, error)
	done bool
}

// pull returns the next item; ok is false at the end.
func (it *iterObj) pull() (V, bool, error) {
	if it.done {
		return vUndef, false, nil
	}
	v, ok, err := it.next()
	if !ok || err != nil {
		it.done = true
	}
	return v, ok, err
}

// newIter is an iterator of type typ, or with typ "generator object f" a
// generator of function f.
func newIter(typ string, next func() (V, bool, error)) V {
	it := &iterObj{typ: typ, next: next}
	if fn, ok := strings.CutPrefix(typ, "generator object "); ok {
		it.typ, it.fn = "generator", fn
	}
	return V{k: kIter, p: it}
}

// V is a template value. Strings and numbers are held inline; containers
// are shared by pointer (templates cannot mutate lists or dicts: jinja2's
// immutable sandbox forbids it; only a namespace's attributes change).
type V struct {
	k kind
	n int64  // kBool (0/1), kInt, kFloat (IEEE bits)
	s string // kStr; kUndef: why it is undefined, for error messages
	p any    // *List (kList, kTuple), *Dict, *Namespace, *Func, *loopCtx
}

// List is a list's or tuple's items.
type List struct{ Items []V }

// Len returns the number of items.
func (l *List) Len() int { return len(l.Items) }

// Namespace is jinja2's namespace(): the one mutable object in a template.
type Namespace struct{ attrs Dict }

// kwarg is one keyword argument of a call, in call order.
type kwarg struct {
	name string
	v    V
}

// Func is a callable: a global, a method bound to its object, a macro or
// a call block's caller.
type Func struct {
	name   string
	macro  bool   // prints as <Macro 'name'>
	method string // a bound method of this type
	fn     func(s *state, args []V, kw []kwarg) (V, error)
}

var (
	vNone  = V{k: kNone}
	vUndef = V{k: kUndef}
	vTrue  = V{k: kBool, n: 1}
	vFalse = V{k: kBool}
	vEmpty = V{k: kStr}
)

func vStr(s string) V { return V{k: kStr, s: s} }

// markupFlag in V.n marks a str as markupsafe's Markup (what |safe and
// |escape return): combining it with plain strings HTML-escapes them.
const markupFlag = 1

func vMarkup(s string) V   { return V{k: kStr, n: markupFlag, s: s} }
func (v V) isMarkup() bool { return v.k == kStr && v.n == markupFlag }

// likeStr is s as a str of v's kind (Markup stays Markup).
func likeStr(v V, s string) V {
	if v.isMarkup() {
		return vMarkup(s)
	}
	return vStr(s)
}

var htmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;")

// escapeV is markupsafe.escape: Markup is kept, anything else is converted
// to str and HTML-escaped.
func escapeV(v V) V {
	if v.isMarkup() {
		return v
	}
	return vMarkup(htmlEscaper.Replace(pyStr(v)))
}
func vInt(i int64) V { return V{k: kInt, n: i} }
func vBool(b bool) V {
	if b {
		return vTrue
	}
	return vFalse
}
func vFloat(f float64) V { return V{k: kFloat, n: int64(math.Float64bits(f))} }
func vList(xs []V) V     { return V{k: kList, p: &List{Items: xs}} }
func vTuple(xs []V) V    { return V{k: kTuple, p: &List{Items: xs}} }
func vDict(d *Dict) V    { return V{k: kDict, p: d} }
func vFunc(name string, fn func(s *state, args []V, kw []kwarg) (V, error)) V {
	return V{k: kFunc, p: &Func{name: name, fn: fn}}
}

// undefined is an Undefined that remembers what was looked up.
func undefined(why string) V { return V{k: kUndef, s: why} }

func (v V) IsUndefined() bool { return v.k == kUndef }
func (v V) IsNone() bool      { return v.k == kNone }
func (v V) IsBool() bool      { return v.k == kBool }
func (v V) IsInt() bool       { return v.k == kInt }
func (v V) IsFloat() bool     { return v.k == kFloat }
func (v V) IsString() bool    { return v.k == kStr }

// IsList reports a list, tuple or range (an indexable Python sequence).
func (v V) IsList() bool { return v.k == kList || v.k == kTuple || v.k == kRange }
func (v V) IsDict() bool { return v.k == kDict }

func (v V) AsBool() bool         { return v.n != 0 }
func (v V) AsFloat() float64     { return math.Float64frombits(uint64(v.n)) }
func (v V) AsString() string     { return v.s }
func (v V) AsDict() *Dict        { return v.p.(*Dict) }
func (v V) AsNS() *Namespace     { return v.p.(*Namespace) }
func (v V) AsFunc() *Func        { return v.p.(*Func) }
func (v V) asLoop() *loopCtx     { return v.p.(*loopCtx) }
func (v V) AsIter() *iterObj     { return v.p.(*iterObj) }
func (v V) undefinedWhy() string { return v.s }

// AsList returns the items of a list, tuple or range.
func (v V) AsList() *List {
	if v.k == kRange {
		return &v.p.(*rangeObj).List
	}
	return v.p.(*List)
}

// items returns the items of a list, tuple, range or dict view.
func (v V) items() []V {
	if v.k == kRange {
		return v.p.(*rangeObj).Items
	}
	return v.p.(*List).Items
}

// fakeAddr stands for the object address CPython prints in some reprs.
const fakeAddr = "0x7f0000000000"

// truthy is Python's bool().
func truthy(v V) bool {
	switch v.k {
	case kUndef, kNone:
		return false
	case kBool, kInt:
		return v.n != 0
	case kFloat:
		return v.AsFloat() != 0
	case kStr:
		return v.s != ""
	case kList, kTuple, kRange, kView:
		return len(v.items()) > 0
	case kDict:
		return v.AsDict().Len() > 0
	}
	return true // namespaces, callables, loops and generators
}

// ---- dict ----

// Dict is an insertion-ordered Python dict. Keys are hashable values
// (str, int, float, bool, None, tuples of those); JSON and Go maps give
// string keys, looked up without allocation.
type Dict struct {
	ents []dictEntry
	idx  map[string]int32 // string keys to positions, once the dict is large
}

type dictEntry struct{ k, v V }

const dictIndexMin = 12

func newDict(n int) *Dict { return &Dict{ents: make([]dictEntry, 0, n)} }

// Len returns the number of entries.
func (d *Dict) Len() int { return len(d.ents) }

// keys returns the keys in order.
func (d *Dict) keys() []V {
	out := make([]V, len(d.ents))
	for i := range d.ents {
		out[i] = d.ents[i].k
	}
	return out
}

func (d *Dict) findStr(k string) int {
	if d.idx != nil {
		if i, ok := d.idx[k]; ok {
			return int(i)
		}
		return -1
	}
	for i := range d.ents {
		if d.ents[i].k.k == kStr && d.ents[i].k.s == k {
			return i
		}
	}
	return -1
}

func (d *Dict) find(k V) int {
	if k.k == kStr {
		return d.findStr(k.s)
	}
	for i := range d.ents {
		if d.ents[i].k.k != kStr && pyEq(d.ents[i].k, k) {
			return i
		}
	}
	return -1
}

// Get returns the value of a string key.
func (d *Dict) Get(k string) (V, bool) {
	if i := d.findStr(k); i >= 0 {
		return d.ents[i].v, true
	}
	return vUndef, false
}

// GetV returns the value of any key.
func (d *Dict) GetV(k V) (V, bool) {
	if i := d.find(k); i >= 0 {
		return d.ents[i].v, true
	}
	return vUndef, false
}

// Set sets a string key.
func (d *Dict) Set(k string, v V) { d.SetV(vStr(k), v) }

// SetV sets a key, keeping the position of an existing one (as Python).
func (d *Dict) SetV(k, v V) {
	if i := d.find(k); i >= 0 {
		d.ents[i].v = v
		return
	}
	d.ents = append(d.ents, dictEntry{k, v})
	d.index()
}

// index maintains the string index of a large dict after an append.
func (d *Dict) index() {
	n := len(d.ents)
	if d.idx != nil {
		if k := d.ents[n-1].k; k.k == kStr {
			d.idx[k.s] = int32(n - 1)
		}
		return
	}
	if n < dictIndexMin {
		return
	}
	d.idx = make(map[string]int32, n*2)
	for i, e := range d.ents {
		if e.k.k == kStr {
			if _, dup := d.idx[e.k.s]; !dup {
				d.idx[e.k.s] = int32(i)
			}
		}
	}
}

// hashable reports whether v may be a dict key; the error is Python's.
func hashable(v V) error {
	budget := maxVisit
	return hashableIn(v, &budget, 0)
}

func hashableIn(v V, budget *int, depth int) error {
	if depth > 500 {
		return &Error{Kind: "RecursionError", Msg: "maximum recursion depth exceeded while hashing"}
	}
	switch v.k {
	case kNone, kBool, kInt, kFloat, kStr, kFunc, kNS, kLoop, kRange, kIter:
		return nil
	case kTuple:
		if *budget -= len(v.items()) + 1; *budget < 0 {
			return limitErr("value too large or too deeply nested to hash")
		}
		for _, it := range v.items() {
			if err := hashableIn(it, budget, depth+1); err != nil {
				return err
			}
		}
		return nil
	case kUndef:
		return nil
	}
	return typeErr("unhashable type: '%s'", pyType(v))
}

// ---- Python type names, numbers ----

// pyType is the Python type name of a value, for error messages.
func pyType(v V) string {
	switch v.k {
	case kUndef:
		return "Undefined"
	case kNone:
		return "NoneType"
	case kBool:
		return "bool"
	case kInt:
		return "int"
	case kFloat:
		return "float"
	case kStr:
		if v.isMarkup() {
			return "Markup"
		}
		return "str"
	case kList:
		return "list"
	case kTuple:
		return "tuple"
	case kDict:
		return "dict"
	case kNS:
		return "Namespace"
	case kFunc:
		if v.AsFunc().macro {
			return "Macro"
		}
		return "function"
	case kLoop:
		return "LoopContext"
	case kRange:
		return "range"
	case kView:
		return [...]string{"dict_keys", "dict_values", "dict_items"}[v.n]
	case kIter:
		return v.AsIter().typ
	}
	return "object"
}

// isNum reports whether v is a Python number (bool counts, as in Python).
func isNum(v V) bool { return v.k == kInt || v.k == kFloat || v.k == kBool }

func toF(v V) float64 {
	switch v.k {
	case kFloat:
		return v.AsFloat()
	case kInt, kBool:
		return float64(v.n)
	}
	return 0
}

// asInt returns v as an integer if it is an int or bool.
func asInt(v V) (int64, bool) {
	if v.k == kInt || v.k == kBool {
		return v.n, true
	}
	return 0, false
}

// ---- str() and repr() ----

// pyStr is Python's str() as jinja2 prints values (Undefined prints empty).
func pyStr(v V) string {
	switch v.k {
	case kStr:
		return v.s
	case kUndef:
		return ""
	case kInt:
		return strconv.FormatInt(v.n, 10)
	case kNone:
		return "None"
	}
	return reprMax(v, DefaultMaxOutput)
}

// pyRepr is Python's repr().
func pyRepr(v V) string { return reprMax(v, DefaultMaxOutput) }

// reprMax is repr(v), cut short once it is longer than max bytes (the
// callers' size checks then reject it): nested references can make a
// template's value expand exponentially when printed.
func reprMax(v V, max int64) string {
	var b strings.Builder
	writeRepr(&b, v, 0, int(min(max, 1<<40)))
	return b.String()
}

func writeRepr(b *strings.Builder, v V, depth, max int) {
	if depth > 200 {
		b.WriteString("...")
		return
	}
	if b.Len() > max {
		return
	}
	switch v.k {
	case kUndef:
		b.WriteString("Undefined")
	case kNone:
		b.WriteString("None")
	case kBool:
		if v.n != 0 {
			b.WriteString("True")
		} else {
			b.WriteString("False")
		}
	case kInt:
		b.WriteString(strconv.FormatInt(v.n, 10))
	case kFloat:
		b.WriteString(pyFloatRepr(v.AsFloat()))
	case kStr:
		if v.isMarkup() {
			b.WriteString("Markup(" + pyStrRepr(v.s) + ")")
		} else {
			b.WriteString(pyStrRepr(v.s))
		}
	case kList, kTuple:
		open, close := "[", "]"
		items := v.items()
		if v.k == kTuple {
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
			writeRepr(b, it, depth+1, max)
		}
		b.WriteString(close)
	case kDict:
		writeDictRepr(b, v.AsDict(), depth, max)
	case kNS:
		b.WriteString("<Namespace ")
		writeDictRepr(b, &v.AsNS().attrs, depth, max)
		b.WriteString(">")
	case kFunc:
		f := v.AsFunc()
		// CPython shows an address, which cannot be reproduced; the rest
		// of the text has Python's shape.
		switch {
		case f.macro:
			fmt.Fprintf(b, "<Macro %s>", pyStrRepr(f.name))
		case f.method != "":
			fmt.Fprintf(b, "<built-in method %s of %s object at %s>", f.name, f.method, fakeAddr)
		default:
			fmt.Fprintf(b, "<function %s at %s>", f.name, fakeAddr)
		}
	case kLoop:
		l := v.asLoop()
		fmt.Fprintf(b, "<LoopContext %d/%d>", l.i+1, len(l.items))
	case kRange:
		r := v.p.(*rangeObj)
		if r.step == 1 {
			fmt.Fprintf(b, "range(%d, %d)", r.start, r.stop)
		} else {
			fmt.Fprintf(b, "range(%d, %d, %d)", r.start, r.stop, r.step)
		}
	case kView:
		b.WriteString(pyType(v))
		b.WriteByte('(')
		writeRepr(b, vList(v.items()), depth, max)
		b.WriteByte(')')
	case kIter:
		if it := v.AsIter(); it.typ == "generator" {
			fmt.Fprintf(b, "<generator object %s at %s>", it.fn, fakeAddr)
		} else {
			fmt.Fprintf(b, "<%s object at %s>", it.typ, fakeAddr)
		}
	}
}

func writeDictRepr(b *strings.Builder, d *Dict, depth, max int) {
	b.WriteByte('{')
	for i, e := range d.ents {
		if i > 0 {
			b.WriteString(", ")
		}
		writeRepr(b, e.k, depth+1, max)
		b.WriteString(": ")
		writeRepr(b, e.v, depth+1, max)
	}
	b.WriteByte('}')
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

// ---- == and ordering ----

// maxVisit bounds the values one comparison, hash or repr may visit: a
// template can build a structure whose nested references expand
// exponentially. Past it, == answers False and the others fail.
const maxVisit = 1 << 24

// pyEq is Python ==.
func pyEq(a, b V) bool {
	budget := maxVisit
	return pyEqDepth(a, b, 0, &budget)
}

func pyEqDepth(a, b V, depth int, budget *int) bool {
	if depth > 500 {
		return false
	}
	if *budget--; *budget < 0 {
		return false
	}
	if a.k == kStr && b.k == kStr {
		return a.s == b.s
	}
	switch {
	case a.k == kUndef || b.k == kUndef:
		return a.k == b.k
	case isNum(a) && isNum(b):
		if a.k != kFloat && b.k != kFloat {
			return a.n == b.n
		}
		return toF(a) == toF(b)
	case a.k != b.k:
		return false
	}
	switch a.k {
	case kNone:
		return true
	case kView:
		if a.n != b.n || a.n == viewValues {
			return a.p == b.p // values views compare by identity
		}
		// keys and items views compare as sets
		x, y := a.items(), b.items()
		if len(x) != len(y) {
			return false
		}
		for _, xi := range x {
			found := false
			for _, yi := range y {
				if pyEqDepth(xi, yi, depth+1, budget) {
					found = true
					break
				}
			}
			if !found {
				return false
			}
		}
		return true
	case kList, kTuple, kRange:
		if a.p == b.p {
			return true // the same object (CPython compares items by identity first)
		}
		x, y := a.items(), b.items()
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if !pyEqDepth(x[i], y[i], depth+1, budget) {
				return false
			}
		}
		return true
	case kDict:
		if a.p == b.p {
			return true
		}
		x, y := a.AsDict(), b.AsDict()
		if x.Len() != y.Len() {
			return false
		}
		for _, e := range x.ents {
			yv, ok := y.GetV(e.k)
			if !ok || !pyEqDepth(e.v, yv, depth+1, budget) {
				return false
			}
		}
		return true
	}
	return a.p == b.p // namespaces, callables, loops: identity
}

// pyLess implements Python's <, >, <= and >=.
func pyLess(op string, a, b V) (bool, error) {
	if a.k == kUndef || b.k == kUndef {
		return false, undefErr(a, b)
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

func pyCompare(a, b V, op string) (int, error) {
	budget := maxVisit
	return pyCompareDepth(a, b, op, 0, &budget)
}

func pyCompareDepth(a, b V, op string, depth int, budget *int) (int, error) {
	if depth > 500 {
		return 0, &Error{Kind: "RecursionError", Msg: "maximum recursion depth exceeded in comparison"}
	}
	if *budget--; *budget < 0 {
		return 0, limitErr("values too large to compare")
	}
	switch {
	case isNum(a) && isNum(b):
		if a.k != kFloat && b.k != kFloat {
			return cmpInt(a.n, b.n), nil
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
		return 2, nil // NaN: every comparison false
	case a.k == kStr && b.k == kStr:
		return strings.Compare(a.s, b.s), nil
	case (a.k == kList || a.k == kTuple) && a.k == b.k:
		x, y := a.items(), b.items()
		for i := 0; i < len(x) && i < len(y); i++ {
			if pyEqDepth(x[i], y[i], depth+1, budget) {
				continue
			}
			if *budget < 0 {
				return 0, limitErr("values too large to compare")
			}
			return pyCompareDepth(x[i], y[i], op, depth+1, budget)
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
	switch v.k {
	case kNone:
		b.WriteString("null")
	case kBool:
		if v.n != 0 {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case kInt:
		b.WriteString(strconv.FormatInt(v.n, 10))
	case kFloat:
		b.WriteString(jsonFloat(v.AsFloat()))
	case kStr:
		writeJSONString(b, v.s, o.ensureASCII)
	case kList, kTuple:
		items := v.items()
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
	case kDict, kNS:
		// A namespace is serialised like its attribute dict (Python's
		// json.dumps rejects it; kept from earlier versions of this package).
		var d *Dict
		if v.k == kNS {
			d = &v.AsNS().attrs
		} else {
			d = v.AsDict()
		}
		if d.Len() == 0 {
			b.WriteString("{}")
			return nil
		}
		keys := make([]string, d.Len())
		for i, e := range d.ents {
			ks, err := jsonKey(e.k)
			if err != nil {
				return err
			}
			keys[i] = ks
		}
		order := make([]int, len(keys))
		for i := range order {
			order[i] = i
		}
		if o.sortKeys {
			var sortErr error
			sort.SliceStable(order, func(x, y int) bool {
				c, err := pyCompare(d.ents[order[x]].k, d.ents[order[y]].k, "<")
				if err != nil && sortErr == nil {
					sortErr = err
				}
				return c < 0
			})
			if sortErr != nil {
				return sortErr
			}
		}
		b.WriteByte('{')
		for n, i := range order {
			if n > 0 {
				b.WriteString(o.itemSep)
			}
			newline(level + 1)
			writeJSONString(b, keys[i], o.ensureASCII)
			b.WriteString(o.keySep)
			if err := writeJSON(b, d.ents[i].v, o, level+1); err != nil {
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

func jsonFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return pyFloatRepr(f)
}

// jsonKey converts a dict key as json.dumps does.
func jsonKey(k V) (string, error) {
	switch k.k {
	case kStr:
		return k.s, nil
	case kInt:
		return strconv.FormatInt(k.n, 10), nil
	case kFloat:
		return jsonFloat(k.AsFloat()), nil
	case kBool:
		if k.n != 0 {
			return "true", nil
		}
		return "false", nil
	case kNone:
		return "null", nil
	}
	return "", typeErr("keys must be str, int, float, bool or None, not %s", pyType(k))
}

func writeJSONString(b *strings.Builder, s string, ascii bool) {
	b.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			j := i + 1
			for j < len(s) && s[j] >= 0x20 && s[j] < 0x7f && s[j] != '"' && s[j] != '\\' {
				j++
			}
			b.WriteString(s[i:j])
			i = j
			continue
		}
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
