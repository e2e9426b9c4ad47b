package grammar

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The regular-expression subset JSON Schema's "pattern" may use here
// (ECMA-262 syntax): literals, ".", classes [...] and [^...] with ranges,
// the escapes \d \D \w \W \s \S \t \n \r \f \v \0 \xHH \uHHHH \u{H...} and
// escaped punctuation, groups (...), (?:...) and (?<name>...), alternation,
// the quantifiers * + ? {n} {n,} {n,m} (lazy forms match the same strings),
// and the anchors ^ at the start and $ at the end. A pattern without ^ (or
// $) may have any text before (after) its match, as JSON Schema specifies.
// Backreferences, lookaround, word boundaries and Unicode property classes
// are refused.

// ecmaSpace is \s in ECMA-262.
var ecmaSpace = normRanges([]cpRange{
	{'\t', '\r'}, {' ', ' '}, {0xA0, 0xA0}, {0x1680, 0x1680}, {0x2000, 0x200A},
	{0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000}, {0xFEFF, 0xFEFF},
})

var (
	reDigit = []cpRange{{'0', '9'}}
	reWord  = normRanges([]cpRange{{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}})
	reDot   = negateRanges(normRanges([]cpRange{{'\n', '\n'}, {'\r', '\r'}, {0x2028, 0x2029}}))
)

type reParser struct {
	src    []rune
	pos    int
	maxRep int
}

// regexGBNF converts pattern into a GBNF expression for the content of a
// JSON string (between its quotes) whose decoded value matches pattern.
// anyChar is the name of a rule matching one character of JSON string
// content.
func regexGBNF(pattern, anyChar string, maxRep int) (string, error) {
	rs := []rune(pattern)
	start, end := 0, len(rs)
	anchoredStart := end > 0 && rs[0] == '^'
	if anchoredStart {
		start = 1
	}
	anchoredEnd := false
	if end > start && rs[end-1] == '$' {
		// An escaped $ is a literal.
		bs := 0
		for i := end - 2; i >= start && rs[i] == '\\'; i-- {
			bs++
		}
		if bs%2 == 0 {
			anchoredEnd = true
			end--
		}
	}
	p := &reParser{src: rs[start:end], maxRep: maxRep}
	inner, err := p.alt()
	if err != nil {
		return "", fmt.Errorf("pattern %q: %w", pattern, err)
	}
	if p.pos < len(p.src) {
		return "", fmt.Errorf("pattern %q: unbalanced ')'", pattern)
	}
	out := "(" + inner + ")"
	if !anchoredStart {
		out = anyChar + "* " + out
	}
	if !anchoredEnd {
		out += " " + anyChar + "*"
	}
	return out, nil
}

func (p *reParser) peek() rune {
	if p.pos < len(p.src) {
		return p.src[p.pos]
	}
	return -1
}

func (p *reParser) alt() (string, error) {
	var parts []string
	for {
		c, err := p.concat()
		if err != nil {
			return "", err
		}
		parts = append(parts, c)
		if p.peek() != '|' {
			break
		}
		p.pos++
	}
	if len(parts) == 1 {
		return parts[0], nil
	}
	return strings.Join(parts, " | "), nil
}

func (p *reParser) concat() (string, error) {
	var items []string
	for p.pos < len(p.src) {
		c := p.peek()
		if c == '|' || c == ')' {
			break
		}
		a, err := p.atom()
		if err != nil {
			return "", err
		}
		q, err := p.quantifier()
		if err != nil {
			return "", err
		}
		items = append(items, a+q)
	}
	if len(items) == 0 {
		return `""`, nil
	}
	return strings.Join(items, " "), nil
}

