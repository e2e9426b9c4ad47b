package chat

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// This file holds the value operations of jinja2's sandbox: attribute and
// item access, slicing, iteration, membership, arithmetic and tests.

// Error is a rendering error. Kind names the Python exception jinja2 would
// raise: "TemplateError" (the template called raise_exception),
// "UndefinedError", "TypeError", "ValueError", "SecurityError",
// "ZeroDivisionError", "OverflowError" and so on, or "LimitError" (a
// sandbox limit of this package: time, output size, loop iterations,
// recursion or the size of a value).
type Error struct {
	Kind string
	Msg  string
}

func (e *Error) Error() string {
	if e.Kind == "TemplateError" {
		return "chat template raised an exception: " + e.Msg
	}
	return "chat template: " + e.Kind + ": " + e.Msg
}

func typeErr(format string, args ...any) error {
	return &Error{Kind: "TypeError", Msg: fmt.Sprintf(format, args...)}
}

// undefErrOf is the UndefinedError for using the undefined value v.
func undefErrOf(v V) error {
	msg := v.undefinedWhy()
	if msg == "" {
		msg = "an undefined value was used"
	}
	if v.n == undefSecurity {
		return &Error{Kind: "SecurityError", Msg: msg}
	}
	return &Error{Kind: "UndefinedError", Msg: msg}
}

// undefSecurity marks (in V.n) an Undefined standing for an unsafe attribute.
const undefSecurity = 1

// undefErr is undefErrOf for whichever of a, b is undefined.
func undefErr(a, b V) error {
	if a.k == kUndef {
		return undefErrOf(a)
	}
	return undefErrOf(b)
}

func limitErr(format string, args ...any) error {
	return &Error{Kind: "LimitError", Msg: fmt.Sprintf(format, args...)}
}

func arg(args []V, i int) V {
	if i < len(args) {
		return args[i]
	}
	return vUndef
}

// kwGet returns keyword argument name.
func kwGet(kw []kwarg, name string) (V, bool) {
	for _, a := range kw {
		if a.name == name {
			return a.v, true
		}
	}
	return vUndef, false
}

// param returns positional argument i or keyword name, or def.
func param(args []V, kw []kwarg, i int, name string, def V) V {
	if i >= 0 && i < len(args) {
		return args[i]
	}
	if v, ok := kwGet(kw, name); ok {
		return v
	}
	return def
}

// replace is strings.Replace with the result size checked first.
func (s *state) replace(str, old, new string, n int) (string, error) {
	count := strings.Count(str, old)
	if n >= 0 && n < count {
		count = n
	}
	if size := int64(len(str)) + int64(count)*int64(len(new)-len(old)); size > s.maxLen() {
		return "", limitErr("replace result exceeds the %d-byte limit", s.maxLen())
	}
	return strings.Replace(str, old, new, n), nil
}

// ---- iteration and membership ----

// iterate is Python's iter(): a sequence's items, a dict's keys, a
// string's characters; Undefined iterates as empty.
func iterate(v V) ([]V, error) {
	switch v.k {
	case kList, kTuple, kRange, kView:
		return v.items(), nil
	case kIter:
		var out []V
		it := v.AsIter()
		for {
			x, ok, err := it.pull()
			if err != nil {
				return nil, err
			}
			if !ok {
				return out, nil
			}
			if len(out) >= maxIterItems {
				return nil, limitErr("iterator yields more than %d items", maxIterItems)
			}
			out = append(out, x)
		}
	case kDict:
		return v.AsDict().keys(), nil
	case kStr:
		out := make([]V, 0, len(v.s))
		for i, r := range v.s {
			if r < utf8.RuneSelf {
				out = append(out, vStr(v.s[i:i+1]))
			} else {
				out = append(out, vStr(string(r)))
			}
		}
		return out, nil
	case kUndef:
		return nil, nil
	}
	return nil, typeErr("'%s' object is not iterable", pyType(v))
}

