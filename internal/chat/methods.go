package chat

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Methods of Python's str, dict and list that templates call.
// dictMethod calls dict method name of d; ok is false if there is none.
func dictMethod(d *Dict, name string, args []V) (v V, ok bool, err error) {
	switch name {
	case "get":
		if len(args) < 1 || len(args) > 2 {
			return vUndef, true, typeErr("get expected 1 or 2 arguments, got %d", len(args))
		}
		if err := hashable(args[0]); err != nil {
			return vUndef, true, err
		}
		if v, ok := d.GetV(args[0]); ok {
			return v, true, nil
		}
		if len(args) > 1 {
			return args[1], true, nil
		}
		return vNone, true, nil
	case "items":
		out := make([]V, d.Len())
		for i, e := range d.ents {
			out[i] = vTuple([]V{e.k, e.v})
		}
		return V{k: kView, n: viewItems, p: &List{Items: out}}, true, nil
	case "keys":
		return V{k: kView, n: viewKeys, p: &List{Items: d.keys()}}, true, nil
	case "values":
		out := make([]V, d.Len())
		for i, e := range d.ents {
			out[i] = e.v
		}
		return V{k: kView, n: viewValues, p: &List{Items: out}}, true, nil
	case "copy":
		c := &Dict{ents: append([]dictEntry(nil), d.ents...)}
		if d.idx != nil {
			c.idx = make(map[string]int32, len(d.idx))
			for k, i := range d.idx {
				c.idx[k] = i
			}
		}
		return vDict(c), true, nil
	}
	return vUndef, false, nil
}

