package grammar

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The GBNF syntax, as llama.cpp parses it:
//
//	grammar     ::= rule*
//	rule        ::= name "::=" alternates (newline | end)
//	alternates  ::= sequence ("|" sequence)*
//	sequence    ::= (item repetition*)*
//	item        ::= "literal" | [class] | [^class] | . | name | "(" alternates ")"
//	repetition  ::= "*" | "+" | "?" | "{" m "}" | "{" m ",}" | "{" m "," n "}" | "{," n "}"
//
// Names are letters, digits and '-'. Spaces, tabs and comments (# to the end
// of the line) separate items; a newline ends a rule except inside
// parentheses or after "::=" or "|". Escapes in literals and classes: \xHH,
// \uHHHH, \UHHHHHHHH, \t, \r, \n, \\, \", \[, \]. Characters are Unicode
// code points; "." is any character. The start rule is "root".

type exprKind uint8

const (
	xSeq    exprKind = iota // kids in order (empty: matches the empty string)
	xAlt                    // one of kids
	xLit                    // the bytes of lit
	xChars                  // one code point in ranges
	xRef                    // the rule name
	xRepeat                 // kids[0] from min to max times (max < 0: unbounded)
)

type cpRange struct{ lo, hi rune }

type expr struct {
	kind     exprKind
	kids     []*expr
	lit      string
	ranges   []cpRange // sorted, disjoint, not adjacent
	name     string
	min, max int
	off      int // source offset (for errors)
}

type ruleDef struct {
	name string
	body *expr
	off  int
}

type parser struct {
	src string
	pos int
	lim Limits
}

// Parse compiles a GBNF grammar whose start rule is "root". Errors are
// *Error values with the line and column of the problem.
func Parse(src string, lim Limits) (*Grammar, error) {
	lim = lim.withDefaults()
	if len(src) > lim.MaxSourceBytes {
		return nil, limitErr("grammar of %d bytes is over the limit of %d bytes", len(src), lim.MaxSourceBytes)
	}
	if !utf8.ValidString(src) {
		return nil, &Error{Msg: "grammar is not valid UTF-8"}
	}
	p := &parser{src: src, lim: lim}
	defs, err := p.parse()
	if err != nil {
		return nil, err
	}
	return compile(src, defs, lim)
}

// MustParse is Parse with the default limits that panics on error (for
// grammars in code).
func MustParse(src string) *Grammar {
	g, err := Parse(src, Limits{})
	if err != nil {
		panic("grammar: " + err.Error())
	}
	return g
}