// maxIterItems bounds the items drained from one iterator.
const maxIterItems = DefaultMaxOutput / 16

// iterOf returns a pull function over v's items, as Python's iter(v); for
// a value that is not iterable the error comes at the first pull (the
// filters that return generators are lazy).
func iterOf(v V) func() (V, bool, error) {
	if v.k == kIter {
		return v.AsIter().pull
	}
	var items []V
	started := false
	i := 0
	return func() (V, bool, error) {
		if !started {
			started = true
			var err error
			if items, err = iterate(v); err != nil {
				return vUndef, false, err
			}
		}
		if i >= len(items) {
			return vUndef, false, nil
		}
		i++
		return items[i-1], true, nil
	}
}

func pyIn(a, b V) (bool, error) {
	switch b.k {
	case kStr:
		if a.k != kStr {
			return false, typeErr("'in <string>' requires string as left operand, not %s", pyType(a))
		}
		return strings.Contains(b.s, a.s), nil
	case kList, kTuple, kRange:
		for _, it := range b.items() {
			if pyEq(a, it) {
				return true, nil
			}
		}
		return false, nil
	case kView:
		if b.n == viewKeys {
			if err := hashable(a); err != nil {
				return false, err
			}
		}
		for _, it := range b.items() {
			if pyEq(a, it) {
				return true, nil
			}
		}
		return false, nil
	case kIter: // consumes the iterator up to the match
		it := b.AsIter()
		for {
			x, ok, err := it.pull()
			if err != nil || !ok {
				return false, err
			}
			if pyEq(a, x) {
				return true, nil
			}
		}
	case kDict:
		if err := hashable(a); err != nil {
			return false, err
		}
		return b.AsDict().find(a) >= 0, nil
	case kUndef:
		return false, nil
	}
	return false, typeErr("argument of type '%s' is not iterable", pyType(b))
}

// ---- attribute and item access (jinja2 sandbox getattr/getitem) ----

var (
	safeDictMethods   = map[string]bool{"get": true, "items": true, "keys": true, "values": true, "copy": true}
	unsafeDictMethods = map[string]bool{"clear": true, "pop": true, "popitem": true, "setdefault": true, "update": true}
	safeListMethods   = map[string]bool{"index": true, "count": true, "copy": true}
	unsafeListMethods = map[string]bool{"append": true, "clear": true, "extend": true, "insert": true, "pop": true, "remove": true, "reverse": true, "sort": true}
)

// unsafeAttr is what the sandbox gives for a mutating method: an undefined
// value whose use raises a SecurityError.
func unsafeAttr(name, typ string) V {
	return V{k: kUndef, n: undefSecurity, s: fmt.Sprintf("access to attribute '%s' of '%s' object is unsafe.", name, typ)}
}

func noAttr(obj V, name string) V {
	return undefined(fmt.Sprintf("'%s object' has no attribute '%s'", pyType(obj), name))
}

func (s *state) getattr(obj V, name string) (V, error) {
	if obj.k == kUndef {
		return vUndef, undefErrOf(obj)
	}
	if strings.HasPrefix(name, "_") {
		if obj.k == kDict {
			if v, ok := obj.AsDict().Get(name); ok && !(strings.HasPrefix(name, "__") && strings.HasSuffix(name, "__")) {
				return v, nil
			}
		}
		return noAttr(obj, name), nil
	}
	switch obj.k {
	case kNS:
		if v, ok := obj.AsNS().attrs.Get(name); ok {
			return v, nil
		}
	case kDict:
		if safeDictMethods[name] {
			return boundMethod(obj, name), nil
		}
		if unsafeDictMethods[name] {
			return unsafeAttr(name, "dict"), nil
		}
		if v, ok := obj.AsDict().Get(name); ok {
			return v, nil
		}
	case kStr:
		if strMethodNames[name] {
			return boundMethod(obj, name), nil
		}
	case kList, kTuple, kRange:
		if safeListMethods[name] && (obj.k == kList || name != "copy") {
			return boundMethod(obj, name), nil
		}
		if obj.k == kList && unsafeListMethods[name] {
			return unsafeAttr(name, "list"), nil
		}
	case kLoop:
		return s.loopAttr(obj.asLoop(), name), nil
	}
	return noAttr(obj, name), nil
}

