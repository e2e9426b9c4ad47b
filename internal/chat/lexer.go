package chat

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file reproduces Python jinja2's lexer (jinja2/lexer.py, 3.1) for the
// settings Hugging Face uses: trim_blocks=True, lstrip_blocks=True,
// keep_trailing_newline=False, default delimiters, no line statements.
// Whitespace control is applied here, exactly as jinja2 does it, so the text
// handed to the evaluator is final.

type itemKind int

const (
	itemData     itemKind = iota // raw text (whitespace control already applied)
	itemVariable                 // {{ ... }}
	itemBlock                    // {% ... %}
)

type item struct {
	kind itemKind
	text string  // itemData
	toks []token // itemVariable / itemBlock
	line int
}

type tokKind int

const (
	tkName tokKind = iota
	tkString
	tkInt
	tkFloat
	tkOp
	tkEOF
)

type token struct {
	kind tokKind
	s    string // name, operator, or decoded string value
	i    int64
	f    float64
	line int
}

func (t token) String() string {
	switch t.kind {
	case tkName, tkOp:
		return t.s
	case tkString:
		return strconv.Quote(t.s)
	case tkInt:
		return strconv.FormatInt(t.i, 10)
	case tkFloat:
		return strconv.FormatFloat(t.f, 'g', -1, 64)
	}
	return "end of statement"
}

// SyntaxError is a template compile error with its line number.
type SyntaxError struct {
	Line int
	Msg  string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("chat template syntax error (line %d): %s", e.Line, e.Msg)
}

// isPySpace reports whether r is whitespace for Python's str.isspace / re \s.
func isPySpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// skipPySpace returns the index after the run of Python whitespace at i.
func skipPySpace(s string, i int) int {
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if !isPySpace(r) {
			break
		}
		i += n
	}
	return i
}

func rstripPy(s string) string {
	return strings.TrimRightFunc(s, isPySpace)
}

// lex splits a template into data and tag items.
func lex(src string) ([]item, error) {
	// jinja2 normalises every newline to "\n" and, without
	// keep_trailing_newline, drops one trailing newline.
	src = strings.ReplaceAll(src, "\r\n", "\n")
	src = strings.ReplaceAll(src, "\r", "\n")
	src = strings.TrimSuffix(src, "\n")

	var items []item
	pos := 0
	line := 1
	lineStarting := true
	lineAt := func(i int) int { return line + strings.Count(src[pos:i], "\n") }

	for pos < len(src) {
		// Find the leftmost tag opener.
		open := -1
		for i := pos; i+1 < len(src); i++ {
			if src[i] == '{' && (src[i+1] == '{' || src[i+1] == '%' || src[i+1] == '#') {
				open = i
				break
			}
		}
		if open < 0 {
			items = append(items, item{kind: itemData, text: src[pos:], line: line})
			break
		}
		kindCh := src[open+1]
		after := open + 2
		sign := byte(0)
		if after < len(src) && (src[after] == '-' || src[after] == '+') {
			sign = src[after]
		}

		// {% raw %} is matched before the plain block opener.
		rawEnd := -1
		if kindCh == '%' {
			rawEnd = matchRawBegin(src, open)
		}

		text := src[pos:open]
		switch {
		case sign == '-':
			text = rstripPy(text)
		case sign != '+' && kindCh != '{':
			// lstrip_blocks: strip spaces/tabs between the start of the
			// line and a block or comment tag.
			lpos := strings.LastIndexByte(text, '\n') + 1
			if lpos > 0 || lineStarting {
				if strings.Trim(text[lpos:], " \t") == "" {
					text = text[:lpos]
				}
			}
		}
		if text != "" {
			items = append(items, item{kind: itemData, text: text, line: line})
		}
		tagLine := lineAt(open)

		if rawEnd >= 0 {
			// Raw block: find {% endraw %}.
			bodyStart := rawEnd
			bodyEnd, endEnd, endSign, ok := matchEndRaw(src, bodyStart)
			if !ok {
				return nil, &SyntaxError{tagLine, "missing end of raw directive"}
			}
			body := src[bodyStart:bodyEnd]
			switch {
			case endSign == '-':
				body = rstripPy(body)
			case endSign != '+':
				lpos := strings.LastIndexByte(body, '\n') + 1
				// line_starting is the state after the raw-begin match.
				ls := rawEnd > 0 && src[rawEnd-1] == '\n'
				if lpos > 0 || ls {
					if strings.Trim(body[lpos:], " \t") == "" {
						body = body[:lpos]
					}
				}
			}
			if body != "" {
				items = append(items, item{kind: itemData, text: body, line: lineAt(bodyStart)})
			}
			line = lineAt(endEnd)
			pos = endEnd
			lineStarting = src[endEnd-1] == '\n'
			continue
		}

		contentStart := after
		if sign != 0 {
			contentStart++
		}

		switch kindCh {
		case '#':
			end, ok := matchCommentEnd(src, contentStart)
			if !ok {
				return nil, &SyntaxError{tagLine, "missing end of comment tag"}
			}
			line = lineAt(end)
			pos = end
			lineStarting = src[end-1] == '\n'
		default:
			kind := itemBlock
			if kindCh == '{' {
				kind = itemVariable
			}
			toks, end, err := lexTag(src, contentStart, kind, tagLine)
			if err != nil {
				return nil, err
			}
			items = append(items, item{kind: kind, toks: toks, line: tagLine})
			line = lineAt(end)
			pos = end
			lineStarting = src[end-1] == '\n'
		}
	}
	return items, nil
}

