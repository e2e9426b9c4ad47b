package grammar

import (
	"slices"
	"unicode/utf8"
)

// normRanges sorts code point ranges and merges overlapping and adjacent
// ones.
func normRanges(rs []cpRange) []cpRange {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b cpRange) int { return int(a.lo) - int(b.lo) })
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 && r.lo <= out[n-1].hi+1 {
			out[n-1].hi = max(out[n-1].hi, r.hi)
			continue
		}
		out = append(out, r)
	}
	return out
}

// negateRanges returns the code points in [0, MaxRune] not in rs (rs
// normalized).
func negateRanges(rs []cpRange) []cpRange {
	var out []cpRange
	next := rune(0)
	for _, r := range rs {
		if r.lo > next {
			out = append(out, cpRange{next, r.lo - 1})
		}
		next = r.hi + 1
	}
	if next <= utf8.MaxRune {
		out = append(out, cpRange{next, utf8.MaxRune})
	}
	return out
}

// byteRange is an inclusive range of byte values.
type byteRange struct{ lo, hi byte }

// utf8Seqs appends to out the UTF-8 encodings of the scalar values in
// [lo, hi] (surrogates excluded) as sequences of byte ranges: every byte
// string matching one of the sequences encodes one of those values, and
// each value's encoding matches exactly one sequence.
func utf8Seqs(lo, hi rune, out [][]byteRange) [][]byteRange {
	if lo > hi {
		return out
	}
	if lo <= 0xDFFF && hi >= 0xD800 {
		out = utf8Seqs(lo, 0xD7FF, out)
		return utf8Seqs(0xE000, hi, out)
	}
	for _, b := range [...]rune{0x7F, 0x7FF, 0xFFFF} {
		if lo <= b && hi > b {
			out = utf8Seqs(lo, b, out)
			return utf8Seqs(b+1, hi, out)
		}
	}
	if hi < 0x80 {
		return append(out, []byteRange{{byte(lo), byte(hi)}})
	}
	n := utf8.RuneLen(lo)
	for i := 1; i < n; i++ {
		m := rune(1)<<(6*i) - 1
		if lo&^m != hi&^m {
			if lo&m != 0 {
				out = utf8Seqs(lo, lo|m, out)
				return utf8Seqs(lo|m+1, hi, out)
			}
			if hi&m != m {
				out = utf8Seqs(lo, hi&^m-1, out)
				return utf8Seqs(hi&^m, hi, out)
			}
		}
	}
	var a, b [4]byte
	utf8.EncodeRune(a[:], lo)
	utf8.EncodeRune(b[:], hi)
	seq := make([]byteRange, n)
	for i := range n {
		seq[i] = byteRange{a[i], b[i]}
	}
	return append(out, seq)
}