// boundMethod is obj.name as a value (for a method that is not called at
// once, e.g. tested with `is defined` or passed around).
func boundMethod(obj V, name string) V {
	return V{k: kFunc, p: &Func{name: name, method: pyType(obj), fn: func(s *state, args []V, kw []kwarg) (V, error) {
		return s.callMethod(obj, name, args, kw)
	}}}
}

// callMethod is obj.name(args...).
func (s *state) callMethod(obj V, name string, args []V, kw []kwarg) (V, error) {
	if err := s.spend(cost(obj)); err != nil {
		return vUndef, err
	}
	if !strings.HasPrefix(name, "_") {
		var v V
		var ok bool
		var err error
		switch obj.k {
		case kStr:
			if obj.isMarkup() {
				v, ok, err = s.markupMethod(obj, name, args, kw)
			} else {
				v, ok, err = s.strMethod(obj.s, name, args, kw)
			}
		case kDict:
			v, ok, err = dictMethod(obj.AsDict(), name, args)
		case kList, kTuple, kRange:
			v, ok, err = listMethod(obj, name, args)
		}
		if ok {
			if err == nil {
				err = s.sizeOf(v)
			}
			return v, err
		}
	}
	f, err := s.getattr(obj, name)
	if err != nil {
		return vUndef, err
	}
	return s.callValue(f, args, kw)
}

func (s *state) getitem(obj, key V) (V, error) {
	switch obj.k {
	case kUndef:
		return vUndef, undefErrOf(obj)
	case kList, kTuple, kRange:
		if i, ok := asInt(key); ok {
			items := obj.items()
			if i < 0 {
				i += int64(len(items))
			}
			if i >= 0 && i < int64(len(items)) {
				return items[i], nil
			}
			return undefined(fmt.Sprintf("%s object has no element %s", pyType(obj), pyRepr(key))), nil
		}
	case kStr:
		if i, ok := asInt(key); ok {
			str := obj.s
			if isASCIIString(str) {
				if i < 0 {
					i += int64(len(str))
				}
				if i >= 0 && i < int64(len(str)) {
					return likeStr(obj, str[i:i+1]), nil
				}
			} else {
				if err := s.spend(len(str) / 16); err != nil {
					return vUndef, err
				}
				rs := []rune(str)
				if i < 0 {
					i += int64(len(rs))
				}
				if i >= 0 && i < int64(len(rs)) {
					return likeStr(obj, string(rs[i])), nil
				}
			}
			return undefined(fmt.Sprintf("str object has no element %s", pyRepr(key))), nil
		}
	case kDict:
		if hashable(key) == nil {
			if v, ok := obj.AsDict().GetV(key); ok {
				return v, nil
			}
		}
	}
	if key.k == kStr {
		return s.getattr(obj, key.s)
	}
	return undefined(fmt.Sprintf("'%s object' has no element %s", pyType(obj), pyRepr(key))), nil
}

func sliceIndex(v V) (int64, bool, error) {
	if v.k == kNone || v.k == kUndef {
		return 0, false, nil
	}
	i, ok := asInt(v)
	if !ok {
		return 0, false, typeErr("slice indices must be integers or None or have an __index__ method")
	}
	return i, true, nil
}

