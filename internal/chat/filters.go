package chat

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Filters with jinja2 3.1 semantics, plus Hugging Face's tojson.

var filterNames = map[string]bool{}

func init() {
	for _, n := range strings.Fields(`abs attr batch capitalize center count d default dictsort e escape
		first float format indent int items join last length list lower map max min reject rejectattr
		replace reverse round safe select selectattr sort string sum title tojson trim unique upper wordcount`) {
		filterNames[n] = true
	}
}

var testNames = map[string]bool{}

func init() {
	for _, n := range strings.Fields(`defined undefined none boolean true false integer float number string
		mapping sequence iterable callable escaped lower upper odd even divisibleby sameas in eq equalto ==
		ne != lt lessthan < le <= gt greaterthan > ge >= filter test`) {
		testNames[n] = true
	}
}

func noFilter(name string) error {
	return &Error{Kind: "TemplateRuntimeError", Msg: fmt.Sprintf("no filter named '%s'", name)}
}

// seq turns an iterable into its items (lists, strings, dict keys,
// Undefined as empty).
func seq(v V, filter string) ([]V, error) {
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	return items, nil
}

// attrGetter implements jinja2's make_attrgetter (dotted paths, integer
// parts as indexes).
func (s *state) attrGetter(attr V) func(V) (V, error) {
	if !attr.IsString() {
		return func(v V) (V, error) { return s.getitem(v, attr) }
	}
	parts := strings.Split(attr.AsString(), ".")
	return func(v V) (V, error) {
		var err error
		for _, p := range parts {
			var key V = vStr(p)
			if n, e := strconv.ParseInt(p, 10, 64); e == nil {
				key = vInt(n)
			}
			if v, err = s.getitem(v, key); err != nil {
				return vUndef, err
			}
		}
		return v, nil
	}
}

func lowerKey(v V, caseSensitive bool) V {
	if !caseSensitive && v.IsString() {
		return vStr(pyLower(v.AsString()))
	}
	return v
}

