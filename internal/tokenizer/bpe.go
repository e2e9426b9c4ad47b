package tokenizer

import (
	"encoding/hex"
	"strings"
)

// GPT-2's byte-to-unicode table: bytes that are printable Latin-1 map to
// themselves, the other 68 to U+0100 onwards in byte order.
var byteToUnicode, unicodeToByte = func() (enc [256]string, dec map[rune]byte) {
	dec = make(map[rune]byte, 256)
	printable := func(b int) bool {
		return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
	}
	n := 0
	for b := 0; b < 256; b++ {
		r := rune(b)
		if !printable(b) {
			r = rune(256 + n)
			n++
		}
		enc[b] = string(r)
		dec[r] = byte(b)
	}
	return enc, dec
}()

// byteEncode maps raw bytes to their byte-level BPE text.
func byteEncode(s string) string {
	var b strings.Builder
	b.Grow(2 * len(s))
	for i := 0; i < len(s); i++ {
		b.WriteString(byteToUnicode[s[i]])
	}
	return b.String()
}

// decodeByteLevel is llama.cpp's llama_decode_text: a byte-level BPE token
// text back to raw bytes. A code point outside the table renders as
// "[UNK_BYTE_0x<its utf-8 in hex><the token text>]".
func decodeByteLevel(s string) []byte {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		r, n := decodeRune(s, i)
		i += n
		if b, ok := unicodeToByte[r]; ok {
			out = append(out, b)
			continue
		}
		out = append(out, "[UNK_BYTE_0x"...)
		out = append(out, hex.EncodeToString(appendRune(nil, r))...)
		out = append(out, s...)
		out = append(out, ']')
	}
	return out
}

// bpeBigram is a candidate merge of two adjacent symbols.
type bpeBigram struct {
	rank        int32
	left, right int32 // symbol indices
	lid, rid    int32 // the symbols' interned ids when the bigram was made
}

func (a bpeBigram) before(b bpeBigram) bool {
	return a.rank < b.rank || (a.rank == b.rank && a.left < b.left)
}

// bpeScratch is reusable working memory for BPE on one word.
type bpeScratch struct {
	id         []int32 // interned id of each symbol; -1 once merged away
	prev, next []int32
	heap       []bpeBigram
}

func (s *bpeScratch) push(b bpeBigram) { s.heap = heapPush(s.heap, b) }

func (s *bpeScratch) pop() bpeBigram {
	top, h := heapPop(s.heap)
	s.heap = h
	return top
}

// heapItem is what the merge queues hold: before orders them.
type heapItem[T any] interface{ before(T) bool }

// heapPush adds x to the binary min-heap h (by before).
func heapPush[T heapItem[T]](h []T, x T) []T {
	h = append(h, x)
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !h[i].before(h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
	return h
}

// heapPop removes and returns the first item of h.
func heapPop[T heapItem[T]](h []T) (T, []T) {
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	for i := 0; ; {
		l := 2*i + 1
		if l >= len(h) {
			break
		}
		m := l
		if r := l + 1; r < len(h) && h[r].before(h[l]) {
			m = r
		}
		if !h[m].before(h[i]) {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	return top, h
}

func (t *Tokenizer) addBigram(s *bpeScratch, l, r int32) {
	if l < 0 || r < 0 {
		return
	}
	lid, rid := s.id[l], s.id[r]
	m, ok := t.merges[uint64(uint32(lid))<<32|uint64(uint32(rid))]
	if !ok {
		return
	}
	s.push(bpeBigram{rank: m.rank, left: l, right: r, lid: lid, rid: rid})
}

// bpeWord appends the tokens of one pre-tokenized word (raw bytes),
// using and filling the per-word cache. A word longer than maxWordBytes
// (a pathological input: a run of letters or spaces kilobytes long) is
// encoded in pieces of at most that many bytes, cut at UTF-8 character
// starts, so the work and scratch memory per word stay bounded; below
// that length the result is llama.cpp's.
func (t *Tokenizer) bpeWord(word string, s *bpeScratch, out []int) []int {
	for len(word) > maxWordBytes {
		k := cutRunes(word, maxWordBytes)
		for _, id := range t.bpeCompute(word[:k], s) {
			out = append(out, int(id))
		}
		word = word[k:]
	}
	t.cacheMu.RLock()
	ids, ok := t.cache[word]
	t.cacheMu.RUnlock()
	if !ok {
		ids = t.bpeCompute(word, s)
		t.cachePut(word, ids)
	}
	for _, id := range ids {
		out = append(out, int(id))
	}
	return out
}

// cutRunes returns a cut point in s at most n bytes in (n < len(s)) that
// does not split a UTF-8 sequence (n itself when there is none).
func cutRunes(s string, n int) int {
	for k := n; k > n-4 && k > 0; k-- {
		if s[k]&0xC0 != 0x80 {
			return k
		}
	}
	return n
}

// bpeCompute is llama.cpp's llm_tokenizer_bpe_session::tokenize for one
// word: with ignore_merges a word that is itself a token is emitted as is;
// otherwise the word's byte symbols are merged by rank (lowest first, the
// leftmost among equals) until no adjacent pair has a merge.
func (t *Tokenizer) bpeCompute(word string, s *bpeScratch) []int32 {
	if t.ignoreMerges {
		if id, ok := t.tokenID[byteEncode(word)]; ok {
			return []int32{id}
		}
	}
	n := len(word)
	s.id, s.prev, s.next, s.heap = s.id[:0], s.prev[:0], s.next[:0], s.heap[:0]
	for i := 0; i < n; i++ {
		s.id = append(s.id, t.byteSym[word[i]])
		s.prev = append(s.prev, int32(i-1))
		nx := int32(i + 1)
		if i == n-1 {
			nx = -1
		}
		s.next = append(s.next, nx)
	}
	for i := 1; i < n; i++ {
		t.addBigram(s, int32(i-1), int32(i))
	}
	for len(s.heap) > 0 {
		b := s.pop()
		if s.id[b.left] != b.lid || s.id[b.right] != b.rid {
			continue // stale: one side has changed since
		}
		m := t.merges[uint64(uint32(b.lid))<<32|uint64(uint32(b.rid))]
		s.id[b.left] = m.result
		s.id[b.right] = -1
		nx := s.next[b.right]
		s.next[b.left] = nx
		if nx >= 0 {
			s.prev[nx] = b.left
		}
		t.addBigram(s, s.prev[b.left], b.left)
		t.addBigram(s, b.left, nx)
	}
	var out []int32
	for i := int32(0); i >= 0 && n > 0; i = s.next[i] {
		sym := s.id[i]
		if tok := t.internTok[sym]; tok >= 0 {
			out = append(out, tok)
			continue
		}
		// Not a token: llama.cpp looks up each byte of the symbol's text
		// as a one-byte token and drops those it does not find.
		txt := t.internText[sym]
		for j := 0; j < len(txt); j++ {
			if tok, ok := t.tokenID[txt[j:j+1]]; ok {
				out = append(out, tok)
			}
		}
	}
	return out
}