// pySliceIndices is Python's slice.indices.
func pySliceIndices(start, stop, step V, n int64) (int64, int64, int64, error) {
	st, hasStep, err := sliceIndex(step)
	if err != nil {
		return 0, 0, 0, err
	}
	if !hasStep {
		st = 1
	}
	if st == 0 {
		return 0, 0, 0, &Error{Kind: "ValueError", Msg: "slice step cannot be zero"}
	}
	lo, hi := int64(0), n
	if st < 0 {
		lo, hi = -1, n-1
	}
	clamp := func(v V, def int64) (int64, error) {
		i, ok, err := sliceIndex(v)
		if err != nil || !ok {
			return def, err
		}
		if i < 0 {
			i += n
			if i < lo {
				i = lo
			}
		} else if i > hi {
			i = hi
		}
		return i, nil
	}
	defStart, defStop := lo, hi
	if st < 0 {
		defStart, defStop = hi, lo
	}
	a, err := clamp(start, defStart)
	if err != nil {
		return 0, 0, 0, err
	}
	b, err := clamp(stop, defStop)
	return a, b, st, err
}

func slice(obj, start, stop, step V) (V, error) {
	var n int64
	var runes []rune
	ascii := false
	switch obj.k {
	case kUndef:
		return vUndef, undefErrOf(obj)
	case kList, kTuple, kRange:
		n = int64(len(obj.items()))
	case kStr:
		if ascii = isASCIIString(obj.s); ascii {
			n = int64(len(obj.s))
		} else {
			runes = []rune(obj.s)
			n = int64(len(runes))
		}
	case kDict:
		return vUndef, typeErr("unhashable type: 'slice'")
	default:
		// jinja2 compiles slices to a plain Python subscript, which fails.
		return vUndef, typeErr("'%s' object is not subscriptable", pyType(obj))
	}
	a, b, st, err := pySliceIndices(start, stop, step, n)
	if err != nil {
		return vUndef, err
	}
	if obj.k == kRange {
		r := obj.p.(*rangeObj)
		var m int64
		if st > 0 && b > a {
			m = (b - a + st - 1) / st
		} else if st < 0 && b < a {
			m = (a - b - st - 1) / -st
		}
		return newRange(r.start+a*r.step, r.start+b*r.step, r.step*st, m), nil
	}
	if st == 1 {
		b = max(a, b)
		switch {
		case obj.k == kStr && ascii:
			return likeStr(obj, obj.s[a:b]), nil
		case obj.k == kStr:
			return likeStr(obj, string(runes[a:b])), nil
		}
		out := append([]V(nil), obj.items()[a:b]...)
		if obj.k == kTuple {
			return vTuple(out), nil
		}
		return vList(out), nil
	}
	var idx []int64
	if st > 0 {
		for i := a; i < b; i += st {
			idx = append(idx, i)
		}
	} else {
		for i := a; i > b; i += st {
			idx = append(idx, i)
		}
	}
	if obj.k != kStr {
		items := obj.items()
		out := make([]V, len(idx))
		for k, i := range idx {
			out[k] = items[i]
		}
		if obj.k == kTuple {
			return vTuple(out), nil
		}
		return vList(out), nil
	}
	if ascii {
		out := make([]byte, len(idx))
		for k, i := range idx {
			out[k] = obj.s[i]
		}
		return likeStr(obj, string(out)), nil
	}
	out := make([]rune, len(idx))
	for k, i := range idx {
		out[k] = runes[i]
	}
	return likeStr(obj, string(out)), nil
}

// ---- arithmetic ----

func unary(op string, v V) (V, error) {
	if v.IsUndefined() {
		return vUndef, undefErrOf(v)
	}
	if i, ok := asInt(v); ok {
		if op == "-" {
			return vInt(-i), nil
		}
		return vInt(i), nil
	}
	if v.IsFloat() {
		if op == "-" {
			return vFloat(-v.AsFloat()), nil
		}
		return v, nil
	}
	return vUndef, typeErr("bad operand type for unary %s: '%s'", op, pyType(v))
}

func opErr(op string, a, b V) error {
	return typeErr("unsupported operand type(s) for %s: '%s' and '%s'", op, pyType(a), pyType(b))
}