func (p *parser) errAt(off int, format string, args ...any) *Error {
	line, col := 1, 1
	for _, r := range p.src[:min(off, len(p.src))] {
		if r == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return &Error{Line: line, Col: col, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) eof() bool { return p.pos >= len(p.src) }

func (p *parser) peek() byte {
	if p.pos < len(p.src) {
		return p.src[p.pos]
	}
	return 0
}

// space skips blanks and comments, and newlines when newlineOK.
func (p *parser) space(newlineOK bool) {
	for p.pos < len(p.src) {
		switch c := p.src[p.pos]; {
		case c == ' ' || c == '\t':
			p.pos++
		case c == '#':
			for p.pos < len(p.src) && p.src[p.pos] != '\n' && p.src[p.pos] != '\r' {
				p.pos++
			}
		case newlineOK && (c == '\n' || c == '\r'):
			p.pos++
		default:
			return
		}
	}
}

func isWordChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-'
}

func (p *parser) name() (string, error) {
	start := p.pos
	for p.pos < len(p.src) && isWordChar(p.src[p.pos]) {
		p.pos++
	}
	if p.pos == start {
		return "", p.errAt(start, "expecting a rule name, found %s", p.describe(start))
	}
	return p.src[start:p.pos], nil
}

// describe names what is at off, for error messages.
func (p *parser) describe(off int) string {
	if off >= len(p.src) {
		return "the end of the grammar"
	}
	r, _ := utf8.DecodeRuneInString(p.src[off:])
	switch r {
	case '\n', '\r':
		return "a newline"
	}
	return strconv.QuoteRune(r)
}

func (p *parser) parse() ([]ruleDef, error) {
	var defs []ruleDef
	p.space(true)
	for !p.eof() {
		start := p.pos
		name, err := p.name()
		if err != nil {
			return nil, err
		}
		p.space(false)
		if !strings.HasPrefix(p.src[p.pos:], "::=") {
			return nil, p.errAt(p.pos, "expecting ::= after rule name %q, found %s", name, p.describe(p.pos))
		}
		p.pos += 3
		p.space(true)
		body, err := p.alternates(false)
		if err != nil {
			return nil, err
		}
		switch c := p.peek(); {
		case p.eof():
		case c == '\n' || c == '\r':
			p.pos++
		case c == ')':
			return nil, p.errAt(p.pos, "unbalanced ')'")
		default:
			return nil, p.errAt(p.pos, "unexpected %s in rule %q", p.describe(p.pos), name)
		}
		p.space(true)
		defs = append(defs, ruleDef{name: name, body: body, off: start})
	}
	return defs, nil
}

func (p *parser) alternates(nested bool) (*expr, error) {
	start := p.pos
	var alts []*expr
	for {
		seq, err := p.sequence(nested)
		if err != nil {
			return nil, err
		}
		alts = append(alts, seq)
		if p.peek() != '|' {
			break
		}
		p.pos++
		p.space(true)
	}
	if len(alts) == 1 {
		return alts[0], nil
	}
	return &expr{kind: xAlt, kids: alts, off: start}, nil
}

func (p *parser) sequence(nested bool) (*expr, error) {
	seq := &expr{kind: xSeq, off: p.pos}
	for !p.eof() {
		start := p.pos
		c := p.src[p.pos]
		var item *expr
		switch {
		case c == '"':
			p.pos++
			var b strings.Builder
			for {
				if p.eof() {
					return nil, p.errAt(start, "unterminated string literal")
				}
				if p.src[p.pos] == '"' {
					p.pos++
					break
				}
				r, err := p.char()
				if err != nil {
					return nil, err
				}
				b.WriteRune(r)
			}
			item = &expr{kind: xLit, lit: b.String(), off: start}
		case c == '[':
			cls, err := p.class()
			if err != nil {
				return nil, err
			}
			item = cls
		case c == '.':
			p.pos++
			item = &expr{kind: xChars, ranges: []cpRange{{0, utf8.MaxRune}}, off: start}
		case isWordChar(c):
			name, _ := p.name()
			item = &expr{kind: xRef, name: name, off: start}
		case c == '(':
			p.pos++
			p.space(true)
			inner, err := p.alternates(true)
			if err != nil {
				return nil, err
			}
			if p.peek() != ')' {
				return nil, p.errAt(p.pos, "expecting ')' to close the group opened at line %d, found %s", p.errAt(start, "").Line, p.describe(p.pos))
			}
			p.pos++
			item = inner // one item for a following repetition
		case c == '<' || c == '!':
			return nil, p.errAt(start, "token references (<...>, !<...>) are not supported")
		case c == '*' || c == '+' || c == '?' || c == '{':
			if len(seq.kids) == 0 {
				return nil, p.errAt(start, "repetition %q has no preceding item", c)
			}
			lo, hi, err := p.repetition()
			if err != nil {
				return nil, err
			}
			last := seq.kids[len(seq.kids)-1]
			seq.kids[len(seq.kids)-1] = &expr{kind: xRepeat, kids: []*expr{last}, min: lo, max: hi, off: start}
			p.space(nested)
			continue
		default:
			if c == ')' && !nested {
				return nil, p.errAt(start, "unbalanced ')'")
			}
			return seq, nil
		}
		seq.kids = append(seq.kids, item)
		p.space(nested)
	}
	return seq, nil
}

// repetition parses * + ? {m} {m,} {m,n} {,n}.
func (p *parser) repetition() (lo, hi int, err error) {
	start := p.pos
	c := p.src[p.pos]
	p.pos++
	switch c {
	case '*':
		return 0, -1, nil
	case '+':
		return 1, -1, nil
	case '?':
		return 0, 1, nil
	}
	p.space(true)
	readInt := func() (int, bool, error) {
		s := p.pos
		for p.pos < len(p.src) && p.src[p.pos] >= '0' && p.src[p.pos] <= '9' {
			p.pos++
		}
		if s == p.pos {
			return 0, false, nil
		}
		v, err := strconv.Atoi(p.src[s:p.pos])
		if err != nil || v > p.lim.MaxRepetition {
			return 0, false, &Error{Msg: p.errAt(s, "repetition count %s is over the limit of %d", p.src[s:p.pos], p.lim.MaxRepetition).Error(), limit: true}
		}
		p.space(true)
		return v, true, nil
	}
	lo, okLo, err := readInt()
	if err != nil {
		return 0, 0, err
	}
	switch p.peek() {
	case '}':
		if !okLo {
			return 0, 0, p.errAt(p.pos, "expecting a number in {...}")
		}
		p.pos++
		return lo, lo, nil
	case ',':
		p.pos++
		p.space(true)
		hi, okHi, err := readInt()
		if err != nil {
			return 0, 0, err
		}
		if p.peek() != '}' {
			return 0, 0, p.errAt(p.pos, "expecting '}' to close the repetition, found %s", p.describe(p.pos))
		}
		p.pos++
		if !okHi {
			hi = -1
		}
		if okHi && hi < lo {
			return 0, 0, p.errAt(start, "repetition {%d,%d}: the maximum is below the minimum", lo, hi)
		}
		return lo, hi, nil
	}
	return 0, 0, p.errAt(p.pos, "expecting ',' or '}' in the repetition, found %s", p.describe(p.pos))
}

// char reads one (possibly escaped) character of a literal or class.
func (p *parser) char() (rune, error) {
	start := p.pos
	if p.eof() {
		return 0, p.errAt(start, "unexpected end of the grammar")
	}
	if p.src[p.pos] != '\\' {
		r, n := utf8.DecodeRuneInString(p.src[p.pos:])
		p.pos += n
		return r, nil
	}
	if p.pos+1 >= len(p.src) {
		return 0, p.errAt(start, "unexpected end of the grammar after '\\'")
	}
	e := p.src[p.pos+1]
	p.pos += 2
	hex := func(n int) (rune, error) {
		if p.pos+n > len(p.src) {
			return 0, p.errAt(start, "expecting %d hex digits after \\%c", n, e)
		}
		v, err := strconv.ParseUint(p.src[p.pos:p.pos+n], 16, 32)
		if err != nil {
			return 0, p.errAt(start, "expecting %d hex digits after \\%c", n, e)
		}
		p.pos += n
		if v > utf8.MaxRune || v >= 0xD800 && v <= 0xDFFF {
			return 0, p.errAt(start, "\\%c%s is not a Unicode scalar value", e, p.src[p.pos-n:p.pos])
		}
		return rune(v), nil
	}
	switch e {
	case 'x':
		return hex(2)
	case 'u':
		return hex(4)
	case 'U':
		return hex(8)
	case 't':
		return '\t', nil
	case 'r':
		return '\r', nil
	case 'n':
		return '\n', nil
	case '\\', '"', '[', ']':
		return rune(e), nil
	}
	r, _ := utf8.DecodeRuneInString(p.src[start+1:])
	return 0, p.errAt(start, "unknown escape \\%c", r)
}

// class parses [...] or [^...].
func (p *parser) class() (*expr, error) {
	start := p.pos
	p.pos++ // [
	neg := false
	if p.peek() == '^' {
		neg = true
		p.pos++
	}
	var rs []cpRange
	for {
		if p.eof() {
			return nil, p.errAt(start, "unterminated character class")
		}
		if p.src[p.pos] == ']' {
			p.pos++
			break
		}
		lo, err := p.char()
		if err != nil {
			return nil, err
		}
		hi := lo
		if p.peek() == '-' && p.pos+1 < len(p.src) && p.src[p.pos+1] != ']' {
			p.pos++
			hi, err = p.char()
			if err != nil {
				return nil, err
			}
			if hi < lo {
				return nil, p.errAt(start, "invalid range %q-%q in a character class", lo, hi)
			}
		}
		rs = append(rs, cpRange{lo, hi})
	}
	rs = normRanges(rs)
	if neg {
		rs = negateRanges(rs)
	}
	return &expr{kind: xChars, ranges: rs, off: start}, nil
}