func (s *state) filter(name string, v V, args []V, kw []kwarg) (V, error) {
	if err := s.spend(cost(v)); err != nil {
		return vUndef, err
	}
	switch name {
	case "tojson":
		o := jsonOpts{itemSep: ", ", keySep: ": ", max: s.maxLen()}
		o.ensureASCII = truthy(param(args, kw, 0, "ensure_ascii", vFalse))
		if ind := param(args, kw, 1, "indent", vNone); !ind.IsNone() && !ind.IsUndefined() {
			var in string
			if ind.IsString() {
				in = ind.AsString()
			} else if n, ok := asInt(ind); ok {
				in = strings.Repeat(" ", int(max(0, min(n, 64))))
			} else {
				return vUndef, typeErr("indent must be an int or str")
			}
			o.indent = &in
			o.itemSep = ","
		}
		if sep := param(args, kw, 2, "separators", vNone); !sep.IsNone() && !sep.IsUndefined() {
			if !sep.IsList() || sep.AsList().Len() != 2 || !sep.AsList().Items[0].IsString() || !sep.AsList().Items[1].IsString() {
				return vUndef, &Error{Kind: "ValueError", Msg: "separators must be a pair of strings"}
			}
			o.itemSep, o.keySep = sep.AsList().Items[0].AsString(), sep.AsList().Items[1].AsString()
		}
		o.sortKeys = truthy(param(args, kw, 3, "sort_keys", vFalse))
		out, err := pyJSON(v, o)
		return vStr(out), err

	case "string", "safe":
		if v.isMarkup() {
			return v, nil
		}
		if name == "safe" {
			return vMarkup(s.str(v)), nil
		}
		return vStr(s.str(v)), nil
	case "e", "escape":
		return escapeV(v), nil
	case "trim":
		chars, ok, err := strArg(args, 0, "chars", "strip")
		if c, has := kwGet(kw, "chars"); has && c.IsString() {
			chars, ok = c.AsString(), true
		}
		if err != nil {
			return vUndef, err
		}
		if ok && v.isMarkup() { // Markup.strip escapes its argument
			chars = htmlEscaper.Replace(chars)
		}
		return likeStr(v, pyStrip(s.str(v), chars, ok, true, true)), nil
	case "upper":
		return likeStr(v, pyUpper(s.str(v))), nil
	case "lower":
		return likeStr(v, pyLower(s.str(v))), nil
	case "capitalize":
		return likeStr(v, pyCapitalize(s.str(v))), nil
	case "title":
		return vStr(titleRE.ReplaceAllStringFunc(pyStr(v), func(w string) string {
			r, n := utf8.DecodeRuneInString(w)
			return pyUpper(string(r)) + pyLower(w[n:])
		})), nil
	case "center":
		w, _ := asInt(param(args, kw, 0, "width", vInt(80)))
		return likeStr(v, pad(s.str(v), w, " ", "center")), nil
	case "replace":
		str := pyStr(v)
		old, new := pyStr(arg(args, 0)), pyStr(arg(args, 1))
		n := int64(-1)
		if c := param(args, kw, 2, "count", vNone); !c.IsNone() && !c.IsUndefined() {
			n, _ = asInt(c)
		}
		r, err := s.replace(str, old, new, int(max(n, -1)))
		return vStr(r), err
	case "wordcount":
		return vInt(int64(len(wordRE.FindAllString(pyStr(v), -1)))), nil
	case "indent":
		if v.k != kStr {
			// jinja2 appends "\n" to the value itself
			return vUndef, typeErr("unsupported operand type(s) for +=: '%s' and 'str'", pyType(v))
		}
		width := param(args, kw, 0, "width", vInt(4))
		if v.isMarkup() && width.k == kStr { // joined by a Markup newline: escaped
			width = vStr(htmlEscaper.Replace(width.s))
		}
		r := indent(v.s, width, truthy(param(args, kw, 1, "first", vFalse)), truthy(param(args, kw, 2, "blank", vFalse)))
		return likeStr(v, r.s), nil
	case "format":
		if len(kw) > 0 {
			if len(args) > 0 {
				return vUndef, &Error{Kind: "FilterArgumentError", Msg: "can't handle positional and keyword arguments at the same time"}
			}
			d := newDict(len(kw))
			for _, a := range kw {
				d.Set(a.name, a.v)
			}
			return s.printf(likeStr(v, s.str(v)), vDict(d))
		}
		return s.printf(likeStr(v, s.str(v)), vTuple(args))

	case "length", "count":
		switch v.k {
		case kStr:
			return vInt(int64(utf8.RuneCountInString(v.s))), nil
		case kList, kTuple, kRange, kView:
			return vInt(int64(len(v.items()))), nil
		case kDict:
			return vInt(int64(v.AsDict().Len())), nil
		case kLoop:
			return vInt(int64(len(v.asLoop().items))), nil
		case kUndef:
			return vInt(0), nil
		}
		return vUndef, typeErr("object of type '%s' has no len()", pyType(v))
	case "first":
		// next(iter(seq)): takes one item of an iterator
		x, ok, err := iterOf(v)()
		if err != nil || !ok {
			return undefined("No first item, sequence was empty."), err
		}
		return x, nil
	case "last":
		// next(iter(reversed(seq))): iterators are not reversible
		if v.k == kIter {
			return vUndef, typeErr("'%s' object is not reversible", pyType(v))
		}
		items, err := seq(v, name)
		if err != nil {
			return vUndef, err
		}
		if len(items) == 0 {
			return undefined("No last item, sequence was empty."), nil
		}
		return items[len(items)-1], nil
	case "list":
		items, err := seq(v, name)
		return vList(append([]V(nil), items...)), err
	case "reverse":
		switch v.k {
		case kStr:
			rs := []rune(v.s)
			for i, j := 0, len(rs)-1; i < j; i, j = i+1, j-1 {
				rs[i], rs[j] = rs[j], rs[i]
			}
			return likeStr(v, string(rs)), nil
		case kList, kTuple, kRange, kView, kDict, kUndef:
			// reversed(value): an iterator
			items, err := iterate(v)
			if err != nil {
				return vUndef, err
			}
			i := len(items)
			return newIter(reverseIterName(v), func() (V, bool, error) {
				if i == 0 {
					return vUndef, false, nil
				}
				i--
				return items[i], true, nil
			}), nil
		}
		// not reversible: list(value), reversed
		items, err := iterate(v)
		if err != nil {
			return vUndef, &Error{Kind: "FilterArgumentError", Msg: "argument must be iterable"}
		}
		out := make([]V, len(items))
		for i, it := range items {
			out[len(items)-1-i] = it
		}
		return vList(out), nil
	case "join":
		items, err := seq(v, name)
		if err != nil {
			return vUndef, err
		}
		sep := pyStr(param(args, kw, 0, "d", vEmpty))
		if a := param(args, kw, 1, "attribute", vNone); !a.IsNone() {
			get := s.attrGetter(a)
			for i := range items {
				if items[i], err = get(items[i]); err != nil {
					return vUndef, err
				}
			}
		}
		parts := make([]string, len(items))
		n := 0
		for i, it := range items {
			parts[i] = s.str(it)
			n += len(parts[i]) + len(sep)
			if err := s.checkSize(n); err != nil {
				return vUndef, err
			}
		}
		return vStr(strings.Join(parts, sep)), nil
	case "default", "d":
		def := param(args, kw, 0, "default_value", vEmpty)
		if v.IsUndefined() || (truthy(param(args, kw, 1, "boolean", vFalse)) && !truthy(v)) {
			return def, nil
		}
		return v, nil
	case "items":
		// a generator: the type check happens when it is consumed
		var pairs []V
		started := false
		return newIter("generator object do_items", func() (V, bool, error) {
			if !started {
				started = true
				switch v.k {
				case kUndef:
				case kDict:
					for _, e := range v.AsDict().ents {
						pairs = append(pairs, vTuple([]V{e.k, e.v}))
					}
				default:
					return vUndef, false, typeErr("Can only get item pairs from a mapping.")
				}
			}
			if len(pairs) == 0 {
				return vUndef, false, nil
			}
			x := pairs[0]
			pairs = pairs[1:]
			return x, true, nil
		}), nil
	case "dictsort":
		if !v.IsDict() {
			return vUndef, &Error{Kind: "FilterArgumentError", Msg: "dictsort needs a mapping"}
		}
		cs := truthy(param(args, kw, 0, "case_sensitive", vFalse))
		byValue := pyStr(param(args, kw, 1, "by", vStr("key"))) == "value"
		rev := truthy(param(args, kw, 2, "reverse", vFalse))
		d := v.AsDict()
		out := make([]V, d.Len())
		for i, e := range d.ents {
			out[i] = vTuple([]V{e.k, e.v})
		}
		pos := 0
		if byValue {
			pos = 1
		}
		return s.sortValues(out, rev, func(x V) (V, error) { return lowerKey(x.AsList().Items[pos], cs), nil })
	case "sort":
		items, err := seq(v, name)
		if err != nil {
			return vUndef, err
		}
		rev := truthy(param(args, kw, 0, "reverse", vFalse))
		cs := truthy(param(args, kw, 1, "case_sensitive", vFalse))
		key := func(x V) (V, error) { return lowerKey(x, cs), nil }
		if a := param(args, kw, 2, "attribute", vNone); !a.IsNone() {
			get := s.attrGetter(a)
			key = func(x V) (V, error) {
				y, err := get(x)
				return lowerKey(y, cs), err
			}
		}
		return s.sortValues(append([]V(nil), items...), rev, key)
	case "unique":
		cs := truthy(param(args, kw, 0, "case_sensitive", vFalse))
		var get func(V) (V, error)
		if a := param(args, kw, 1, "attribute", vNone); !a.IsNone() {
			get = s.attrGetter(a)
		}
		src := iterOf(v)
		var seen []V
		return newIter("generator object do_unique", func() (V, bool, error) {
			for {
				it, ok, err := src()
				if err != nil || !ok {
					return it, ok, err
				}
				k := it
				if get != nil {
					if k, err = get(it); err != nil {
						return vUndef, false, err
					}
				}
				k = lowerKey(k, cs)
				if err := hashable(k); err != nil {
					return vUndef, false, err
				}
				if err := s.spend(len(seen)); err != nil {
					return vUndef, false, err
				}
				dup := false
				for _, sv := range seen {
					if pyEq(sv, k) {
						dup = true
						break
					}
				}
				if !dup {
					seen = append(seen, k)
					return it, true, nil
				}
			}
		}), nil
	case "min", "max":
		items, err := seq(v, name)
		if err != nil {
			return vUndef, err
		}
		if len(items) == 0 {
			return vUndef, nil
		}
		cs := truthy(param(args, kw, 0, "case_sensitive", vFalse))
		get := func(x V) (V, error) { return x, nil }
		if a := param(args, kw, 1, "attribute", vNone); !a.IsNone() {
			get = s.attrGetter(a)
		}
		best := items[0]
		bk, err := get(best)
		if err != nil {
			return vUndef, err
		}
		bk = lowerKey(bk, cs)
		for _, it := range items[1:] {
			k, err := get(it)
			if err != nil {
				return vUndef, err
			}
			k = lowerKey(k, cs)
			c, err := pyCompare(k, bk, "<")
			if err != nil {
				return vUndef, err
			}
			if (name == "min" && c < 0) || (name == "max" && c > 0 && c != 2) {
				best, bk = it, k
			}
		}
		return best, nil
	case "sum":
		items, err := seq(v, name)
		if err != nil {
			return vUndef, err
		}
		total := param(args, kw, 1, "start", vInt(0))
		if a := param(args, kw, 0, "attribute", vNone); !a.IsNone() {
			get := s.attrGetter(a)
			for i := range items {
				if items[i], err = get(items[i]); err != nil {
					return vUndef, err
				}
			}
		}
		for _, it := range items {
			if total, err = s.binop("+", total, it); err != nil {
				return vUndef, err
			}
		}
		return total, nil
	case "batch":
		lc := param(args, kw, 0, "linecount", vUndef)
		n, isInt := asInt(lc)
		if !isInt {
			n = -1 // Python compares len(tmp) == linecount: never true
		}
		fill := param(args, kw, 1, "fill_with", vNone)
		if !fill.IsNone() && isInt && n > 0 {
			if err := s.checkSize(int(min(n, s.maxLen()) * 16)); err != nil {
				return vUndef, err
			}
		}
		src := iterOf(v)
		var tmp []V
		done := false
		return newIter("generator object do_batch", func() (V, bool, error) {
			// for item in value: if len(tmp) == linecount: yield tmp; tmp = []
			//                    tmp.append(item)
			for !done {
				if err := s.spend(1); err != nil {
					return vUndef, false, err
				}
				x, ok, err := src()
				if err != nil {
					return vUndef, false, err
				}
				if !ok {
					done = true
					break
				}
				if int64(len(tmp)) == n {
					out := tmp
					tmp = []V{x}
					return vList(out), true, nil
				}
				tmp = append(tmp, x)
			}
			if len(tmp) == 0 {
				return vUndef, false, nil
			}
			out := tmp
			tmp = nil
			if !fill.IsNone() {
				if !isInt {
					return vUndef, false, typeErr("'<' not supported between instances of 'int' and '%s'", pyType(lc))
				}
				for int64(len(out)) < n {
					out = append(out, fill)
				}
			}
			return vList(out), true, nil
		}), nil
	case "map":
		// a generator: nothing happens (not even argument checks) until
		// it is consumed, and a false value gives nothing
		src := iterOf(v)
		empty := !truthy(v)
		var fn func(V) (V, error)
		return newIter("generator object sync_do_map", func() (V, bool, error) {
			if empty {
				return vUndef, false, nil
			}
			if fn == nil {
				var err error
				if fn, err = s.mapFunc(args, kw); err != nil {
					return vUndef, false, err
				}
			}
			if err := s.spend(1); err != nil {
				return vUndef, false, err
			}
			x, ok, err := src()
			if err != nil || !ok {
				return x, ok, err
			}
			y, err := fn(x)
			return y, err == nil, err
		}), nil
	case "select", "reject", "selectattr", "rejectattr":
		src := iterOf(v)
		empty := !truthy(v)
		want := strings.HasPrefix(name, "select")
		var get func(V) (V, error)
		var check func(V) (bool, error)
		return newIter("generator object select_or_reject", func() (V, bool, error) {
			if empty {
				return vUndef, false, nil
			}
			if check == nil {
				var err error
				if get, check, err = s.selectFuncs(name, args); err != nil {
					return vUndef, false, err
				}
			}
			for {
				if err := s.spend(1); err != nil {
					return vUndef, false, err
				}
				it, ok, err := src()
				if err != nil || !ok {
					return it, ok, err
				}
				x, err := get(it)
				if err != nil {
					return vUndef, false, err
				}
				keep, err := check(x)
				if err != nil {
					return vUndef, false, err
				}
				if keep == want {
					return it, true, nil
				}
			}
		}), nil
	case "attr":
		// Python's getattr only: no fallback to item lookup.
		name := pyStr(arg(args, 0))
		switch v.k {
		case kDict, kStr, kList, kTuple, kNS, kLoop:
			if v.k == kDict && !safeDictMethods[name] && !unsafeDictMethods[name] {
				return noAttr(v, name), nil
			}
			return s.getattr(v, name)
		case kUndef:
			return vUndef, undefErrOf(v)
		}
		return noAttr(v, name), nil

	case "int", "float":
		if v.k == kUndef { // Undefined.__int__ and __float__ raise
			return vUndef, undefErrOf(v)
		}
		if name == "float" {
			def := param(args, kw, 0, "default", vFloat(0))
			switch {
			case v.IsFloat():
				return v, nil
			case isNum(v):
				return vFloat(toF(v)), nil
			case v.IsString():
				if f, ok := parsePyFloat(v.AsString()); ok {
					return vFloat(f), nil
				}
			}
			return def, nil
		}
		def := param(args, kw, 0, "default", vInt(0))
		base, _ := asInt(param(args, kw, 1, "base", vInt(10)))
		return toInt(v, def, int(base)), nil
	case "abs":
		if i, ok := asInt(v); ok {
			if i < 0 {
				i = -i
			}
			return vInt(i), nil
		}
		if v.IsFloat() {
			return vFloat(math.Abs(v.AsFloat())), nil
		}
		return vUndef, typeErr("bad operand type for abs(): '%s'", pyType(v))
	case "round":
		prec, _ := asInt(param(args, kw, 0, "precision", vInt(0)))
		meth := pyStr(param(args, kw, 1, "method", vStr("common")))
		if !isNum(v) {
			return vUndef, typeErr("type %s doesn't define __round__ method", pyType(v))
		}
		if meth == "common" {
			if i, ok := asInt(v); ok && prec >= 0 {
				return vInt(i), nil
			}
			f := toF(v)
			if prec < 0 || prec > 300 || math.IsInf(f, 0) || math.IsNaN(f) {
				p := math.Pow(10, float64(prec))
				return vFloat(math.RoundToEven(f*p) / p), nil
			}
			r, _ := strconv.ParseFloat(strconv.FormatFloat(f, 'f', int(prec), 64), 64)
			return vFloat(r), nil
		}
		p := math.Pow(10, float64(prec))
		switch meth {
		case "ceil":
			return vFloat(math.Ceil(toF(v)*p) / p), nil
		case "floor":
			return vFloat(math.Floor(toF(v)*p) / p), nil
		}
		return vUndef, &Error{Kind: "FilterArgumentError", Msg: "method must be common, ceil or floor"}
	}
	return vUndef, noFilter(name)
}

