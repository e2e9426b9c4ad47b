package chat

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ardanlabs/jinja"
)

// Error is a rendering error. Kind names the Python exception jinja2 would
// raise: "TemplateError" (the template called raise_exception),
// "UndefinedError", "TypeError", "ValueError", "SecurityError",
// "ZeroDivisionError", "OverflowError", or "LimitError" (a sandbox limit of
// this package: time, output size, loop iterations or macro recursion).
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

func undefErr(what string) error {
	return &Error{Kind: "UndefinedError", Msg: "undefined value used in " + what}
}

func limitErr(format string, args ...any) error {
	return &Error{Kind: "LimitError", Msg: fmt.Sprintf(format, args...)}
}

type fn = func(args []V, kw map[string]V) (V, error)

// state is the per-render sandbox state shared by the helpers.
type state struct {
	t        *Template
	data     []string
	produced int64
	ticks    int64
	depth    int
	start    time.Time
	deadline time.Time
	limit    int64

	// jinja2 values the engine has no type for, tracked by identity.
	tuples     map[*jinja.List]bool
	namespaces map[*jinja.Dict]bool
}

func (s *state) tuple(items []V) V {
	v := vList(items)
	s.tuples[v.AsList()] = true
	return v
}

func (s *state) checkTime() error {
	if !s.deadline.IsZero() && time.Now().After(s.deadline) {
		return limitErr("rendering took longer than %v", s.deadline.Sub(s.start))
	}
	return nil
}

func (s *state) emit(n int) error {
	s.produced += int64(n)
	if s.produced > s.limit {
		return limitErr("template produced more than %d bytes", s.limit)
	}
	return nil
}

func (s *state) checkSize(n int) error {
	if int64(n) > s.limit {
		return limitErr("value of %d bytes exceeds the %d-byte limit", n, s.limit)
	}
	return nil
}

const (
	maxTicks      = 10_000_000
	maxMacroDepth = 128
	maxRange      = 100_000 // jinja2's sandbox MAX_RANGE
)

func arg(args []V, i int) V {
	if i < len(args) {
		return args[i]
	}
	return vUndef
}

// param returns positional argument i or keyword name, or def.
func param(args []V, kw map[string]V, i int, name string, def V) V {
	if i >= 0 && i < len(args) {
		return args[i]
	}
	if v, ok := kw[name]; ok {
		return v
	}
	return def
}