func (s *state) binop(op string, a, b V) (V, error) {
	if op == "%" && a.k == kStr && b.k == kUndef {
		// str.__mod__ runs first and takes Undefined as a mapping
		return s.printf(a, b)
	}
	if a.IsUndefined() || b.IsUndefined() {
		return vUndef, undefErr(a, b)
	}
	ai, aInt := asInt(a)
	bi, bInt := asInt(b)
	nums := isNum(a) && isNum(b)
	switch op {
	case "+":
		switch {
		case aInt && bInt:
			r := ai + bi
			if (r > ai) != (bi > 0) {
				return vUndef, &Error{Kind: "OverflowError", Msg: "integer overflow"}
			}
			return vInt(r), nil
		case nums:
			return vFloat(toF(a) + toF(b)), nil
		case a.IsString() && b.IsString():
			if a.isMarkup() || b.isMarkup() { // Markup escapes the other side
				return vMarkup(escapeV(a).s + escapeV(b).s), nil
			}
			return vStr(a.AsString() + b.AsString()), nil
		case (a.k == kList || a.k == kTuple) && a.k == b.k:
			x, y := a.items(), b.items()
			out := make([]V, 0, len(x)+len(y))
			out = append(append(out, x...), y...)
			return V{k: a.k, p: &List{Items: out}}, nil
		case a.IsString():
			return vUndef, typeErr("can only concatenate str (not \"%s\") to str", pyType(b))
		case a.k == kList || a.k == kTuple:
			return vUndef, typeErr("can only concatenate %s (not \"%s\") to %s", pyType(a), pyType(b), pyType(a))
		}
	case "-":
		switch {
		case aInt && bInt:
			return vInt(ai - bi), nil
		case nums:
			return vFloat(toF(a) - toF(b)), nil
		}
	case "*":
		switch {
		case aInt && bInt:
			if ai != 0 && (ai*bi)/ai != bi {
				return vUndef, &Error{Kind: "OverflowError", Msg: "integer overflow"}
			}
			return vInt(ai * bi), nil
		case nums:
			return vFloat(toF(a) * toF(b)), nil
		case a.IsString() && bInt, aInt && b.IsString():
			str, n := a, bi
			if aInt {
				str, n = b, ai
			}
			if n <= 0 {
				return vEmpty, nil
			}
			if n > s.maxLen() || int64(len(str.AsString()))*n > s.maxLen() {
				return vUndef, limitErr("string repetition exceeds the %d-byte limit", s.maxLen())
			}
			return likeStr(str, strings.Repeat(str.AsString(), int(n))), nil
		case (a.k == kList || a.k == kTuple) && bInt, aInt && (b.k == kList || b.k == kTuple):
			l, n := a, bi
			if aInt {
				l, n = b, ai
			}
			items := l.items()
			if n <= 0 {
				return V{k: l.k, p: &List{}}, nil
			}
			if n > s.maxLen()/64 || int64(len(items))*n > s.maxLen()/64 {
				return vUndef, limitErr("list repetition too large")
			}
			out := make([]V, 0, int64(len(items))*n)
			for i := int64(0); i < n; i++ {
				out = append(out, items...)
			}
			return V{k: l.k, p: &List{Items: out}}, nil
		}
	case "/":
		if nums {
			if toF(b) == 0 {
				return vUndef, &Error{Kind: "ZeroDivisionError", Msg: "division by zero"}
			}
			return vFloat(toF(a) / toF(b)), nil
		}
	case "//":
		switch {
		case aInt && bInt:
			if bi == 0 {
				return vUndef, &Error{Kind: "ZeroDivisionError", Msg: "integer division or modulo by zero"}
			}
			q := ai / bi
			if (ai%bi != 0) && ((ai < 0) != (bi < 0)) {
				q--
			}
			return vInt(q), nil
		case nums:
			if toF(b) == 0 {
				return vUndef, &Error{Kind: "ZeroDivisionError", Msg: "float floor division by zero"}
			}
			return vFloat(math.Floor(toF(a) / toF(b))), nil
		}
	case "%":
		switch {
		case aInt && bInt:
			if bi == 0 {
				return vUndef, &Error{Kind: "ZeroDivisionError", Msg: "integer division or modulo by zero"}
			}
			m := ai % bi
			if m != 0 && (m < 0) != (bi < 0) {
				m += bi
			}
			return vInt(m), nil
		case nums:
			x, y := toF(a), toF(b)
			if y == 0 {
				return vUndef, &Error{Kind: "ZeroDivisionError", Msg: "float modulo"}
			}
			m := math.Mod(x, y)
			if m != 0 && (m < 0) != (y < 0) {
				m += y
			}
			if m == 0 {
				m = math.Copysign(0, y) // Python: the sign of the divisor
			}
			return vFloat(m), nil
		case a.IsString():
			return s.printf(a, b)
		}
	case "**":
		switch {
		case aInt && bInt && bi >= 0:
			r := int64(1)
			base := ai
			for e := bi; e > 0; e-- {
				if base != 0 && (r*base)/base != r {
					return vUndef, &Error{Kind: "OverflowError", Msg: "integer overflow"}
				}
				r *= base
				if r == 0 || r == 1 && base == 1 {
					break
				}
			}
			return vInt(r), nil
		case nums:
			if toF(a) == 0 && toF(b) < 0 {
				return vUndef, &Error{Kind: "ZeroDivisionError", Msg: "0.0 cannot be raised to a negative power"}
			}
			return vFloat(math.Pow(toF(a), toF(b))), nil
		}
	}
	return vUndef, opErr(op, a, b)
}