func (p *reParser) quantifier() (string, error) {
	q := ""
	switch c := p.peek(); c {
	case '*', '+', '?':
		p.pos++
		q = string(c)
	case '{':
		save := p.pos
		p.pos++
		lo, okLo := p.int()
		hi, okHi := lo, okLo
		if okLo && p.peek() == ',' {
			p.pos++
			hi, okHi = p.int()
			if !okHi {
				hi = -1
			}
		}
		if !okLo || p.peek() != '}' {
			p.pos = save
			return "", fmt.Errorf("invalid quantifier at offset %d", save)
		}
		p.pos++
		if lo > p.maxRep || hi > p.maxRep {
			return "", fmt.Errorf("repetition count over the limit of %d", p.maxRep)
		}
		switch {
		case hi < 0:
			q = fmt.Sprintf("{%d,}", lo)
		case hi < lo:
			return "", fmt.Errorf("quantifier {%d,%d}: the maximum is below the minimum", lo, hi)
		case hi == lo:
			q = fmt.Sprintf("{%d}", lo)
		default:
			q = fmt.Sprintf("{%d,%d}", lo, hi)
		}
	default:
		return "", nil
	}
	if p.peek() == '?' {
		p.pos++ // lazy: the same strings
	}
	switch p.peek() {
	case '*', '+', '?', '{':
		return "", fmt.Errorf("nothing to repeat at offset %d", p.pos)
	}
	return q, nil
}

func (p *reParser) int() (int, bool) {
	s := p.pos
	for p.pos < len(p.src) && p.src[p.pos] >= '0' && p.src[p.pos] <= '9' {
		p.pos++
	}
	if s == p.pos {
		return 0, false
	}
	v, err := strconv.Atoi(string(p.src[s:p.pos]))
	if err != nil {
		return 1 << 30, true
	}
	return v, true
}

func (p *reParser) atom() (string, error) {
	c := p.src[p.pos]
	switch c {
	case '(':
		p.pos++
		if p.peek() == '?' {
			rest := string(p.src[p.pos:min(p.pos+3, len(p.src))])
			switch {
			case strings.HasPrefix(rest, "?:"):
				p.pos += 2
			case strings.HasPrefix(rest, "?="), strings.HasPrefix(rest, "?!"), strings.HasPrefix(rest, "?<="), strings.HasPrefix(rest, "?<!"):
				return "", fmt.Errorf("lookaround assertions are not supported")
			case strings.HasPrefix(rest, "?<"):
				end := strings.IndexRune(string(p.src[p.pos:]), '>')
				if end < 0 {
					return "", fmt.Errorf("unterminated group name")
				}
				p.pos += utf8.RuneCountInString(string(p.src[p.pos:])[:end+1])
			default:
				return "", fmt.Errorf("unsupported group syntax (%s", rest)
			}
		}
		inner, err := p.alt()
		if err != nil {
			return "", err
		}
		if p.peek() != ')' {
			return "", fmt.Errorf("missing ')'")
		}
		p.pos++
		return "(" + inner + ")", nil
	case '[':
		rs, err := p.class()
		if err != nil {
			return "", err
		}
		return jsonCharExpr(rs), nil
	case '.':
		p.pos++
		return jsonCharExpr(reDot), nil
	case '\\':
		rs, err := p.escape(false)
		if err != nil {
			return "", err
		}
		return jsonCharExpr(rs), nil
	case '^', '$':
		return "", fmt.Errorf("anchor %q is supported only at the start (^) or end ($) of the pattern", c)
	case '*', '+', '?', '{':
		return "", fmt.Errorf("nothing to repeat at offset %d", p.pos)
	}
	p.pos++
	return jsonCharExpr([]cpRange{{c, c}}), nil
}

