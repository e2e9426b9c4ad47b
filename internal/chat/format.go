package chat

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Python's string formatting: printf-style str % args and str.format, with
// flags, width, precision and the usual conversions.

// fmtSpec is a parsed conversion: format()'s mini-language, to which
// printf-style specifiers are translated.
type fmtSpec struct {
	fill     string
	align    byte // '<', '>', '^', '=' or 0 (the type's default)
	sign     byte // '+', ' ', '-' or 0
	alt      bool // '#'
	zero     bool // '0' before the width
	width    int
	grouping byte // ',' or '_' or 0
	prec     int  // -1 when absent
	typ      byte // conversion, 0 when absent
}

func valueErr(msg string) error { return &Error{Kind: "ValueError", Msg: msg} }

const maxFormatWidth = 1 << 20

// parseSpec parses format()'s spec: [[fill]align][sign][#][0][width][,|_][.precision][type].
func parseSpec(spec string) (fmtSpec, error) {
	sp := fmtSpec{prec: -1}
	i := 0
	isAlign := func(c byte) bool { return c == '<' || c == '>' || c == '^' || c == '=' }
	if _, n := utf8.DecodeRuneInString(spec); n > 0 && n < len(spec) && isAlign(spec[n]) {
		sp.fill, sp.align, i = spec[:n], spec[n], n+1
	} else if len(spec) > 0 && isAlign(spec[0]) {
		sp.align, i = spec[0], 1
	}
	if i < len(spec) && (spec[i] == '+' || spec[i] == '-' || spec[i] == ' ') {
		sp.sign = spec[i]
		i++
	}
	if i < len(spec) && spec[i] == '#' {
		sp.alt = true
		i++
	}
	if i < len(spec) && spec[i] == '0' {
		sp.zero = true
		i++
	}
	j := i
	for i < len(spec) && spec[i] >= '0' && spec[i] <= '9' {
		i++
	}
	if i > j {
		w, err := strconv.Atoi(spec[j:i])
		if err != nil || w > maxFormatWidth {
			return sp, valueErr("Too many decimal digits in format string")
		}
		sp.width = w
	}
	if i < len(spec) && (spec[i] == ',' || spec[i] == '_') {
		sp.grouping = spec[i]
		i++
	}
	if i < len(spec) && spec[i] == '.' {
		i++
		j := i
		for i < len(spec) && spec[i] >= '0' && spec[i] <= '9' {
			i++
		}
		if i == j {
			return sp, valueErr("Format specifier missing precision")
		}
		p, err := strconv.Atoi(spec[j:i])
		if err != nil || p > maxFormatWidth {
			return sp, valueErr("Too many decimal digits in format string")
		}
		sp.prec = p
	}
	if i < len(spec) {
		sp.typ = spec[i]
		i++
	}
	if i < len(spec) {
		return sp, valueErr("Invalid format specifier '" + spec + "'")
	}
	return sp, nil
}

// formatSpec is format(v, spec).
func formatSpec(v V, sp fmtSpec) (string, error) {
	switch {
	case v.k == kStr || (sp.typ == 0 && !isNum(v)):
		if sp.typ != 0 && sp.typ != 's' {
			return "", valueErr("Unknown format code '" + string(sp.typ) + "' for object of type '" + pyType(v) + "'")
		}
		if v.k != kStr && (sp.width > 0 || sp.prec >= 0) && v.k != kUndef {
			// format() of other objects with a non-empty spec fails in Python.
			return "", typeErr("unsupported format string passed to %s.__format__", pyType(v))
		}
		s := pyStr(v)
		if sp.sign != 0 {
			return "", valueErr("Sign not allowed in string format specifier")
		}
		if sp.prec >= 0 {
			s = truncRunes(s, sp.prec)
		}
		return pad2(s, "", sp, '<'), nil
	case v.k == kFloat || (isNum(v) && strings.IndexByte("eEfFgG%", sp.typ) >= 0):
		if sp.typ != 0 && strings.IndexByte("eEfFgGn%", sp.typ) < 0 {
			return "", valueErr("Unknown format code '" + string(sp.typ) + "' for object of type 'float'")
		}
		return formatFloat(toF(v), sp), nil
	case isNum(v):
		if sp.typ != 0 && strings.IndexByte("dbcoxXn", sp.typ) < 0 {
			return "", valueErr("Unknown format code '" + string(sp.typ) + "' for object of type 'int'")
		}
		if sp.prec >= 0 {
			return "", valueErr("Precision not allowed in integer format specifier")
		}
		if v.k == kBool && sp.typ == 0 && sp.width == 0 {
			return pyStr(v), nil
		}
		return formatInt(v.n, sp)
	}
	return "", typeErr("unsupported format string passed to %s.__format__", pyType(v))
}