var (
	titleRE = regexp.MustCompile(`[^-\s({\[<]+`)
	wordRE  = regexp.MustCompile(`[\p{L}\p{N}_]+`)
)

func indent(s string, width V, first, blank bool) V {
	ind := ""
	if width.IsString() {
		ind = width.AsString()
	} else if n, ok := asInt(width); ok {
		ind = strings.Repeat(" ", int(max(0, min(n, 256))))
	}
	s += "\n"
	lines := pySplitlines(s, false)
	var rv string
	if blank {
		rv = strings.Join(lines, "\n"+ind)
	} else {
		rv = lines[0]
		if len(lines) > 1 {
			rest := make([]string, len(lines)-1)
			for i, l := range lines[1:] {
				if l != "" {
					l = ind + l
				}
				rest[i] = l
			}
			rv += "\n" + strings.Join(rest, "\n")
		}
	}
	if first {
		rv = ind + rv
	}
	return vStr(rv)
}

func parsePyFloat(s string) (float64, bool) {
	t := strings.TrimFunc(s, isPySpace)
	t = strings.ReplaceAll(t, "_", "")
	switch strings.ToLower(strings.TrimLeft(t, "+-")) {
	case "inf", "infinity", "nan":
		f, err := strconv.ParseFloat(t, 64)
		return f, err == nil
	}
	if strings.ContainsAny(strings.ToLower(t), "xp") {
		return 0, false
	}
	f, err := strconv.ParseFloat(t, 64)
	return f, err == nil || math.IsInf(f, 0)
}