// listMethod calls list (or tuple) method name of obj.
func listMethod(obj V, name string, args []V) (v V, ok bool, err error) {
	items := obj.items()
	switch name {
	case "index":
		for i, it := range items {
			if pyEq(it, arg(args, 0)) {
				return vInt(int64(i)), true, nil
			}
		}
		return vUndef, true, &Error{Kind: "ValueError", Msg: pyRepr(arg(args, 0)) + " is not in list"}
	case "count":
		n := 0
		for _, it := range items {
			if pyEq(it, arg(args, 0)) {
				n++
			}
		}
		return vInt(int64(n)), true, nil
	case "copy":
		if obj.k == kList {
			return vList(append([]V(nil), items...)), true, nil
		}
	}
	return vUndef, false, nil
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

func pyRsplit(s, sep string, haveSep bool, maxsplit int64) []V {
	if maxsplit < 0 {
		return pySplit(s, sep, haveSep, -1)
	}
	if !haveSep {
		var parts []string
		rest := strings.TrimRightFunc(s, isPySpace)
		for i := int64(0); i < maxsplit && rest != ""; i++ {
			j := strings.LastIndexFunc(rest, isPySpace)
			if j < 0 {
				break
			}
			_, n := utf8.DecodeRuneInString(rest[j:])
			parts = append([]string{rest[j+n:]}, parts...)
			rest = strings.TrimRightFunc(rest[:j], isPySpace)
		}
		if rest != "" {
			parts = append([]string{rest}, parts...)
		}
		out := make([]V, len(parts))
		for i, p := range parts {
			out[i] = vStr(p)
		}
		return out
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

// strMethod calls str method name of s; ok is false if there is none.
func (st *state) strMethod(s, name string, args []V, kw []kwarg) (v V, ok bool, err error) {
	call := func(f func(args []V, kw []kwarg) (V, error)) (V, bool, error) {
		v, err := f(args, kw)
		return v, true, err
	}
	switch name {
	case "strip", "lstrip", "rstrip":
		return call(func(args []V, _ []kwarg) (V, error) {
			chars, ok, err := strArg(args, 0, "chars", name)
			if err != nil {
				return vUndef, err
			}
			return vStr(pyStrip(s, chars, ok, name != "rstrip", name != "lstrip")), nil
		})
	case "split", "rsplit":
		return call(func(args []V, kw []kwarg) (V, error) {
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
			if name == "rsplit" {
				return vList(pyRsplit(s, sep, ok, maxsplit)), nil
			}
			return vList(pySplit(s, sep, ok, maxsplit)), nil
		})
	case "splitlines":
		return call(func(args []V, kw []kwarg) (V, error) {
			var out []V
			for _, l := range pySplitlines(s, truthy(param(args, kw, 0, "keepends", vFalse))) {
				out = append(out, vStr(l))
			}
			return vList(out), nil
		})
	case "startswith", "endswith":
		return call(func(args []V, _ []kwarg) (V, error) {
			s, ok, err := subRange(s, arg(args, 1), arg(args, 2))
			if err != nil || !ok {
				return vFalse, err
			}
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
		return call(func([]V, []kwarg) (V, error) { return vStr(pyUpper(s)), nil })
	case "lower":
		return call(func([]V, []kwarg) (V, error) { return vStr(pyLower(s)), nil })
	case "casefold":
		return call(func([]V, []kwarg) (V, error) { return vStr(pyLower(strings.ReplaceAll(s, "ß", "ss"))), nil })
	case "isascii":
		return call(func([]V, []kwarg) (V, error) { return vBool(isASCIIString(s)), nil })
	case "swapcase":
		return call(func([]V, []kwarg) (V, error) {
			return vStr(strings.Map(func(r rune) rune {
				if unicode.IsUpper(r) {
					return unicode.ToLower(r)
				}
				return unicode.ToUpper(r)
			}, s)), nil
		})
	case "title":
		return call(func([]V, []kwarg) (V, error) {
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
		return call(func([]V, []kwarg) (V, error) { return vStr(pyCapitalize(s)), nil })
	case "replace":
		return call(func(args []V, kw []kwarg) (V, error) {
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
		return call(func(args []V, _ []kwarg) (V, error) {
			sub := arg(args, 0)
			if !sub.IsString() {
				return vUndef, typeErr("must be str, not %s", pyType(sub))
			}
			full := s
			s, ok, err := subRange(s, arg(args, 1), arg(args, 2))
			if err != nil {
				return vUndef, err
			}
			if !ok {
				switch name {
				case "count":
					return vInt(0), nil
				case "index", "rindex":
					return vUndef, &Error{Kind: "ValueError", Msg: "substring not found"}
				}
				return vInt(-1), nil
			}
			base := int64(0) // code-point offset of s within the whole string
			if start := arg(args, 1); start.k == kInt || start.k == kBool {
				base = subStart(full, start)
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
			if i < 0 {
				if name == "index" || name == "rindex" {
					return vUndef, &Error{Kind: "ValueError", Msg: "substring not found"}
				}
				return vInt(-1), nil
			}
			return vInt(base + runeIndex(s, i)), nil
		})
	case "join":
		return call(func(args []V, _ []kwarg) (V, error) {
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
		return call(func(args []V, kw []kwarg) (V, error) { return st.strFormat(s, args, kw, false) })
	case "isdigit", "isnumeric", "isdecimal", "isalpha", "isalnum", "isspace":
		return call(func([]V, []kwarg) (V, error) {
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
		return call(func([]V, []kwarg) (V, error) { return vBool(pyIsCase(s, name == "isupper")), nil })
	case "removeprefix", "removesuffix":
		return call(func(args []V, _ []kwarg) (V, error) {
			a := pyStr(arg(args, 0))
			if name == "removeprefix" {
				return vStr(strings.TrimPrefix(s, a)), nil
			}
			return vStr(strings.TrimSuffix(s, a)), nil
		})
	case "partition", "rpartition":
		return call(func(args []V, _ []kwarg) (V, error) {
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
					return vTuple([]V{vStr(s), vEmpty, vEmpty}), nil
				}
				return vTuple([]V{vEmpty, vEmpty, vStr(s)}), nil
			}
			return vTuple([]V{vStr(s[:i]), vStr(sep), vStr(s[i+len(sep):])}), nil
		})
	case "zfill", "ljust", "rjust", "center":
		return call(func(args []V, _ []kwarg) (V, error) {
			w, _ := asInt(arg(args, 0))
			fill := " "
			if f := arg(args, 1); f.IsString() {
				fill = f.AsString()
			}
			return vStr(pad(s, w, fill, name)), nil
		})
	}
	if strMethodNames[name] {
		return vUndef, true, &Error{Kind: "TemplateRuntimeError", Msg: "str." + name + "() is not supported"}
	}
	return vUndef, false, nil
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
	left := d/2 + (d & int(width) & 1) // CPython's rounding
	return strings.Repeat(fill, left) + s + strings.Repeat(fill, d-left)
}

// subStart is the code-point offset a str method's start argument selects.
func subStart(s string, start V) int64 {
	n := int64(utf8.RuneCountInString(s))
	i, _ := asInt(start)
	if i < 0 {
		i = max(i+n, 0)
	}
	return min(i, n)
}

// subRange applies a str method's optional start and end arguments (code
// point indexes, clamped like a slice). ok is false when start lies past
// the end, where Python's methods find nothing, not even "".
func subRange(s string, start, end V) (string, bool, error) {
	none := func(v V) bool { return v.k == kUndef || v.k == kNone }
	if none(start) && none(end) {
		return s, true, nil
	}
	for _, v := range []V{start, end} {
		if !none(v) && v.k != kInt && v.k != kBool {
			return "", false, typeErr("slice indices must be integers or None or have an __index__ method")
		}
	}
	n := int64(utf8.RuneCountInString(s))
	a, b, _, err := pySliceIndices(start, end, vNone, n)
	if err != nil {
		return "", false, err
	}
	if a > n || (start.k == kInt && start.n > n) {
		return "", false, nil
	}
	if b < a {
		return "", true, nil
	}
	ba, bb := byteOffset(s, a), byteOffset(s, b)
	return s[ba:bb], true, nil
}

// byteOffset converts a code-point offset to a byte offset.
func byteOffset(s string, runes int64) int {
	if runes <= 0 {
		return 0
	}
	n := int64(0)
	for i := range s {
		if n == runes {
			return i
		}
		n++
	}
	return len(s)
}

// markupMethod calls a str method of a Markup as markupsafe does: string
// arguments of the wrapped methods are escaped and str results are Markup.
func (s *state) markupMethod(obj V, name string, args []V, kw []kwarg) (V, bool, error) {
	esc := func() ([]V, []kwarg) {
		ea := make([]V, len(args))
		for i, a := range args {
			ea[i] = a
			if a.k == kStr {
				ea[i] = escapeV(a)
			}
		}
		ek := make([]kwarg, len(kw))
		for i, a := range kw {
			ek[i] = a
			if a.v.k == kStr {
				ek[i].v = escapeV(a.v)
			}
		}
		return ea, ek
	}
	switch name {
	case "capitalize", "title", "lower", "upper", "replace", "ljust", "rjust", "lstrip", "rstrip",
		"center", "strip", "expandtabs", "swapcase", "zfill", "casefold", "removeprefix", "removesuffix":
		ea, ek := esc()
		v, ok, err := s.strMethod(obj.s, name, ea, ek)
		if ok && err == nil && v.k == kStr {
			v = vMarkup(v.s)
		}
		return v, ok, err
	case "split", "rsplit", "splitlines":
		v, ok, err := s.strMethod(obj.s, name, args, kw)
		if ok && err == nil && v.k == kList {
			for i, it := range v.items() {
				v.items()[i] = vMarkup(it.s)
			}
		}
		return v, ok, err
	case "partition", "rpartition":
		ea, ek := esc()
		v, ok, err := s.strMethod(obj.s, name, ea, ek)
		if ok && err == nil && v.k == kTuple {
			for i, it := range v.items() {
				v.items()[i] = vMarkup(it.s)
			}
		}
		return v, ok, err
	case "join":
		items, err := iterate(arg(args, 0))
		if err != nil {
			return vUndef, true, typeErr("can only join an iterable")
		}
		parts := make([]string, len(items))
		for i, it := range items {
			parts[i] = escapeV(it).s
		}
		return vMarkup(strings.Join(parts, obj.s)), true, nil
	case "format":
		v, err := s.strFormat(obj.s, args, kw, true)
		if err == nil {
			v = vMarkup(v.s)
		}
		return v, true, err
	}
	return s.strMethod(obj.s, name, args, kw)
}
