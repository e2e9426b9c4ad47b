package tokenizer

import (
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// This file holds the byte-level BPE pre-tokenizers: hand-written matchers
// equivalent to the pre-tokenizer regular expressions (as llama.cpp's
// unicode.cpp does for the GPT-2 and Llama-3 ones), the Unicode character
// classes they use, and llama.cpp's lenient UTF-8 decoding. pretok_test.go
// proves each matcher equal to the regexp2 evaluation of its regex.

// Character classes of a code point, as bits.
const (
	catValid  uint8 = 1 << iota // set for every code point (0 means "outside the text")
	catSpace                    // \s: the Unicode White_Space property
	catLetter                   // \p{L}
	catNumber                   // \p{N}
	catPunct                    // \p{P}
)

var asciiCat = func() (t [128]uint8) {
	for r := range t {
		t[r] = computeCat(rune(r))
	}
	return t
}()

var (
	bmpOnce sync.Once
	bmpCat  []uint8
)

func computeCat(r rune) uint8 {
	c := catValid
	if unicode.IsSpace(r) {
		c |= catSpace
	}
	if unicode.IsLetter(r) {
		c |= catLetter
	}
	if unicode.IsNumber(r) {
		c |= catNumber
	}
	if unicode.IsPunct(r) {
		c |= catPunct
	}
	return c
}

// runeCat returns the classes of r (never 0).
func runeCat(r rune) uint8 {
	if r < 0x80 && r >= 0 {
		return asciiCat[r]
	}
	if r < 0x10000 && r >= 0 {
		bmpOnce.Do(func() {
			t := make([]uint8, 0x10000)
			for i := range t {
				t[i] = computeCat(rune(i))
			}
			bmpCat = t
		})
		return bmpCat[r]
	}
	return computeCat(r)
}

// decodeRune decodes one code point at s[i] the way llama.cpp's
// unicode_cpt_from_utf8 does: overlong forms and surrogates are accepted,
// a malformed or truncated sequence gives U+FFFD and consumes one byte.
// (Code points above U+10FFFF, on which llama.cpp throws, are also treated as
// malformed.)
func decodeRune(s string, i int) (rune, int) {
	b0 := s[i]
	switch {
	case b0 < 0x80:
		return rune(b0), 1
	case b0&0x40 == 0:
		return utf8.RuneError, 1
	case b0&0x20 == 0:
		if i+1 >= len(s) || s[i+1]&0xC0 != 0x80 {
			return utf8.RuneError, 1
		}
		return rune(b0&0x1F)<<6 | rune(s[i+1]&0x3F), 2
	case b0&0x10 == 0:
		if i+2 >= len(s) || s[i+1]&0xC0 != 0x80 || s[i+2]&0xC0 != 0x80 {
			return utf8.RuneError, 1
		}
		return rune(b0&0x0F)<<12 | rune(s[i+1]&0x3F)<<6 | rune(s[i+2]&0x3F), 3
	case b0&0x08 == 0:
		if i+3 >= len(s) || s[i+1]&0xC0 != 0x80 || s[i+2]&0xC0 != 0x80 || s[i+3]&0xC0 != 0x80 {
			return utf8.RuneError, 1
		}
		r := rune(b0&0x07)<<18 | rune(s[i+1]&0x3F)<<12 | rune(s[i+2]&0x3F)<<6 | rune(s[i+3]&0x3F)
		if r > unicode.MaxRune {
			return utf8.RuneError, 1
		}
		return r, 4
	}
	return utf8.RuneError, 1
}

// appendRune appends the UTF-8 encoding of r as llama.cpp's
// unicode_cpt_to_utf8 does (surrogates are encoded like any other code point).
func appendRune(b []byte, r rune) []byte {
	switch {
	case r < 0x80:
		return append(b, byte(r))
	case r < 0x800:
		return append(b, 0xC0|byte(r>>6), 0x80|byte(r)&0x3F)
	case r < 0x10000:
		return append(b, 0xE0|byte(r>>12), 0x80|byte(r>>6)&0x3F, 0x80|byte(r)&0x3F)
	}
	return append(b, 0xF0|byte(r>>18), 0x80|byte(r>>12)&0x3F, 0x80|byte(r>>6)&0x3F, 0x80|byte(r)&0x3F)
}

// llamaClean returns s as llama.cpp's BPE path sees it: decoded to code
// points with decodeRune and re-encoded. Valid UTF-8 is returned unchanged;
// each malformed byte becomes U+FFFD and overlong forms are normalized.
func llamaClean(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	b := make([]byte, 0, len(s)+len(s)/2)
	for i := 0; i < len(s); {
		r, n := decodeRune(s, i)
		b = appendRune(b, r)
		i += n
	}
	return string(b)
}

// pretokKind selects a pre-tokenizer.
type pretokKind int

const (
	pretokDefault pretokKind = iota // llama.cpp's LLAMA_VOCAB_PRE_TYPE_DEFAULT: four regexes in sequence
	pretokGPT2                      // GPT-2
	pretokLlama3                    // Llama 3 (digits in groups of up to three)
	pretokQwen2                     // Qwen 2 (single digits)
)

// The regular expressions each pre-tokenizer implements (Hugging Face /
// llama.cpp spelling). A text is cut at the boundaries of successive
// leftmost matches; text between matches becomes a piece of its own.
// The default pre-tokenizer applies its regexes one after another, each to
// every piece produced by the previous one.
var pretokRegexes = map[pretokKind][]string{
	pretokGPT2:   {`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`},
	pretokLlama3: {`(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`},
	pretokQwen2:  {`(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`},
	pretokDefault: {
		`[\p{P}\$\+<=>\^~\|]+`,
		`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`,
		`\p{N}+`,
		`[0-9][0-9][0-9]`,
	},
}

// pieceSink collects piece boundaries (end indices into the rune slice),
// dropping empty pieces.
type pieceSink struct {
	ends []int32
	last int
}

func (p *pieceSink) add(end int) {
	if end > p.last {
		p.ends = append(p.ends, int32(end))
		p.last = end
	}
}

// split cuts r[0:len(r)] (with classes c) into pre-tokens and appends their
// end indices to ends.
func split(kind pretokKind, r []rune, c []uint8, ends []int32) []int32 {
	p := pieceSink{ends: ends}
	switch kind {
	case pretokGPT2:
		splitGPT2(r, c, 0, len(r), &p)
	case pretokLlama3:
		splitLlama3(r, c, 0, len(r), 3, &p)
	case pretokQwen2:
		splitLlama3(r, c, 0, len(r), 1, &p)
	default:
		splitDefault(r, c, &p)
	}
	return p.ends
}

// splitGPT2 implements
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// on r[lo:hi].
func splitGPT2(r []rune, c []uint8, lo, hi int, p *pieceSink) {
	at := func(i int) uint8 {
		if i < hi {
			return c[i]
		}
		return 0
	}
	p.last = lo
	for pos := lo; pos < hi; {
		cp, f := r[pos], c[pos]
		if cp == '\'' && pos+1 < hi {
			n := r[pos+1]
			if n == 's' || n == 't' || n == 'm' || n == 'd' {
				pos += 2
				p.add(pos)
				continue
			}
			if pos+2 < hi {
				nn := r[pos+2]
				if (n == 'r' && nn == 'e') || (n == 'v' && nn == 'e') || (n == 'l' && nn == 'l') {
					pos += 3
					p.add(pos)
					continue
				}
			}
		}
		f2 := f
		if cp == ' ' {
			f2 = at(pos + 1)
		}
		switch {
		case f2&catLetter != 0:
			if cp == ' ' {
				pos++
			}
			for at(pos)&catLetter != 0 {
				pos++
			}
			p.add(pos)
			continue
		case f2&catNumber != 0:
			if cp == ' ' {
				pos++
			}
			for at(pos)&catNumber != 0 {
				pos++
			}
			p.add(pos)
			continue
		case f2 != 0 && f2&(catSpace|catLetter|catNumber) == 0:
			if cp == ' ' {
				pos++
			}
			for g := at(pos); g != 0 && g&(catSpace|catLetter|catNumber) == 0; g = at(pos) {
				pos++
			}
			p.add(pos)
			continue
		}
		nws := 0
		for at(pos+nws)&catSpace != 0 {
			nws++
		}
		switch {
		case nws > 1 && pos+nws < hi: // \s+(?!\S): leave the last space to the next word
			pos += nws - 1
		case nws > 0:
			pos += nws
		default:
			pos++
		}
		p.add(pos)
	}
}

// splitLlama3 implements
//
//	(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,D}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//
// on r[lo:hi], with D = maxDigits (3 for Llama 3, 1 for Qwen 2). As in
// llama.cpp, the case-insensitive contractions are matched on ASCII letters.
func splitLlama3(r []rune, c []uint8, lo, hi, maxDigits int, p *pieceSink) {
	at := func(i int) uint8 {
		if i < hi {
			return c[i]
		}
		return 0
	}
	lower := func(x rune) rune {
		if x >= 'A' && x <= 'Z' {
			return x + ('a' - 'A')
		}
		return x
	}
	p.last = lo
	for pos := lo; pos < hi; {
		cp, f := r[pos], c[pos]
		if cp == '\'' && pos+1 < hi {
			n := lower(r[pos+1])
			if n == 's' || n == 't' || n == 'm' || n == 'd' {
				pos += 2
				p.add(pos)
				continue
			}
			if pos+2 < hi {
				nn := lower(r[pos+2])
				if (n == 'r' && nn == 'e') || (n == 'v' && nn == 'e') || (n == 'l' && nn == 'l') {
					pos += 3
					p.add(pos)
					continue
				}
			}
		}
		// [^\r\n\p{L}\p{N}]?\p{L}+
		if cp != '\r' && cp != '\n' && f&catNumber == 0 {
			if f&catLetter != 0 || at(pos+1)&catLetter != 0 {
				pos++
				for at(pos)&catLetter != 0 {
					pos++
				}
				p.add(pos)
				continue
			}
		}
		// \p{N}{1,D}
		if f&catNumber != 0 {
			ini := pos
			for at(pos)&catNumber != 0 {
				pos++
				if pos-ini >= maxDigits {
					p.add(pos)
					ini = pos
				}
			}
			p.add(pos)
			continue
		}
		//  ?[^\s\p{L}\p{N}]+[\r\n]*
		f2 := f
		if cp == ' ' {
			f2 = at(pos + 1)
		}
		if f2&(catSpace|catLetter|catNumber) == 0 {
			if cp == ' ' {
				pos++
			}
			for g := at(pos); g != 0 && g&(catSpace|catLetter|catNumber) == 0; g = at(pos) {
				pos++
			}
			for pos < hi && (r[pos] == '\r' || r[pos] == '\n') {
				pos++
			}
			p.add(pos)
			continue
		}
		nws, lastNL := 0, -1
		for at(pos+nws)&catSpace != 0 {
			if x := r[pos+nws]; x == '\r' || x == '\n' {
				lastNL = pos + nws + 1
			}
			nws++
		}
		switch {
		case lastNL >= 0: // \s*[\r\n]+
			pos = lastNL
		case nws > 1 && pos+nws < hi: // \s+(?!\S)
			pos += nws - 1
		case nws > 0: // \s+
			pos += nws
		default:
			pos++
		}
		p.add(pos)
	}
}

// isDefaultPunct is the class [\p{P}\$\+<=>\^~\|].
func isDefaultPunct(r rune, c uint8) bool {
	return c&catPunct != 0 || (r < 0x80 && strings.ContainsRune("$+<=>^~|", r))
}

// splitDefault applies llama.cpp's default BPE pre-tokenizer, four regexes in
// sequence, each splitting every piece left by the previous one:
//
//	[\p{P}\$\+<=>\^~\|]+
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
//	\p{N}+
//	[0-9][0-9][0-9]
func splitDefault(r []rune, c []uint8, p *pieceSink) {
	// Stage 1: runs of the punctuation class, and the runs between them.
	var s1 []int32
	for i := 0; i < len(r); {
		in := isDefaultPunct(r[i], c[i])
		j := i + 1
		for j < len(r) && isDefaultPunct(r[j], c[j]) == in {
			j++
		}
		s1 = append(s1, int32(j))
		i = j
	}
	// Stage 2: GPT-2 within each piece.
	var s2 pieceSink
	lo := 0
	for _, e := range s1 {
		splitGPT2(r, c, lo, int(e), &s2)
		lo = int(e)
	}
	// Stages 3 and 4 within each piece.
	lo = 0
	for _, e := range s2.ends {
		hi := int(e)
		for i := lo; i < hi; {
			in := c[i]&catNumber != 0
			j := i + 1
			for j < hi && (c[j]&catNumber != 0) == in {
				j++
			}
			// Stage 4 on r[i:j]: groups of three ASCII digits.
			p.last = i
			for k := i; k+3 <= j; {
				if isDigit(r[k]) && isDigit(r[k+1]) && isDigit(r[k+2]) {
					p.add(k)
					p.add(k + 3)
					k += 3
				} else {
					k++
				}
			}
			p.add(j)
			i = j
		}
		lo = hi
	}
}

func isDigit(r rune) bool { return r >= '0' && r <= '9' }