// matchRawBegin matches `{%[-+]?\s*raw\s*(-%}\s*|%})` at i and returns the
// index after it, or -1.
func matchRawBegin(s string, i int) int {
	j := i + 2
	if j < len(s) && (s[j] == '-' || s[j] == '+') {
		j++
	}
	j = skipPySpace(s, j)
	if !strings.HasPrefix(s[j:], "raw") {
		return -1
	}
	j = skipPySpace(s, j+3)
	switch {
	case strings.HasPrefix(s[j:], "-%}"):
		return skipPySpace(s, j+3)
	case strings.HasPrefix(s[j:], "%}"):
		return j + 2
	}
	return -1
}

// matchEndRaw finds `{%[-+]?\s*endraw\s*(+%}|-%}\s*|%}\n?)` at or after i.
func matchEndRaw(s string, i int) (bodyEnd, end int, sign byte, ok bool) {
	for k := i; k+1 < len(s); k++ {
		if s[k] != '{' || s[k+1] != '%' {
			continue
		}
		j := k + 2
		var sg byte
		if j < len(s) && (s[j] == '-' || s[j] == '+') {
			sg = s[j]
			j++
		}
		j = skipPySpace(s, j)
		if !strings.HasPrefix(s[j:], "endraw") {
			continue
		}
		j = skipPySpace(s, j+6)
		switch {
		case strings.HasPrefix(s[j:], "+%}"):
			return k, j + 3, sg, true
		case strings.HasPrefix(s[j:], "-%}"):
			return k, skipPySpace(s, j+3), sg, true
		case strings.HasPrefix(s[j:], "%}"):
			e := j + 2
			if e < len(s) && s[e] == '\n' {
				e++
			}
			return k, e, sg, true
		}
	}
	return 0, 0, 0, false
}

// matchCommentEnd finds the end of a comment: `+#}`, `-#}\s*` or `#}\n?`.
func matchCommentEnd(s string, i int) (int, bool) {
	for k := i; k < len(s); k++ {
		switch {
		case strings.HasPrefix(s[k:], "+#}"):
			return k + 3, true
		case strings.HasPrefix(s[k:], "-#}"):
			return skipPySpace(s, k+3), true
		case strings.HasPrefix(s[k:], "#}"):
			e := k + 2
			if e < len(s) && s[e] == '\n' {
				e++
			}
			return e, true
		}
	}
	return 0, false
}

