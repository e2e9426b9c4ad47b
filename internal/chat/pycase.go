package chat

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Python's str.upper/lower apply Unicode's full (SpecialCasing)
// mappings, which Go's strings.ToUpper/ToLower do not. These cover the
// unconditional one-to-many mappings outside Greek Extended, and Final_Sigma.

var upperSpecial = map[rune]string{
	0x00DF: "SS", 0x0149: "\u02BCN", 0x01F0: "J\u030C", 0x0390: "\u0399\u0308\u0301",
	0x03B0: "\u03A5\u0308\u0301", 0x0587: "\u0535\u0552", 0x1E96: "H\u0331", 0x1E97: "T\u0308",
	0x1E98: "W\u030A", 0x1E99: "Y\u030A", 0x1E9A: "A\u02BE", 0xFB00: "FF", 0xFB01: "FI",
	0xFB02: "FL", 0xFB03: "FFI", 0xFB04: "FFL", 0xFB05: "ST", 0xFB06: "ST",
	0xFB13: "\u0544\u0546", 0xFB14: "\u0544\u0535", 0xFB15: "\u0544\u053B", 0xFB16: "\u054E\u0546",
	0xFB17: "\u0544\u053D",
}

func pyUpper(s string) string {
	if isASCIIString(s) {
		return strings.ToUpper(s)
	}
	var b strings.Builder
	for _, r := range s {
		if m, ok := upperSpecial[r]; ok {
			b.WriteString(m)
		} else {
			b.WriteRune(unicode.ToUpper(r))
		}
	}
	return b.String()
}

func isCased(r rune) bool {
	return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r)
}

func isCaseIgnorable(r rune) bool {
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk) ||
		r == '\'' || r == '.' || r == ':' || r == '^' || r == '`' || r == 0x00B7 || r == 0x2019
}

func pyLower(s string) string {
	if isASCIIString(s) {
		return strings.ToLower(s)
	}
	rs := []rune(s)
	var b strings.Builder
	for i, r := range rs {
		switch r {
		case 0x0130:
			b.WriteString("i\u0307")
		case 0x03A3:
			b.WriteRune(sigma(rs, i))
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// sigma applies the Final_Sigma condition to the capital sigma at i.
func sigma(rs []rune, i int) rune {
	before := false
	for j := i - 1; j >= 0; j-- {
		if isCaseIgnorable(rs[j]) {
			continue
		}
		before = isCased(rs[j])
		break
	}
	after := false
	for j := i + 1; j < len(rs); j++ {
		if isCaseIgnorable(rs[j]) {
			continue
		}
		after = isCased(rs[j])
		break
	}
	if before && !after {
		return 0x03C2
	}
	return 0x03C3
}

func isASCIIString(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// strMethodNames lists Python's str methods; those this package does not
// implement are defined (so `is defined` holds) but fail when called.
var strMethodNames = map[string]bool{}

func init() {
	for _, n := range strings.Fields(`capitalize casefold center count encode endswith expandtabs find format
		format_map index isalnum isalpha isascii isdecimal isdigit isidentifier islower isnumeric isprintable
		isspace istitle isupper join ljust lower lstrip maketrans partition removeprefix removesuffix replace
		rfind rindex rjust rpartition rsplit rstrip split splitlines startswith strip swapcase title translate
		upper zfill`) {
		strMethodNames[n] = true
	}
}