func truncRunes(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

func signOf(neg bool, sign byte) string {
	switch {
	case neg:
		return "-"
	case sign == '+':
		return "+"
	case sign == ' ':
		return " "
	}
	return ""
}

func group(digits string, sep byte, every int) string {
	if sep == 0 || len(digits) <= every {
		return digits
	}
	var b strings.Builder
	first := len(digits) % every
	if first > 0 {
		b.WriteString(digits[:first])
	}
	for i := first; i < len(digits); i += every {
		if b.Len() > 0 {
			b.WriteByte(sep)
		}
		b.WriteString(digits[i : i+every])
	}
	return b.String()
}

func formatInt(n int64, sp fmtSpec) (string, error) {
	neg := n < 0
	u := uint64(n)
	if neg {
		u = uint64(-n)
	}
	prefix := ""
	var digits string
	switch sp.typ {
	case 'b':
		digits, prefix = strconv.FormatUint(u, 2), "0b"
	case 'o':
		digits, prefix = strconv.FormatUint(u, 8), "0o"
	case 'x':
		digits, prefix = strconv.FormatUint(u, 16), "0x"
	case 'X':
		digits, prefix = strings.ToUpper(strconv.FormatUint(u, 16)), "0X"
	case 'c':
		if n < 0 || n > 0x10ffff {
			return "", &Error{Kind: "OverflowError", Msg: "%c arg not in range(0x110000)"}
		}
		return pad2(string(rune(n)), "", sp, '<'), nil
	default:
		digits = group(strconv.FormatUint(u, 10), sp.grouping, 3)
	}
	if sp.typ == 'b' || sp.typ == 'o' || sp.typ == 'x' || sp.typ == 'X' {
		digits = group(digits, sp.grouping, 4)
		if !sp.alt {
			prefix = ""
		}
	} else {
		prefix = ""
	}
	return pad2(digits, signOf(neg, sp.sign)+prefix, sp, '>'), nil
}

func formatFloat(f float64, sp fmtSpec) string {
	neg := math.Signbit(f) && !math.IsNaN(f)
	a := math.Abs(f)
	typ, prec := sp.typ, sp.prec
	var body string
	switch {
	case math.IsInf(f, 0) || math.IsNaN(f):
		body = "inf"
		if math.IsNaN(f) {
			body = "nan"
		}
		if typ == 'E' || typ == 'F' || typ == 'G' {
			body = strings.ToUpper(body)
		}
		if typ == '%' {
			body += "%"
		}
		sp.zero = false
	case typ == 0 && prec < 0:
		body = pyFloatRepr(a)
	default:
		if prec < 0 {
			prec = 6
		}
		switch typ {
		case 'e', 'E':
			body = strconv.FormatFloat(a, 'e', prec, 64)
		case 'f', 'F':
			body = strconv.FormatFloat(a, 'f', prec, 64)
		case '%':
			body = strconv.FormatFloat(a*100, 'f', prec, 64) + "%"
		default: // g, G, n, or a precision without a type
			if prec == 0 {
				prec = 1
			}
			body = strconv.FormatFloat(a, 'g', prec, 64)
			if sp.alt && !strings.ContainsAny(body, ".e") {
				body += "."
			}
			if typ == 0 && !strings.ContainsAny(body, ".e") {
				body += ".0"
			}
		}
		if typ == 'E' || typ == 'G' {
			body = strings.ToUpper(body)
		}
		if sp.alt && (typ == 'f' || typ == 'F' || typ == 'e' || typ == 'E') && prec == 0 {
			if i := strings.IndexAny(body, "eE"); i >= 0 {
				body = body[:i] + "." + body[i:]
			} else {
				body += "."
			}
		}
		if sp.grouping != 0 {
			intPart, rest := body, ""
			if i := strings.IndexAny(body, ".eE%"); i >= 0 {
				intPart, rest = body[:i], body[i:]
			}
			body = group(intPart, sp.grouping, 3) + rest
		}
	}
	return pad2(body, signOf(neg, sp.sign), sp, '>')
}

// pad2 applies width, fill and alignment to sign+body.
func pad2(body, sign string, sp fmtSpec, defAlign byte) string {
	fill, align := sp.fill, sp.align
	if sp.zero && align == 0 && defAlign == '>' {
		fill, align = "0", '='
	}
	if fill == "" {
		fill = " "
	}
	if align == 0 {
		align = defAlign
	}
	n := utf8.RuneCountInString(body) + utf8.RuneCountInString(sign)
	if sp.width <= n {
		return sign + body
	}
	d := sp.width - n
	switch align {
	case '<':
		return sign + body + strings.Repeat(fill, d)
	case '^':
		return strings.Repeat(fill, d/2) + sign + body + strings.Repeat(fill, d-d/2)
	case '=':
		return sign + strings.Repeat(fill, d) + body
	}
	return strings.Repeat(fill, d) + sign + body
}

// printf is Python's str % args; a Markup format escapes the arguments
// (what %s and %r insert) and gives Markup.
func (s *state) printf(fmtV V, args V) (V, error) {
	format, markup := fmtV.s, fmtV.isMarkup()
	var list []V
	var mapping *Dict
	switch args.k {
	case kTuple:
		list = args.items()
	case kDict:
		mapping = args.AsDict()
		list = []V{args}
	default:
		list = []V{args}
	}
	next := 0
	usedMap := false
	take := func() (V, error) {
		if next >= len(list) {
			return vUndef, typeErr("not enough arguments for format string")
		}
		next++
		return list[next-1], nil
	}
	var b strings.Builder
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' {
			j := strings.IndexByte(format[i:], '%')
			if j < 0 {
				b.WriteString(format[i:])
				break
			}
			b.WriteString(format[i : i+j])
			i += j - 1
			continue
		}
		i++
		if i >= len(format) {
			return vUndef, valueErr("incomplete format")
		}
		var a V
		haveArg := false
		if format[i] == '(' {
			depth, j := 1, i+1
			for ; j < len(format) && depth > 0; j++ {
				switch format[j] {
				case '(':
					depth++
				case ')':
					depth--
				}
			}
			if depth > 0 {
				return vUndef, valueErr("incomplete format key")
			}
			if mapping == nil {
				return vUndef, typeErr("format requires a mapping")
			}
			v, ok := mapping.Get(format[i+1 : j-1])
			if !ok {
				return vUndef, &Error{Kind: "KeyError", Msg: pyStrRepr(format[i+1 : j-1])}
			}
			a, haveArg, usedMap, i = v, true, true, j
		}
		sp := fmtSpec{prec: -1}
	flags:
		for ; i < len(format); i++ {
			switch format[i] {
			case '-':
				sp.align = '<'
			case '+':
				sp.sign = '+'
			case ' ':
				if sp.sign == 0 {
					sp.sign = ' '
				}
			case '#':
				sp.alt = true
			case '0':
				sp.zero = true
			default:
				break flags
			}
		}
		num := func() (int, error) {
			if i < len(format) && format[i] == '*' {
				i++
				v, err := take()
				if err != nil {
					return 0, err
				}
				n, ok := asInt(v)
				if !ok {
					return 0, typeErr("* wants int")
				}
				return int(min(max(n, -maxFormatWidth), maxFormatWidth)), nil
			}
			j := i
			for i < len(format) && format[i] >= '0' && format[i] <= '9' {
				i++
			}
			if i == j {
				return -1, nil
			}
			n, err := strconv.Atoi(format[j:i])
			if err != nil || n > maxFormatWidth {
				return 0, valueErr("width too big")
			}
			return n, nil
		}
		w, err := num()
		if err != nil {
			return vUndef, err
		}
		if w < 0 && w != -1 {
			sp.align, w = '<', -w
		}
		sp.width = max(w, 0)
		if i < len(format) && format[i] == '.' {
			i++
			p, err := num()
			if err != nil {
				return vUndef, err
			}
			sp.prec = max(p, 0)
		}
		for i < len(format) && (format[i] == 'h' || format[i] == 'l' || format[i] == 'L') {
			i++
		}
		if i >= len(format) {
			return vUndef, valueErr("incomplete format")
		}
		conv := format[i]
		if conv == '%' {
			b.WriteByte('%')
			continue
		}
		if !haveArg {
			if a, err = take(); err != nil {
				return vUndef, err
			}
		}
		if sp.align == '<' {
			sp.zero = false
		}
		var out string
		switch conv {
		case 's', 'r', 'a':
			str := s.str(a)
			if conv != 's' {
				str = reprMax(a, s.limit)
			}
			if markup && !(conv == 's' && a.isMarkup()) {
				str = htmlEscaper.Replace(str)
			}
			if sp.prec >= 0 {
				str = truncRunes(str, sp.prec)
			}
			sp.zero = false
			out = pad2(str, "", sp, '>')
		case 'd', 'i', 'u':
			if !isNum(a) {
				return vUndef, typeErr("%%%c format: a real number is required, not %s", conv, pyType(a))
			}
			n := a.n
			if a.k == kFloat {
				f := math.Trunc(a.AsFloat())
				if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 9e18 {
					return vUndef, &Error{Kind: "OverflowError", Msg: "cannot convert float to integer"}
				}
				n = int64(f)
			}
			sp.typ = 'd'
			out, err = formatInt(n, sp)
		case 'o', 'x', 'X':
			if a.k != kInt && a.k != kBool {
				return vUndef, typeErr("%%%c format: an integer is required, not %s", conv, pyType(a))
			}
			sp.typ = conv
			out, err = formatInt(a.n, sp)
		case 'e', 'E', 'f', 'F', 'g', 'G':
			if !isNum(a) {
				return vUndef, typeErr("must be real number, not %s", pyType(a))
			}
			sp.typ = conv
			out = formatFloat(toF(a), sp)
		case 'c':
			switch {
			case a.k == kInt:
				sp.typ = 'c'
				out, err = formatInt(a.n, sp)
			case a.k == kStr && utf8.RuneCountInString(a.s) == 1:
				out = pad2(a.s, "", sp, '>')
			default:
				return vUndef, typeErr("%%c requires an int or a unicode character, not %s", pyType(a))
			}
		default:
			return vUndef, valueErr("unsupported format character '" + string(conv) + "'")
		}
		if err != nil {
			return vUndef, err
		}
		b.WriteString(out)
		if err := s.checkSize(b.Len()); err != nil {
			return vUndef, err
		}
	}
	// Python skips this check when the argument has __getitem__ and is not
	// a tuple or str (it may be a mapping for %(name)s).
	mappingLike := args.k == kDict || args.k == kList || args.k == kRange || args.k == kUndef
	if next < len(list) && !mappingLike {
		return vUndef, typeErr("not all arguments converted during string formatting")
	}
	_ = usedMap
	if markup {
		return vMarkup(b.String()), nil
	}
	return vStr(b.String()), nil
}