var operators = []string{"//", "**", "==", "!=", ">=", "<=",
	"+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";"}

// lexTag tokenizes the inside of a {% %} or {{ }} tag starting at i and
// returns the tokens and the index after the tag's end (including any
// whitespace consumed by trim markers or trim_blocks).
func lexTag(s string, i int, kind itemKind, line int) ([]token, int, error) {
	var toks []token
	var stack []byte
	for {
		if i >= len(s) {
			return nil, 0, &SyntaxError{line, "unexpected end of template, expected end of tag"}
		}
		if len(stack) == 0 {
			if kind == itemBlock {
				switch {
				case strings.HasPrefix(s[i:], "+%}"):
					return toks, i + 3, nil
				case strings.HasPrefix(s[i:], "-%}"):
					return toks, skipPySpace(s, i+3), nil
				case strings.HasPrefix(s[i:], "%}"):
					e := i + 2
					if e < len(s) && s[e] == '\n' {
						e++
					}
					return toks, e, nil
				}
			} else {
				switch {
				case strings.HasPrefix(s[i:], "-}}"):
					return toks, skipPySpace(s, i+3), nil
				case strings.HasPrefix(s[i:], "}}"):
					return toks, i + 2, nil
				}
			}
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if isPySpace(r) {
			if r == '\n' {
				line++
			}
			i += n
			continue
		}
		if j, f, ok := matchFloat(s, i); ok {
			toks = append(toks, token{kind: tkFloat, f: f, line: line})
			i = j
			continue
		}
		if j, v, ok, err := matchInt(s, i); ok {
			if err != nil {
				return nil, 0, &SyntaxError{line, err.Error()}
			}
			toks = append(toks, token{kind: tkInt, i: v, line: line})
			i = j
			continue
		}
		if r == '_' || unicode.IsLetter(r) {
			j := i + n
			for j < len(s) {
				r2, n2 := utf8.DecodeRuneInString(s[j:])
				if r2 != '_' && !unicode.IsLetter(r2) && !unicode.IsDigit(r2) && !unicode.Is(unicode.Mn, r2) && !unicode.Is(unicode.Mc, r2) {
					break
				}
				j += n2
			}
			toks = append(toks, token{kind: tkName, s: s[i:j], line: line})
			i = j
			continue
		}
		if r == '\'' || r == '"' {
			j := i + 1
			closed := false
			for j < len(s) {
				if s[j] == '\\' && j+1 < len(s) {
					j += 2
					continue
				}
				if s[j] == byte(r) {
					closed = true
					break
				}
				j++
			}
			if closed {
				raw := s[i+1 : j]
				val, err := decodePyString(raw)
				if err != nil {
					return nil, 0, &SyntaxError{line, err.Error()}
				}
				toks = append(toks, token{kind: tkString, s: val, line: line})
				line += strings.Count(raw, "\n")
				i = j + 1
				continue
			}
		}
		op := ""
		for _, o := range operators {
			if strings.HasPrefix(s[i:], o) {
				op = o
				break
			}
		}
		if op == "" {
			return nil, 0, &SyntaxError{line, fmt.Sprintf("unexpected char %q", r)}
		}
		switch op {
		case "(":
			stack = append(stack, ')')
		case "[":
			stack = append(stack, ']')
		case "{":
			stack = append(stack, '}')
		case ")", "]", "}":
			if len(stack) == 0 {
				return nil, 0, &SyntaxError{line, fmt.Sprintf("unexpected '%s'", op)}
			}
			if want := stack[len(stack)-1]; want != op[0] {
				return nil, 0, &SyntaxError{line, fmt.Sprintf("unexpected '%s', expected '%c'", op, want)}
			}
			stack = stack[:len(stack)-1]
		}
		toks = append(toks, token{kind: tkOp, s: op, line: line})
		i += len(op)
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// digitRun matches (\d+_)*\d+ at i and returns its end, or i.
func digitRun(s string, i int) int {
	j := i
	for {
		k := j
		for k < len(s) && isDigit(s[k]) {
			k++
		}
		if k == j {
			return j
		}
		j = k
		if j+1 < len(s) && s[j] == '_' && isDigit(s[j+1]) {
			j++
			continue
		}
		return j
	}
}

// matchFloat implements jinja2's float_re.
func matchFloat(s string, i int) (int, float64, bool) {
	if i > 0 && s[i-1] == '.' {
		return 0, 0, false
	}
	j := digitRun(s, i)
	if j == i {
		return 0, 0, false
	}
	end := -1
	// fractional part
	k := j
	if k < len(s) && s[k] == '.' {
		if m := digitRun(s, k+1); m > k+1 {
			k = m
		} else {
			k = j
		}
	}
	// exponent
	if k < len(s) && (s[k] == 'e' || s[k] == 'E') {
		m := k + 1
		if m < len(s) && (s[m] == '+' || s[m] == '-') {
			m++
		}
		if e := digitRun(s, m); e > m {
			end = e
		}
	}
	if end < 0 && k > j {
		end = k
	}
	if end < 0 {
		return 0, 0, false
	}
	f, err := strconv.ParseFloat(strings.ReplaceAll(s[i:end], "_", ""), 64)
	if err != nil && !math.IsInf(f, 0) {
		return 0, 0, false
	}
	return end, f, true
}

// matchInt implements jinja2's integer_re.
func matchInt(s string, i int) (int, int64, bool, error) {
	if i >= len(s) || !isDigit(s[i]) {
		return 0, 0, false, nil
	}
	base := 10
	j := i
	if s[i] == '0' && i+1 < len(s) {
		switch s[i+1] | 0x20 {
		case 'b':
			base = 2
		case 'o':
			base = 8
		case 'x':
			base = 16
		}
	}
	valid := func(c byte) bool {
		switch base {
		case 2:
			return c == '0' || c == '1'
		case 8:
			return c >= '0' && c <= '7'
		case 16:
			return isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'f')
		}
		return isDigit(c)
	}
	if base != 10 {
		j = i + 2
		k := j
		for k < len(s) {
			if s[k] == '_' && k+1 < len(s) && valid(s[k+1]) {
				k += 2
				continue
			}
			if valid(s[k]) {
				k++
				continue
			}
			break
		}
		if k == j {
			base = 10 // "0" followed by a letter: just the zero
		} else {
			v, err := strconv.ParseInt(strings.ReplaceAll(s[j:k], "_", ""), base, 64)
			if err != nil {
				return k, 0, true, fmt.Errorf("integer literal %q out of range", s[i:k])
			}
			return k, v, true, nil
		}
	}
	if s[i] == '0' {
		// 0(_?0)*
		k := i + 1
		for k < len(s) {
			if s[k] == '0' {
				k++
			} else if s[k] == '_' && k+1 < len(s) && s[k+1] == '0' {
				k += 2
			} else {
				break
			}
		}
		return k, 0, true, nil
	}
	k := digitRun(s, i)
	v, err := strconv.ParseInt(strings.ReplaceAll(s[i:k], "_", ""), 10, 64)
	if err != nil {
		return k, 0, true, fmt.Errorf("integer literal %q out of range", s[i:k])
	}
	return k, v, true, nil
}

// decodePyString decodes a string literal body the way jinja2 does
// (Python's "unicode-escape" codec).
func decodePyString(raw string) (string, error) {
	if !strings.Contains(raw, "\\") {
		return raw, nil
	}
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' || i+1 >= len(raw) {
			b.WriteByte(c)
			continue
		}
		i++
		c = raw[i]
		switch c {
		case '\n':
		case '\\':
			b.WriteByte('\\')
		case '\'':
			b.WriteByte('\'')
		case '"':
			b.WriteByte('"')
		case 'a':
			b.WriteByte(7)
		case 'b':
			b.WriteByte(8)
		case 'f':
			b.WriteByte(12)
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'v':
			b.WriteByte(11)
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := 0
			k := i
			for k < len(raw) && k < i+3 && raw[k] >= '0' && raw[k] <= '7' {
				v = v*8 + int(raw[k]-'0')
				k++
			}
			b.WriteRune(rune(v))
			i = k - 1
		case 'x', 'u', 'U':
			n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[c]
			if i+1+n > len(raw) {
				return "", fmt.Errorf("truncated \\%c escape in string literal", c)
			}
			v, err := strconv.ParseUint(raw[i+1:i+1+n], 16, 32)
			if err != nil {
				return "", fmt.Errorf("truncated \\%c escape in string literal", c)
			}
			if v > unicode.MaxRune {
				return "", fmt.Errorf("illegal Unicode character in string literal")
			}
			b.WriteRune(rune(v))
			i += n
		default:
			b.WriteByte('\\')
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}