func (s *state) globals() map[string]V {
	g := map[string]V{}
	add := func(name string, f fn) { g[name] = jinja.NewCallable(name, f) }

	add("__kv_d", func(args []V, _ map[string]V) (V, error) {
		i, _ := asInt(arg(args, 0))
		if i < 0 || int(i) >= len(s.data) {
			return vEmpty, nil
		}
		if err := s.emit(len(s.data[i])); err != nil {
			return vUndef, err
		}
		return vStr(s.data[i]), nil
	})
	add("__kv_out", func(args []V, _ map[string]V) (V, error) {
		out := s.str(arg(args, 0))
		if err := s.emit(len(out)); err != nil {
			return vUndef, err
		}
		return vStr(out), nil
	})
	add("__kv_tick", func([]V, map[string]V) (V, error) {
		s.ticks++
		if s.ticks > maxTicks {
			return vUndef, limitErr("more than %d loop iterations", maxTicks)
		}
		if s.ticks&255 == 0 {
			if err := s.checkTime(); err != nil {
				return vUndef, err
			}
		}
		return vEmpty, nil
	})
	add("__kv_enter", func([]V, map[string]V) (V, error) {
		s.depth++
		if s.depth > maxMacroDepth {
			return vUndef, limitErr("macro recursion deeper than %d", maxMacroDepth)
		}
		s.ticks++
		if err := s.checkTime(); err != nil {
			return vUndef, err
		}
		return vEmpty, nil
	})
	add("__kv_leave", func([]V, map[string]V) (V, error) {
		s.depth--
		return vEmpty, nil
	})
	add("__kv_undef", func(args []V, _ map[string]V) (V, error) {
		return vBool(arg(args, 0).IsUndefined()), nil
	})
	add("__kv_float", func(args []V, _ map[string]V) (V, error) {
		f, _ := strconv.ParseFloat(pyStr(arg(args, 0)), 64)
		return vFloat(f), nil
	})
	add("__kv_mkdict", func(args []V, _ map[string]V) (V, error) {
		d := jinja.NewDict()
		for i := 0; i+1 < len(args); i += 2 {
			k := args[i]
			if !k.IsString() && !isNum(k) && !k.IsNone() {
				return vUndef, typeErr("unhashable type: '%s'", pyType(k))
			}
			d.AsDict().Set(pyStr(k), args[i+1])
		}
		return d, nil
	})
	add("__kv_ga", func(args []V, _ map[string]V) (V, error) {
		return s.getattr(arg(args, 0), pyStr(arg(args, 1)))
	})
	add("__kv_gi", func(args []V, _ map[string]V) (V, error) {
		return s.getitem(arg(args, 0), arg(args, 1))
	})
	add("__kv_tuple", func(args []V, _ map[string]V) (V, error) {
		return s.tuple(append([]V(nil), args...)), nil
	})
	add("namespace", func(args []V, kw map[string]V) (V, error) {
		d := jinja.NewDict()
		if a := arg(args, 0); a.IsDict() {
			for _, k := range a.AsDict().Keys {
				d.AsDict().Set(k, a.AsDict().Data[k])
			}
		}
		keys := make([]string, 0, len(kw))
		for k := range kw {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			d.AsDict().Set(k, kw[k])
		}
		s.namespaces[d.AsDict()] = true
		return d, nil
	})
	add("__kv_sl", func(args []V, _ map[string]V) (V, error) {
		return slice(arg(args, 0), arg(args, 1), arg(args, 2), arg(args, 3))
	})
	add("__kv_op", func(args []V, _ map[string]V) (V, error) {
		v, err := s.binop(pyStr(arg(args, 0)), arg(args, 1), arg(args, 2))
		if err == nil {
			err = s.sizeOf(v)
		}
		return v, err
	})
	add("__kv_neg", func(args []V, _ map[string]V) (V, error) { return unary("-", arg(args, 0)) })
	add("__kv_pos", func(args []V, _ map[string]V) (V, error) { return unary("+", arg(args, 0)) })
	add("__kv_cat", func(args []V, _ map[string]V) (V, error) {
		var b strings.Builder
		for _, a := range args {
			b.WriteString(s.str(a))
			if err := s.checkSize(b.Len()); err != nil {
				return vUndef, err
			}
		}
		return vStr(b.String()), nil
	})
	add("__kv_cmp", func(args []V, _ map[string]V) (V, error) {
		op, a, b := pyStr(arg(args, 0)), arg(args, 1), arg(args, 2)
		switch op {
		case "==":
			return vBool(pyEq(a, b)), nil
		case "!=":
			return vBool(!pyEq(a, b)), nil
		case "in", "notin":
			in, err := pyIn(a, b)
			return vBool(in == (op == "in")), err
		}
		r, err := pyLess(op, a, b)
		return vBool(r), err
	})
	add("__kv_iter", func(args []V, _ map[string]V) (V, error) {
		items, err := iterate(arg(args, 0))
		return vList(items), err
	})
	add("__kv_unpack", func(args []V, _ map[string]V) (V, error) {
		v := arg(args, 0)
		n, _ := asInt(arg(args, 1))
		if v.IsUndefined() {
			return vUndef, undefErr("tuple unpacking")
		}
		items, err := iterate(v)
		if err != nil {
			return vUndef, typeErr("cannot unpack non-iterable %s object", pyType(v))
		}
		if int64(len(items)) > n {
			return vUndef, &Error{Kind: "ValueError", Msg: fmt.Sprintf("too many values to unpack (expected %d)", n)}
		}
		if int64(len(items)) < n {
			return vUndef, &Error{Kind: "ValueError", Msg: fmt.Sprintf("not enough values to unpack (expected %d, got %d)", n, len(items))}
		}
		return vList(items), nil
	})
	add("__kv_f", func(args []V, kw map[string]V) (V, error) {
		if len(args) < 2 {
			return vUndef, typeErr("filter called without a value")
		}
		v, err := s.filter(pyStr(args[0]), args[1], args[2:], kw)
		if err == nil {
			err = s.sizeOf(v)
		}
		return v, err
	})
	add("__kv_t", func(args []V, kw map[string]V) (V, error) {
		if len(args) < 2 {
			return vUndef, typeErr("test called without a value")
		}
		r, err := s.test(pyStr(args[0]), args[1], args[2:])
		return vBool(r), err
	})

	// Globals of Hugging Face's environment.
	add("raise_exception", func(args []V, _ map[string]V) (V, error) {
		return vUndef, &Error{Kind: "TemplateError", Msg: pyStr(arg(args, 0))}
	})
	add("strftime_now", func(args []V, _ map[string]V) (V, error) {
		now := time.Now()
		if s.t.Now != nil {
			now = s.t.Now()
		}
		return vStr(strftime(pyStr(arg(args, 0)), now)), nil
	})
	add("range", func(args []V, _ map[string]V) (V, error) {
		var a [3]int64
		a[2] = 1
		for i, v := range args {
			n, ok := asInt(v)
			if !ok {
				return vUndef, typeErr("'%s' object cannot be interpreted as an integer", pyType(v))
			}
			if i < 3 {
				a[i] = n
			}
		}
		start, stop, step := a[0], a[1], a[2]
		switch len(args) {
		case 1:
			start, stop = 0, a[0]
		case 2, 3:
		default:
			return vUndef, typeErr("range expected 1 to 3 arguments, got %d", len(args))
		}
		if step == 0 {
			return vUndef, &Error{Kind: "ValueError", Msg: "range() arg 3 must not be zero"}
		}
		var n int64
		if step > 0 && stop > start {
			n = (stop - start + step - 1) / step
		} else if step < 0 && stop < start {
			n = (start - stop - step - 1) / -step
		}
		if n > maxRange {
			return vUndef, &Error{Kind: "OverflowError", Msg: fmt.Sprintf("Range too big. The sandbox blocks ranges larger than MAX_RANGE (%d).", maxRange)}
		}
		items := make([]V, n)
		for i := range items {
			items[i] = vInt(start + int64(i)*step)
		}
		return vList(items), nil
	})
	return g
}