// ---- tests ----

func (s *state) test(name string, v V, args []V) (bool, error) {
	switch name {
	case "defined":
		return !v.IsUndefined(), nil
	case "undefined":
		return v.IsUndefined(), nil
	case "none":
		return v.IsNone(), nil
	case "boolean":
		return v.IsBool(), nil
	case "true":
		return v.IsBool() && v.AsBool(), nil
	case "false":
		return v.IsBool() && !v.AsBool(), nil
	case "integer":
		return v.IsInt(), nil
	case "float":
		return v.IsFloat(), nil
	case "number":
		return isNum(v), nil
	case "string":
		return v.IsString(), nil
	case "mapping":
		return v.k == kDict, nil
	case "sequence": // has len() and [] (Undefined has both)
		return v.k == kStr || v.k == kList || v.k == kTuple || v.k == kRange || v.k == kDict || v.k == kUndef, nil
	case "iterable":
		switch v.k {
		case kStr, kList, kTuple, kRange, kDict, kView, kIter, kUndef, kLoop:
			return true, nil
		}
		return false, nil
	case "callable": // Undefined defines __call__ (which fails)
		return v.k == kFunc || v.k == kLoop || v.k == kUndef, nil
	case "escaped":
		return v.isMarkup(), nil
	case "lower", "upper":
		return pyIsCase(pyStr(v), name == "upper"), nil
	case "odd", "even", "divisibleby":
		d := int64(2)
		if name == "divisibleby" {
			var ok bool
			if d, ok = asInt(arg(args, 0)); !ok {
				return false, typeErr("divisibleby needs an integer")
			}
		}
		r, err := s.binop("%", v, vInt(d))
		if err != nil {
			return false, err
		}
		if name == "odd" { // value % 2 == 1
			return pyEq(r, vInt(1)), nil
		}
		return pyEq(r, vInt(0)), nil
	case "sameas":
		o := arg(args, 0)
		switch v.k {
		case kNone:
			return o.k == kNone, nil
		case kBool:
			return o.k == kBool && o.n == v.n, nil
		case kStr:
			// Equal literals of one template are one object in CPython.
			return o.k == kStr && o.s == v.s, nil
		case kInt:
			// CPython caches the small integers.
			return o.k == kInt && v.n == o.n && v.n >= -5 && v.n <= 256, nil
		case kList, kTuple, kDict, kNS, kFunc, kLoop:
			return o.k == v.k && o.p == v.p, nil
		}
		return false, nil
	case "in":
		if err := s.spend(cost(arg(args, 0))); err != nil {
			return false, err
		}
		return pyIn(v, arg(args, 0))
	case "eq", "equalto", "==":
		return pyEq(v, arg(args, 0)), nil
	case "ne", "!=":
		return !pyEq(v, arg(args, 0)), nil
	case "lt", "lessthan", "<":
		return pyLess("<", v, arg(args, 0))
	case "le", "<=":
		return pyLess("<=", v, arg(args, 0))
	case "gt", "greaterthan", ">":
		return pyLess(">", v, arg(args, 0))
	case "ge", ">=":
		return pyLess(">=", v, arg(args, 0))
	case "filter", "test": // `value in environment.filters` (a dict)
		if err := hashable(v); err != nil {
			return false, err
		}
		if v.k != kStr {
			return false, nil
		}
		if name == "filter" {
			return filterNames[v.s], nil
		}
		return testNames[v.s], nil
	}
	return false, &Error{Kind: "TemplateRuntimeError", Msg: fmt.Sprintf("no test named '%s'", name)}
}