func toInt(v V, def V, base int) V {
	switch {
	case v.IsInt():
		return v
	case v.IsBool():
		i, _ := asInt(v)
		return vInt(i)
	case v.IsFloat():
		f := v.AsFloat()
		if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 9e18 {
			return def
		}
		return vInt(int64(f))
	case v.IsString():
		t := strings.ReplaceAll(strings.TrimFunc(v.AsString(), isPySpace), "_", "")
		if base == 10 || base == 0 {
			if i, err := strconv.ParseInt(t, 10, 64); err == nil {
				return vInt(i)
			}
		} else if i, err := strconv.ParseInt(t, base, 64); err == nil {
			return vInt(i)
		}
		if f, ok := parsePyFloat(t); ok && !math.IsNaN(f) && !math.IsInf(f, 0) && math.Abs(f) < 9e18 {
			return vInt(int64(f))
		}
	}
	return def
}

func (s *state) sortValues(items []V, reverse bool, key func(V) (V, error)) (V, error) {
	keys := make([]V, len(items))
	for i, it := range items {
		k, err := key(it)
		if err != nil {
			return vUndef, err
		}
		keys[i] = k
	}
	idx := make([]int, len(items))
	for i := range idx {
		idx[i] = i
	}
	var sortErr error
	sort.SliceStable(idx, func(a, b int) bool {
		if sortErr == nil {
			sortErr = s.spend(1)
		}
		if sortErr != nil {
			return false
		}
		x, y := keys[idx[a]], keys[idx[b]]
		if reverse {
			x, y = y, x
		}
		c, err := pyCompare(x, y, "<")
		if err != nil && sortErr == nil {
			sortErr = err
		}
		return c < 0
	})
	if sortErr != nil {
		return vUndef, sortErr
	}
	out := make([]V, len(items))
	for i, j := range idx {
		out[i] = items[j]
	}
	return vList(out), nil
}

