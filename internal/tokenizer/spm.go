package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// spmBigram is a candidate merge of two adjacent symbols into a token.
type spmBigram struct {
	score       float32
	left, right int32
	size        int32 // bytes of the merged text
}

// before orders the queue: highest score first, then the leftmost.
func (a spmBigram) before(b spmBigram) bool {
	return a.score > b.score || (a.score == b.score && a.left < b.left)
}

type spmScratch struct {
	start, n   []int32 // byte offset and length of each symbol (n = 0 once merged away)
	prev, next []int32
	heap       []spmBigram
}

func (s *spmScratch) push(b spmBigram) { s.heap = heapPush(s.heap, b) }

func (s *spmScratch) pop() spmBigram {
	top, h := heapPop(s.heap)
	s.heap = h
	return top
}

// utf8Len is llama.cpp's unicode_len_utf8: a sequence length from the
// lead byte alone.
func utf8Len(b byte) int {
	return [16]int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4}[b>>4]
}

func (t *Tokenizer) spmTryBigram(text string, s *spmScratch, l, r int32) {
	if l < 0 || r < 0 {
		return
	}
	a := s.start[l]
	size := s.n[l] + s.n[r]
	id, ok := t.tokenID[text[a:a+size]]
	if !ok {
		return
	}
	s.push(spmBigram{score: t.scores[id], left: l, right: r, size: size})
}

// spmEncodeWhole is llama.cpp's llm_tokenizer_spm_session::tokenize on an
// already escaped text (spaces replaced by U+2581): start from UTF-8
// characters, repeatedly merge the adjacent pair whose concatenation is the
// token of highest score (leftmost among equals), then emit each symbol's
// token, or its bytes as byte tokens when it is not one.
//
// llama.cpp's resegment step also consults a map of earlier merges, but a
// symbol that is not a token is always a single character, which no merge
// can have produced, so that lookup never succeeds and is omitted here.
func (t *Tokenizer) spmEncodeWhole(text string, s *spmScratch, out []int) []int {
	s.start, s.n, s.prev, s.next, s.heap = s.start[:0], s.n[:0], s.prev[:0], s.next[:0], s.heap[:0]
	idx := int32(0)
	for off := 0; off < len(text); {
		n := min(utf8Len(text[off]), len(text)-off)
		s.start = append(s.start, int32(off))
		s.n = append(s.n, int32(n))
		s.prev = append(s.prev, idx-1)
		off += n
		if off == len(text) {
			s.next = append(s.next, -1)
		} else {
			s.next = append(s.next, idx+1)
		}
		idx++
	}
	for i := int32(1); i < idx; i++ {
		t.spmTryBigram(text, s, i-1, i)
	}
	for len(s.heap) > 0 {
		b := s.pop()
		if s.n[b.left] == 0 || s.n[b.right] == 0 || s.n[b.left]+s.n[b.right] != b.size {
			continue
		}
		s.n[b.left] += s.n[b.right]
		s.n[b.right] = 0
		nx := s.next[b.right]
		s.next[b.left] = nx
		if nx >= 0 {
			s.prev[nx] = b.left
		}
		t.spmTryBigram(text, s, s.prev[b.left], b.left)
		t.spmTryBigram(text, s, b.left, nx)
	}
	for i := int32(0); i >= 0 && idx > 0; i = s.next[i] {
		sym := text[s.start[i] : s.start[i]+s.n[i]]
		if id, ok := t.tokenID[sym]; ok {
			out = append(out, int(id))
			continue
		}
		for j := 0; j < len(sym); j++ {
			if id := t.spmByte[sym[j]]; id >= 0 {
				out = append(out, int(id))
			}
		}
	}
	return out
}

const spaceMark = "\u2581"

// spmSegmentable reports whether no token can span the start of a run of
// U+2581: every U+2581 inside every token follows another U+2581. Then, in
// valid UTF-8, the merges never join a symbol ending before such a run
// with one starting it, so the text can be encoded word by word (each word
// starting at a run of U+2581) with the same result, and words cached.
func spmSegmentable(tokens []string) bool {
	for _, s := range tokens {
		for k := 1; k < len(s); k++ {
			i := strings.Index(s[k:], spaceMark)
			if i < 0 {
				break
			}
			k += i
			if k < len(spaceMark) || s[k-len(spaceMark):k] != spaceMark {
				return false
			}
		}
	}
	return true
}

// spmEncode encodes an escaped text: word by word through the cache when
// the vocabulary allows it (see spmSegmentable), else as a whole (in
// segments when very long); it stops once past st.limit tokens, when that
// is set.
func (t *Tokenizer) spmEncode(text string, st *encodeState, out []int) []int {
	s := &st.spm
	if !t.spmSegments || !utf8.ValidString(text) {
		return t.spmEncodeSegments(text, s, out)
	}
	for len(text) > 0 {
		// The word ends where the next run of U+2581 starts.
		end := len(text)
		for k := 1; k < len(text); {
			i := strings.Index(text[k:], spaceMark)
			if i < 0 {
				break
			}
			k += i
			if k < len(spaceMark) || text[k-len(spaceMark):k] != spaceMark {
				end = k
				break
			}
			k += len(spaceMark)
		}
		out = t.spmWord(text[:end], s, out)
		text = text[end:]
		if st.limit >= 0 && len(out) > st.limit {
			break
		}
	}
	return out
}

func (t *Tokenizer) spmWord(word string, s *spmScratch, out []int) []int {
	if len(word) > maxCachedWord {
		// Long words rarely repeat: not cached; a pathological one (tens
		// of kilobytes without a space) is encoded in pieces.
		return t.spmEncodeSegments(word, s, out)
	}
	t.cacheMu.RLock()
	ids, ok := t.cache[word]
	t.cacheMu.RUnlock()
	if ok {
		for _, id := range ids {
			out = append(out, int(id))
		}
		return out
	}
	n := len(out)
	out = t.spmEncodeWhole(word, s, out)
	ids = make([]int32, len(out)-n)
	for i, id := range out[n:] {
		ids[i] = int32(id)
	}
	t.cachePut(word, ids)
	return out
}

// spmEncodeSegments is spmEncodeWhole on a text cut into segments of at
// most maxWordBytes, each cut at the start of a run of U+2581 when one
// lies in the segment's second half, else at a symbol boundary. A text up
// to that size is encoded whole, as llama.cpp does; a longer one with
// bounded work and scratch memory per segment.
func (t *Tokenizer) spmEncodeSegments(text string, s *spmScratch, out []int) []int {
	for len(text) > maxWordBytes {
		cut, space := 0, 0
		for off := 0; off <= maxWordBytes; off += min(utf8Len(text[off]), len(text)-off) {
			cut = off
			if off > 0 && strings.HasPrefix(text[off:], spaceMark) && !strings.HasSuffix(text[:off], spaceMark) {
				space = off
			}
		}
		if space >= maxWordBytes/2 {
			cut = space
		}
		out = t.spmEncodeWhole(text[:cut], s, out)
		text = text[cut:]
	}
	return t.spmEncodeWhole(text, s, out)
}