// ---- time ----

var (
	weekdays = []string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}
	months   = []string{"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"}
)

// strftime implements Python's time.strftime directives (C locale).
func strftime(format string, t time.Time) string {
	var b strings.Builder
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' || i+1 >= len(format) {
			b.WriteByte(c)
			continue
		}
		i++
		noPad := false
		if format[i] == '-' && i+1 < len(format) {
			noPad = true
			i++
		}
		num := func(v, width int) {
			if noPad {
				b.WriteString(strconv.Itoa(v))
			} else {
				fmt.Fprintf(&b, "%0*d", width, v)
			}
		}
		hour12 := t.Hour() % 12
		if hour12 == 0 {
			hour12 = 12
		}
		switch format[i] {
		case 'a':
			b.WriteString(weekdays[t.Weekday()][:3])
		case 'A':
			b.WriteString(weekdays[t.Weekday()])
		case 'b', 'h':
			b.WriteString(months[t.Month()-1][:3])
		case 'B':
			b.WriteString(months[t.Month()-1])
		case 'd':
			num(t.Day(), 2)
		case 'e':
			fmt.Fprintf(&b, "%2d", t.Day())
		case 'H':
			num(t.Hour(), 2)
		case 'I':
			num(hour12, 2)
		case 'j':
			num(t.YearDay(), 3)
		case 'm':
			num(int(t.Month()), 2)
		case 'M':
			num(t.Minute(), 2)
		case 'S':
			num(t.Second(), 2)
		case 'f':
			fmt.Fprintf(&b, "%06d", t.Nanosecond()/1000)
		case 'p':
			if t.Hour() < 12 {
				b.WriteString("AM")
			} else {
				b.WriteString("PM")
			}
		case 'y':
			num(t.Year()%100, 2)
		case 'Y':
			b.WriteString(strconv.Itoa(t.Year()))
		case 'w':
			b.WriteString(strconv.Itoa(int(t.Weekday())))
		case 'u':
			w := int(t.Weekday())
			if w == 0 {
				w = 7
			}
			b.WriteString(strconv.Itoa(w))
		case 'Z':
			name, _ := t.Zone()
			b.WriteString(name)
		case 'z':
			_, off := t.Zone()
			sign := '+'
			if off < 0 {
				sign, off = '-', -off
			}
			fmt.Fprintf(&b, "%c%02d%02d", sign, off/3600, off/60%60)
		case 'F':
			fmt.Fprintf(&b, "%d-%02d-%02d", t.Year(), t.Month(), t.Day())
		case 'T':
			fmt.Fprintf(&b, "%02d:%02d:%02d", t.Hour(), t.Minute(), t.Second())
		case 'D':
			fmt.Fprintf(&b, "%02d/%02d/%02d", t.Month(), t.Day(), t.Year()%100)
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			b.WriteByte(format[i])
		}
	}
	return b.String()
}