// mapFunc is the function the map filter applies to each item.
func (s *state) mapFunc(args []V, kw []kwarg) (func(V) (V, error), error) {
	if a, ok := kwGet(kw, "attribute"); ok && len(args) == 0 {
		for _, k := range kw {
			if k.name != "attribute" && k.name != "default" {
				return nil, &Error{Kind: "FilterArgumentError", Msg: "Unexpected keyword argument " + pyStrRepr(k.name)}
			}
		}
		get := s.attrGetter(a)
		def, _ := kwGet(kw, "default")
		return func(x V) (V, error) {
			y, err := get(x)
			if err == nil && y.k == kUndef && def.k != kUndef && def.k != kNone {
				y = def
			}
			return y, err
		}, nil
	}
	if len(args) == 0 {
		return nil, &Error{Kind: "FilterArgumentError", Msg: "map requires a filter argument"}
	}
	fname := pyStr(args[0])
	if !filterNames[fname] {
		return nil, noFilter(fname)
	}
	rest := args[1:]
	return func(x V) (V, error) { return s.filter(fname, x, rest, kw) }, nil
}

// selectFuncs returns what the select family looks at in an item and the
// test it applies.
func (s *state) selectFuncs(name string, args []V) (func(V) (V, error), func(V) (bool, error), error) {
	get := func(x V) (V, error) { return x, nil }
	rest := args
	if strings.HasSuffix(name, "attr") {
		if len(rest) == 0 {
			return nil, nil, &Error{Kind: "FilterArgumentError", Msg: "Missing parameter for attribute name"}
		}
		get = s.attrGetter(rest[0])
		rest = rest[1:]
	}
	check := func(x V) (bool, error) { return truthy(x), nil }
	if len(rest) > 0 {
		tname := pyStr(rest[0])
		if !testNames[tname] {
			return nil, nil, &Error{Kind: "TemplateRuntimeError", Msg: fmt.Sprintf("no test named '%s'", tname)}
		}
		targs := rest[1:]
		check = func(x V) (bool, error) { return s.test(tname, x, targs) }
	}
	return get, check, nil
}

// reverseIterName is the type of reversed(v).
func reverseIterName(v V) string {
	switch v.k {
	case kList:
		return "list_reverseiterator"
	case kRange:
		return "range_iterator"
	case kDict, kView:
		if v.k == kView && v.n == viewValues {
			return "dict_reversevalueiterator"
		}
		if v.k == kView && v.n == viewItems {
			return "dict_reverseitemiterator"
		}
		return "dict_reversekeyiterator"
	}
	return "reversed"
}