// maxLen is the largest string (in bytes) a rendering may build.
func (s *state) maxLen() int64 {
	if s == nil || s.limit <= 0 {
		return DefaultMaxOutput
	}
	return s.limit
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

func (s *state) sizeOf(v V) error {
	switch {
	case v.IsString():
		return s.checkSize(len(v.AsString()))
	case v.IsList():
		return s.checkSize(v.AsList().Len() * 16)
	}
	return nil
}

// ---- iteration and membership ----

func iterate(v V) ([]V, error) {
	switch {
	case v.IsList():
		return v.AsList().Items, nil
	case v.IsDict():
		d := v.AsDict()
		out := make([]V, len(d.Keys))
		for i, k := range d.Keys {
			out[i] = vStr(k)
		}
		return out, nil
	case v.IsString():
		var out []V
		for _, r := range v.AsString() {
			out = append(out, vStr(string(r)))
		}
		return out, nil
	case v.IsUndefined():
		return nil, nil
	}
	return nil, typeErr("'%s' object is not iterable", pyType(v))
}

func pyIn(a, b V) (bool, error) {
	switch {
	case b.IsString():
		if !a.IsString() {
			return false, typeErr("'in <string>' requires string as left operand, not %s", pyType(a))
		}
		return strings.Contains(b.AsString(), a.AsString()), nil
	case b.IsList():
		for _, it := range b.AsList().Items {
			if pyEq(a, it) {
				return true, nil
			}
		}
		return false, nil
	case b.IsDict():
		if a.IsList() || a.IsDict() {
			return false, typeErr("unhashable type: '%s'", pyType(a))
		}
		return a.IsString() && b.AsDict().Has(a.AsString()), nil
	case b.IsUndefined():
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

func unsafeAttr(name, typ string) V {
	return jinja.NewCallable("unsafe", func([]V, map[string]V) (V, error) {
		return vUndef, &Error{Kind: "SecurityError", Msg: fmt.Sprintf("access to attribute '%s' of '%s' object is unsafe.", name, typ)}
	})
}

func (s *state) getattr(obj V, name string) (V, error) {
	if obj.IsUndefined() {
		return vUndef, &Error{Kind: "UndefinedError", Msg: fmt.Sprintf("undefined value has no attribute '%s'", name)}
	}
	if strings.HasPrefix(name, "_") {
		if obj.IsDict() {
			if v, ok := obj.AsDict().Get(name); ok && !(strings.HasPrefix(name, "__") && strings.HasSuffix(name, "__")) {
				return v, nil
			}
		}
		return vUndef, nil
	}
	switch {
	case s.isNamespace(obj):
		if v, ok := obj.AsDict().Get(name); ok {
			return v, nil
		}
	case obj.IsDict():
		if safeDictMethods[name] {
			return s.dictMethod(obj, name), nil
		}
		if unsafeDictMethods[name] {
			return unsafeAttr(name, "dict"), nil
		}
		if v, ok := obj.AsDict().Get(name); ok {
			return v, nil
		}
	case obj.IsString():
		if m, ok := s.strMethod(obj.AsString(), name); ok {
			return m, nil
		}
		if strMethodNames[name] {
			return method("str."+name, func([]V, map[string]V) (V, error) {
				return vUndef, &Error{Kind: "TemplateRuntimeError", Msg: "str." + name + "() is not supported"}
			}), nil
		}
	case obj.IsList():
		if safeListMethods[name] {
			return listMethod(obj, name), nil
		}
		if unsafeListMethods[name] {
			return unsafeAttr(name, "list"), nil
		}
	}
	return vUndef, nil
}

func (s *state) getitem(obj, key V) (V, error) {
	if obj.IsUndefined() {
		return vUndef, &Error{Kind: "UndefinedError", Msg: fmt.Sprintf("undefined value has no item %s", pyRepr(key))}
	}
	switch {
	case obj.IsList():
		if i, ok := asInt(key); ok {
			items := obj.AsList().Items
			if i < 0 {
				i += int64(len(items))
			}
			if i >= 0 && i < int64(len(items)) {
				return items[i], nil
			}
			return vUndef, nil
		}
	case obj.IsString():
		if i, ok := asInt(key); ok {
			rs := []rune(obj.AsString())
			if i < 0 {
				i += int64(len(rs))
			}
			if i >= 0 && i < int64(len(rs)) {
				return vStr(string(rs[i])), nil
			}
			return vUndef, nil
		}
	case obj.IsDict():
		if key.IsString() {
			if v, ok := obj.AsDict().Get(key.AsString()); ok {
				return v, nil
			}
		}
	}
	if key.IsString() {
		return s.getattr(obj, key.AsString())
	}
	return vUndef, nil
}

func sliceIndex(v V, name string) (int64, bool, error) {
	if v.IsNone() || v.IsUndefined() {
		return 0, false, nil
	}
	i, ok := asInt(v)
	if !ok {
		return 0, false, typeErr("slice indices must be integers or None")
	}
	return i, true, nil
}

// pySliceIndices is Python's slice.indices.
func pySliceIndices(start, stop, step V, n int64) (int64, int64, int64, error) {
	st, hasStep, err := sliceIndex(step, "step")
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
		i, ok, err := sliceIndex(v, "")
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
	if obj.IsUndefined() {
		return vUndef, undefErr("slicing")
	}
	var n int64
	var runes []rune
	switch {
	case obj.IsList():
		n = int64(obj.AsList().Len())
	case obj.IsString():
		runes = []rune(obj.AsString())
		n = int64(len(runes))
	case obj.IsDict():
		return vUndef, typeErr("unhashable type: 'slice'")
	default:
		// jinja2 compiles slices to a plain Python subscript, which fails.
		return vUndef, typeErr("'%s' object is not subscriptable", pyType(obj))
	}
	a, b, st, err := pySliceIndices(start, stop, step, n)
	if err != nil {
		return vUndef, err
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
	if obj.IsList() {
		items := obj.AsList().Items
		out := make([]V, len(idx))
		for k, i := range idx {
			out[k] = items[i]
		}
		return vList(out), nil
	}
	out := make([]rune, len(idx))
	for k, i := range idx {
		out[k] = runes[i]
	}
	return vStr(string(out)), nil
}

// ---- arithmetic ----

func unary(op string, v V) (V, error) {
	if v.IsUndefined() {
		return vUndef, undefErr("unary " + op)
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
	if a.IsUndefined() || b.IsUndefined() {
		return vUndef, undefErr("'" + op + "'")
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
			return vStr(a.AsString() + b.AsString()), nil
		case a.IsList() && b.IsList():
			x, y := a.AsList().Items, b.AsList().Items
			out := make([]V, 0, len(x)+len(y))
			return vList(append(append(out, x...), y...)), nil
		case a.IsString():
			return vUndef, typeErr("can only concatenate str (not \"%s\") to str", pyType(b))
		case a.IsList():
			return vUndef, typeErr("can only concatenate list (not \"%s\") to list", pyType(b))
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
			return vStr(strings.Repeat(str.AsString(), int(n))), nil
		case a.IsList() && bInt, aInt && b.IsList():
			l, n := a, bi
			if aInt {
				l, n = b, ai
			}
			items := l.AsList().Items
			if n <= 0 {
				return vList(nil), nil
			}
			if n > s.maxLen()/64 || int64(len(items))*n > s.maxLen()/64 {
				return vUndef, limitErr("list repetition too large")
			}
			out := make([]V, 0, int64(len(items))*n)
			for i := int64(0); i < n; i++ {
				out = append(out, items...)
			}
			return vList(out), nil
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
			return vFloat(m), nil
		case a.IsString():
			return s.printf(a.AsString(), b)
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

// printf implements the common subset of Python's str % args.
func (s *state) printf(format string, args V) (V, error) {
	var list []V
	if s.isTuple(args) {
		list = args.AsList().Items
	} else {
		list = []V{args}
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		i++
		if i >= len(format) {
			return vUndef, &Error{Kind: "ValueError", Msg: "incomplete format"}
		}
		if format[i] == '%' {
			b.WriteByte('%')
			continue
		}
		if n >= len(list) {
			return vUndef, typeErr("not enough arguments for format string")
		}
		a := list[n]
		n++
		switch format[i] {
		case 's':
			b.WriteString(s.str(a))
		case 'r':
			b.WriteString(s.repr(a))
		case 'd', 'i':
			if !isNum(a) {
				return vUndef, typeErr("%%d format: a real number is required, not %s", pyType(a))
			}
			b.WriteString(strconv.FormatInt(int64(toF(a)), 10))
		default:
			return vUndef, &Error{Kind: "ValueError", Msg: fmt.Sprintf("unsupported format character '%c'", format[i])}
		}
	}
	if n < len(list) {
		return vUndef, typeErr("not all arguments converted during string formatting")
	}
	return vStr(b.String()), nil
}

// ---- methods ----

func method(name string, f fn) V { return jinja.NewCallable(name, f) }

func (s *state) dictMethod(obj V, name string) V {
	d := obj.AsDict()
	switch name {
	case "get":
		return method("dict.get", func(args []V, _ map[string]V) (V, error) {
			k := arg(args, 0)
			if k.IsString() {
				if v, ok := d.Get(k.AsString()); ok {
					return v, nil
				}
			}
			if len(args) > 1 {
				return args[1], nil
			}
			return vNone, nil
		})
	case "items":
		return method("dict.items", func([]V, map[string]V) (V, error) {
			out := make([]V, len(d.Keys))
			for i, k := range d.Keys {
				out[i] = s.tuple([]V{vStr(k), d.Data[k]})
			}
			return vList(out), nil
		})
	case "keys":
		return method("dict.keys", func([]V, map[string]V) (V, error) {
			out := make([]V, len(d.Keys))
			for i, k := range d.Keys {
				out[i] = vStr(k)
			}
			return vList(out), nil
		})
	case "values":
		return method("dict.values", func([]V, map[string]V) (V, error) {
			out := make([]V, len(d.Keys))
			for i, k := range d.Keys {
				out[i] = d.Data[k]
			}
			return vList(out), nil
		})
	}
	return method("dict.copy", func([]V, map[string]V) (V, error) {
		c := jinja.NewDict()
		for _, k := range d.Keys {
			c.AsDict().Set(k, d.Data[k])
		}
		return c, nil
	})
}

func listMethod(obj V, name string) V {
	items := obj.AsList().Items
	switch name {
	case "index":
		return method("list.index", func(args []V, _ map[string]V) (V, error) {
			for i, it := range items {
				if pyEq(it, arg(args, 0)) {
					return vInt(int64(i)), nil
				}
			}
			return vUndef, &Error{Kind: "ValueError", Msg: pyRepr(arg(args, 0)) + " is not in list"}
		})
	case "count":
		return method("list.count", func(args []V, _ map[string]V) (V, error) {
			n := 0
			for _, it := range items {
				if pyEq(it, arg(args, 0)) {
					n++
				}
			}
			return vInt(int64(n)), nil
		})
	}
	return method("list.copy", func([]V, map[string]V) (V, error) {
		return vList(append([]V(nil), items...)), nil
	})
}

func strArg(args []V, i int, name, method string) (string, bool, error) {
	v := arg(args, i)
	if v.IsUndefined() || v.IsNone() {
		return "", false, nil
	}
	if !v.IsString() {
		return "", false, typeErr("%s arg must be None or str", method)
	}
	return v.AsString(), true, nil
}

func pyStrip(s, chars string, haveChars bool, left, right bool) string {
	f := isPySpace
	if haveChars {
		f = func(r rune) bool { return strings.ContainsRune(chars, r) }
	}
	if left {
		s = strings.TrimLeftFunc(s, f)
	}
	if right {
		s = strings.TrimRightFunc(s, f)
	}
	return s
}

func pySplit(s, sep string, haveSep bool, maxsplit int64) []V {
	var parts []string
	if !haveSep {
		fields := strings.FieldsFunc(s, isPySpace)
		if maxsplit >= 0 && int64(len(fields)) > maxsplit+1 {
			// Re-split keeping the remainder intact.
			parts = nil
			rest := strings.TrimLeftFunc(s, isPySpace)
			for i := int64(0); i < maxsplit && rest != ""; i++ {
				j := strings.IndexFunc(rest, isPySpace)
				if j < 0 {
					break
				}
				parts = append(parts, rest[:j])
				rest = strings.TrimLeftFunc(rest[j:], isPySpace)
			}
			if rest != "" {
				parts = append(parts, rest)
			}
		} else {
			parts = fields
		}
	} else if maxsplit >= 0 {
		parts = strings.SplitN(s, sep, int(min(maxsplit, 1<<30))+1)
	} else {
		parts = strings.Split(s, sep)
	}
	out := make([]V, len(parts))
	for i, p := range parts {
		out[i] = vStr(p)
	}
	return out
}

func pyRsplit(s, sep string, maxsplit int64) []V {
	if maxsplit < 0 {
		return pySplit(s, sep, true, -1)
	}
	var parts []string
	for i := int64(0); i < maxsplit; i++ {
		j := strings.LastIndex(s, sep)
		if j < 0 {
			break
		}
		parts = append([]string{s[j+len(sep):]}, parts...)
		s = s[:j]
	}
	parts = append([]string{s}, parts...)
	out := make([]V, len(parts))
	for i, p := range parts {
		out[i] = vStr(p)
	}
	return out
}

// runeIndex converts a byte offset to a code-point offset.
func runeIndex(s string, byteOff int) int64 {
	if byteOff < 0 {
		return -1
	}
	return int64(utf8.RuneCountInString(s[:byteOff]))
}

func pyIsCase(s string, upper bool) bool {
	cased := false
	for _, r := range s {
		if unicode.IsUpper(r) || unicode.IsTitle(r) {
			if !upper {
				return false
			}
			cased = true
		} else if unicode.IsLower(r) {
			if upper {
				return false
			}
			cased = true
		}
	}
	return cased
}

func pyCapitalize(s string) string {
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToTitle(r)) + pyLower(s[n:])
}

func pySplitlines(s string, keepends bool) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch r {
		case '\n', '\r', '\v', '\f', 0x1c, 0x1d, 0x1e, 0x85, 0x2028, 0x2029:
			end := i + n
			if r == '\r' && end < len(s) && s[end] == '\n' {
				end++
			}
			if keepends {
				out = append(out, s[start:end])
			} else {
				out = append(out, s[start:i])
			}
			start = end
			i = end
			continue
		}
		i += n
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

func (st *state) strMethod(s, name string) (V, bool) {
	m := func(f fn) (V, bool) { return method("str."+name, f), true }
	switch name {
	case "strip", "lstrip", "rstrip":
		return m(func(args []V, _ map[string]V) (V, error) {
			chars, ok, err := strArg(args, 0, "chars", name)
			if err != nil {
				return vUndef, err
			}
			return vStr(pyStrip(s, chars, ok, name != "rstrip", name != "lstrip")), nil
		})
	case "split", "rsplit":
		return m(func(args []V, kw map[string]V) (V, error) {
			sepV := param(args, kw, 0, "sep", vNone)
			sep, ok, err := strArg([]V{sepV}, 0, "sep", name)
			if err != nil {
				return vUndef, err
			}
			if ok && sep == "" {
				return vUndef, &Error{Kind: "ValueError", Msg: "empty separator"}
			}
			maxsplit := int64(-1)
			if v := param(args, kw, 1, "maxsplit", vUndef); !v.IsUndefined() {
				maxsplit, _ = asInt(v)
			}
			if name == "rsplit" && ok {
				return vList(pyRsplit(s, sep, maxsplit)), nil
			}
			return vList(pySplit(s, sep, ok, maxsplit)), nil
		})
	case "splitlines":
		return m(func(args []V, kw map[string]V) (V, error) {
			var out []V
			for _, l := range pySplitlines(s, truthy(param(args, kw, 0, "keepends", vFalse))) {
				out = append(out, vStr(l))
			}
			return vList(out), nil
		})
	case "startswith", "endswith":
		return m(func(args []V, _ map[string]V) (V, error) {
			p := arg(args, 0)
			var cands []V
			switch {
			case p.IsString():
				cands = []V{p}
			case p.IsList():
				cands = p.AsList().Items
			default:
				return vUndef, typeErr("%s first arg must be str or a tuple of str, not %s", name, pyType(p))
			}
			for _, c := range cands {
				if !c.IsString() {
					return vUndef, typeErr("tuple for %s must only contain str", name)
				}
				if name == "startswith" && strings.HasPrefix(s, c.AsString()) || name == "endswith" && strings.HasSuffix(s, c.AsString()) {
					return vTrue, nil
				}
			}
			return vFalse, nil
		})
	case "upper":
		return m(func([]V, map[string]V) (V, error) { return vStr(pyUpper(s)), nil })
	case "lower":
		return m(func([]V, map[string]V) (V, error) { return vStr(pyLower(s)), nil })
	case "casefold":
		return m(func([]V, map[string]V) (V, error) { return vStr(pyLower(strings.ReplaceAll(s, "ß", "ss"))), nil })
	case "isascii":
		return m(func([]V, map[string]V) (V, error) { return vBool(isASCIIString(s)), nil })
	case "swapcase":
		return m(func([]V, map[string]V) (V, error) {
			return vStr(strings.Map(func(r rune) rune {
				if unicode.IsUpper(r) {
					return unicode.ToLower(r)
				}
				return unicode.ToUpper(r)
			}, s)), nil
		})
	case "title":
		return m(func([]V, map[string]V) (V, error) {
			var b strings.Builder
			prevCased := false
			for _, r := range s {
				if prevCased {
					b.WriteRune(unicode.ToLower(r))
				} else {
					b.WriteRune(unicode.ToTitle(r))
				}
				prevCased = unicode.IsLetter(r)
			}
			return vStr(b.String()), nil
		})
	case "capitalize":
		return m(func([]V, map[string]V) (V, error) { return vStr(pyCapitalize(s)), nil })
	case "replace":
		return m(func(args []V, kw map[string]V) (V, error) {
			old, new := arg(args, 0), arg(args, 1)
			if !old.IsString() || !new.IsString() {
				return vUndef, typeErr("replace() arguments must be str")
			}
			n := int64(-1)
			if v := param(args, kw, 2, "count", vUndef); !v.IsUndefined() {
				n, _ = asInt(v)
			}
			r, err := st.replace(s, old.AsString(), new.AsString(), int(max(n, -1)))
			return vStr(r), err
		})
	case "find", "rfind", "index", "rindex", "count":
		return m(func(args []V, _ map[string]V) (V, error) {
			sub := arg(args, 0)
			if !sub.IsString() {
				return vUndef, typeErr("must be str, not %s", pyType(sub))
			}
			var i int
			switch name {
			case "count":
				if sub.AsString() == "" {
					return vInt(int64(utf8.RuneCountInString(s) + 1)), nil
				}
				return vInt(int64(strings.Count(s, sub.AsString()))), nil
			case "find", "index":
				i = strings.Index(s, sub.AsString())
			default:
				i = strings.LastIndex(s, sub.AsString())
			}
			if i < 0 && (name == "index" || name == "rindex") {
				return vUndef, &Error{Kind: "ValueError", Msg: "substring not found"}
			}
			return vInt(runeIndex(s, i)), nil
		})
	case "join":
		return m(func(args []V, _ map[string]V) (V, error) {
			items, err := iterate(arg(args, 0))
			if err != nil {
				return vUndef, typeErr("can only join an iterable")
			}
			parts := make([]string, len(items))
			for i, it := range items {
				if !it.IsString() {
					return vUndef, typeErr("sequence item %d: expected str instance, %s found", i, pyType(it))
				}
				parts[i] = it.AsString()
			}
			return vStr(strings.Join(parts, s)), nil
		})
	case "format":
		return m(func(args []V, kw map[string]V) (V, error) { return st.strFormat(s, args, kw) })
	case "isdigit", "isnumeric", "isdecimal", "isalpha", "isalnum", "isspace":
		return m(func([]V, map[string]V) (V, error) {
			if s == "" {
				return vFalse, nil
			}
			for _, r := range s {
				ok := false
				switch name {
				case "isdigit", "isnumeric", "isdecimal":
					ok = unicode.IsDigit(r)
				case "isalpha":
					ok = unicode.IsLetter(r)
				case "isalnum":
					ok = unicode.IsLetter(r) || unicode.IsDigit(r)
				case "isspace":
					ok = isPySpace(r)
				}
				if !ok {
					return vFalse, nil
				}
			}
			return vTrue, nil
		})
	case "islower", "isupper":
		return m(func([]V, map[string]V) (V, error) { return vBool(pyIsCase(s, name == "isupper")), nil })
	case "removeprefix", "removesuffix":
		return m(func(args []V, _ map[string]V) (V, error) {
			a := pyStr(arg(args, 0))
			if name == "removeprefix" {
				return vStr(strings.TrimPrefix(s, a)), nil
			}
			return vStr(strings.TrimSuffix(s, a)), nil
		})
	case "partition", "rpartition":
		return m(func(args []V, _ map[string]V) (V, error) {
			sep := pyStr(arg(args, 0))
			if sep == "" {
				return vUndef, &Error{Kind: "ValueError", Msg: "empty separator"}
			}
			var i int
			if name == "partition" {
				i = strings.Index(s, sep)
			} else {
				i = strings.LastIndex(s, sep)
			}
			if i < 0 {
				if name == "partition" {
					return st.tuple([]V{vStr(s), vEmpty, vEmpty}), nil
				}
				return st.tuple([]V{vEmpty, vEmpty, vStr(s)}), nil
			}
			return st.tuple([]V{vStr(s[:i]), vStr(sep), vStr(s[i+len(sep):])}), nil
		})
	case "zfill", "ljust", "rjust", "center":
		return m(func(args []V, _ map[string]V) (V, error) {
			w, _ := asInt(arg(args, 0))
			fill := " "
			if f := arg(args, 1); f.IsString() {
				fill = f.AsString()
			}
			return vStr(pad(s, w, fill, name)), nil
		})
	}
	return vUndef, false
}

func pad(s string, width int64, fill, how string) string {
	n := int64(utf8.RuneCountInString(s))
	if width <= n || width > 1<<20 {
		return s
	}
	d := int(width - n)
	switch how {
	case "zfill":
		sign := ""
		if s != "" && (s[0] == '-' || s[0] == '+') {
			sign, s = s[:1], s[1:]
		}
		return sign + strings.Repeat("0", d) + s
	case "ljust":
		return s + strings.Repeat(fill, d)
	case "rjust":
		return strings.Repeat(fill, d) + s
	}
	left := d / 2
	if d%2 == 1 && n%2 == 1 {
		left++
	}
	return strings.Repeat(fill, left) + s + strings.Repeat(fill, d-left)
}

// strFormat implements str.format for {}, {0} and {name} fields.
func (st *state) strFormat(s string, args []V, kw map[string]V) (V, error) {
	var b strings.Builder
	auto := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '{' {
			if i+1 < len(s) && s[i+1] == '{' {
				b.WriteByte('{')
				i++
				continue
			}
			j := strings.IndexByte(s[i:], '}')
			if j < 0 {
				return vUndef, &Error{Kind: "ValueError", Msg: "Single '{' encountered in format string"}
			}
			field := s[i+1 : i+j]
			i += j
			if strings.ContainsAny(field, ":!.[") {
				return vUndef, &Error{Kind: "ValueError", Msg: "unsupported format field {" + field + "}"}
			}
			var v V
			switch {
			case field == "":
				v = arg(args, auto)
				if auto >= len(args) {
					return vUndef, &Error{Kind: "IndexError", Msg: "Replacement index out of range"}
				}
				auto++
			case field[0] >= '0' && field[0] <= '9':
				n, _ := strconv.Atoi(field)
				if n >= len(args) {
					return vUndef, &Error{Kind: "IndexError", Msg: "Replacement index out of range"}
				}
				v = args[n]
			default:
				var ok bool
				if v, ok = kw[field]; !ok {
					return vUndef, &Error{Kind: "KeyError", Msg: pyStrRepr(field)}
				}
			}
			b.WriteString(st.str(v))
			continue
		}
		if c == '}' {
			if i+1 < len(s) && s[i+1] == '}' {
				i++
			}
			b.WriteByte('}')
			continue
		}
		b.WriteByte(c)
	}
	return vStr(b.String()), nil
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
		return v.IsDict() && !s.isNamespace(v), nil
	case "sequence":
		return v.IsString() || v.IsList() || (v.IsDict() && !s.isNamespace(v)) || v.IsUndefined(), nil
	case "iterable":
		return v.IsString() || v.IsList() || (v.IsDict() && !s.isNamespace(v)) || v.IsUndefined(), nil
	case "callable":
		return v.IsCallable(), nil
	case "escaped":
		return false, nil
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
		zero := pyEq(r, vInt(0))
		if name == "odd" {
			return !zero, nil
		}
		return zero, nil
	case "sameas":
		o := arg(args, 0)
		switch {
		case v.IsNone() || v.IsBool() || v.IsUndefined():
			return v.Equals(o), nil
		case v.IsInt() && o.IsInt():
			return v.AsInt() == o.AsInt() && v.AsInt() >= -5 && v.AsInt() <= 256, nil
		}
		return false, nil
	case "in":
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
	case "filter":
		return filterNames[pyStr(v)], nil
	case "test":
		return testNames[pyStr(v)], nil
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