// escape reads an escape (p.src[p.pos] == '\\') and returns its code
// points.
func (p *reParser) escape(inClass bool) ([]cpRange, error) {
	p.pos++
	if p.pos >= len(p.src) {
		return nil, fmt.Errorf(`trailing '\'`)
	}
	c := p.src[p.pos]
	p.pos++
	one := func(r rune) ([]cpRange, error) { return []cpRange{{r, r}}, nil }
	hex := func(n int) (rune, error) {
		if p.pos+n > len(p.src) {
			return 0, fmt.Errorf(`\%c needs %d hex digits`, c, n)
		}
		v, err := strconv.ParseUint(string(p.src[p.pos:p.pos+n]), 16, 32)
		if err != nil {
			return 0, fmt.Errorf(`\%c needs %d hex digits`, c, n)
		}
		p.pos += n
		return rune(v), nil
	}
	switch c {
	case 'd':
		return reDigit, nil
	case 'D':
		return negateRanges(reDigit), nil
	case 'w':
		return reWord, nil
	case 'W':
		return negateRanges(reWord), nil
	case 's':
		return ecmaSpace, nil
	case 'S':
		return negateRanges(ecmaSpace), nil
	case 't':
		return one('\t')
	case 'n':
		return one('\n')
	case 'r':
		return one('\r')
	case 'f':
		return one('\f')
	case 'v':
		return one('\v')
	case '0':
		if d := p.peek(); d >= '0' && d <= '9' {
			return nil, fmt.Errorf("octal escapes are not supported")
		}
		return one(0)
	case 'x':
		r, err := hex(2)
		if err != nil {
			return nil, err
		}
		return one(r)
	case 'u':
		if p.peek() == '{' {
			end := p.pos + 1
			for end < len(p.src) && p.src[end] != '}' {
				end++
			}
			v, err := strconv.ParseUint(string(p.src[p.pos+1:end]), 16, 32)
			if end >= len(p.src) || err != nil || v > utf8.MaxRune {
				return nil, fmt.Errorf(`invalid \u{...} escape`)
			}
			p.pos = end + 1
			return one(rune(v))
		}
		r, err := hex(4)
		if err != nil {
			return nil, err
		}
		return one(r)
	case 'b':
		if inClass {
			return one('\b')
		}
		return nil, fmt.Errorf(`word boundaries (\b) are not supported`)
	case 'B':
		return nil, fmt.Errorf(`word boundaries (\B) are not supported`)
	case 'p', 'P':
		return nil, fmt.Errorf(`Unicode property classes (\%c{...}) are not supported`, c)
	case 'k':
		return nil, fmt.Errorf(`backreferences are not supported`)
	case 'c':
		return nil, fmt.Errorf(`control escapes (\c) are not supported`)
	}
	if c >= '1' && c <= '9' {
		return nil, fmt.Errorf(`backreferences are not supported`)
	}
	return one(c)
}

// class reads [...] or [^...] and returns its code points.
func (p *reParser) class() ([]cpRange, error) {
	p.pos++ // [
	neg := false
	if p.peek() == '^' {
		neg = true
		p.pos++
	}
	var rs []cpRange
	item := func() ([]cpRange, bool, error) {
		if p.peek() == '\\' {
			r, err := p.escape(true)
			return r, len(r) == 1 && r[0].lo == r[0].hi, err
		}
		c := p.src[p.pos]
		p.pos++
		return []cpRange{{c, c}}, true, nil
	}
	for {
		if p.pos >= len(p.src) {
			return nil, fmt.Errorf("unterminated character class")
		}
		if p.src[p.pos] == ']' {
			p.pos++
			break
		}
		lo, single, err := item()
		if err != nil {
			return nil, err
		}
		if single && p.peek() == '-' && p.pos+1 < len(p.src) && p.src[p.pos+1] != ']' {
			p.pos++
			hi, hsingle, err := item()
			if err != nil {
				return nil, err
			}
			if !hsingle {
				return nil, fmt.Errorf("a class escape cannot end a range")
			}
			if hi[0].lo < lo[0].lo {
				return nil, fmt.Errorf("range out of order in a character class")
			}
			rs = append(rs, cpRange{lo[0].lo, hi[0].lo})
			continue
		}
		rs = append(rs, lo...)
	}
	rs = normRanges(rs)
	if neg {
		rs = negateRanges(rs)
	}
	return rs, nil
}