// strFormat is str.format: {}, {0}, {name}, with .attr and [key] lookups,
// !s/!r/!a conversions and format specs. escape is Markup.format, which
// escapes each field (unless it is Markup).
func (s *state) strFormat(format string, args []V, kw []kwarg, escape bool) (V, error) {
	var b strings.Builder
	auto, manual := 0, false
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c == '}' {
			if i+1 < len(format) && format[i+1] == '}' {
				b.WriteByte('}')
				i++
				continue
			}
			return vUndef, valueErr("Single '}' encountered in format string")
		}
		if c != '{' {
			b.WriteByte(c)
			continue
		}
		if i+1 < len(format) && format[i+1] == '{' {
			b.WriteByte('{')
			i++
			continue
		}
		// Find the matching '}' (a spec may contain one nested field, which
		// is not supported).
		j := strings.IndexByte(format[i:], '}')
		if j < 0 {
			return vUndef, valueErr("Single '{' encountered in format string")
		}
		field := format[i+1 : i+j]
		i += j
		if strings.IndexByte(field, '{') >= 0 {
			return vUndef, valueErr("nested replacement fields in format specs are not supported")
		}
		spec := ""
		if k := strings.IndexByte(field, ':'); k >= 0 {
			field, spec = field[:k], field[k+1:]
		}
		conv := byte(0)
		if k := strings.IndexByte(field, '!'); k >= 0 {
			if k+2 != len(field) {
				return vUndef, valueErr("expected ':' after conversion specifier")
			}
			field, conv = field[:k], field[k+1]
		}
		// The first name, then .attr / [key] accessors.
		k := strings.IndexAny(field, ".[")
		if k < 0 {
			k = len(field)
		}
		first, rest := field[:k], field[k:]
		var v V
		switch {
		case first == "":
			if manual {
				return vUndef, valueErr("cannot switch from manual field specification to automatic field numbering")
			}
			if auto >= len(args) {
				return vUndef, &Error{Kind: "IndexError", Msg: "Replacement index " + strconv.Itoa(auto) + " out of range for positional args tuple"}
			}
			v = args[auto]
			auto++
		case first[0] >= '0' && first[0] <= '9':
			if auto > 0 {
				return vUndef, valueErr("cannot switch from automatic field numbering to manual field specification")
			}
			manual = true
			n, err := strconv.Atoi(first)
			if err != nil || n >= len(args) {
				return vUndef, &Error{Kind: "IndexError", Msg: "Replacement index " + first + " out of range for positional args tuple"}
			}
			v = args[n]
		default:
			var ok bool
			if v, ok = kwGet(kw, first); !ok {
				return vUndef, &Error{Kind: "KeyError", Msg: pyStrRepr(first)}
			}
		}
		for rest != "" {
			var err error
			if rest[0] == '.' {
				e := strings.IndexAny(rest[1:], ".[") + 1
				if e == 0 {
					e = len(rest)
				}
				if v, err = s.getattr(v, rest[1:e]); err != nil {
					return vUndef, err
				}
				rest = rest[e:]
				continue
			}
			e := strings.IndexByte(rest, ']')
			if e < 0 {
				return vUndef, valueErr("Missing ']' in format string")
			}
			key := vStr(rest[1:e])
			if n, err := strconv.ParseInt(rest[1:e], 10, 64); err == nil {
				key = vInt(n)
			}
			if v, err = s.getitem(v, key); err != nil {
				return vUndef, err
			}
			rest = rest[e+1:]
		}
		switch conv {
		case 0:
		case 's':
			v = vStr(pyStr(v))
		case 'r', 'a':
			v = vStr(pyRepr(v))
		default:
			return vUndef, valueErr("Unknown conversion specifier " + string(conv))
		}
		sp, err := parseSpec(spec)
		if err != nil {
			return vUndef, err
		}
		out, err := formatSpec(v, sp)
		if err != nil {
			return vUndef, err
		}
		if escape && !v.isMarkup() {
			out = htmlEscaper.Replace(out)
		}
		b.WriteString(out)
		if err := s.checkSize(b.Len()); err != nil {
			return vUndef, err
		}
	}
	return vStr(b.String()), nil
}
