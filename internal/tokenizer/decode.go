package tokenizer

import (
	"unicode/utf8"
)

// piece returns the shared rendering of a token (nil for an id out of
// range, and for control and unknown tokens unless special).
func (t *Tokenizer) piece(id int, special bool) []byte {
	if !validID(id, len(t.texts)) {
		return nil
	}
	if !special && t.attrs[id]&(attrControl|attrUnknown) != 0 {
		return nil
	}
	return t.pieces[id]
}

// Piece returns the bytes one token stands for, as llama.cpp's
// token_to_piece does: byte-level BPE tokens are mapped back to raw bytes,
// SentencePiece tokens have U+2581 turned into spaces and byte tokens give
// their byte. Control and unknown-type tokens render as their text with
// special, as nothing without. An id out of range gives nothing. The
// result may be part of a UTF-8 sequence.
func (t *Tokenizer) Piece(id int, special bool) []byte {
	return append([]byte(nil), t.piece(id, special)...)
}

// stripsFirstSpace reports whether decoding removes the leading space of
// the token at index i of a sequence starting with first: with
// AddSpacePrefix, the first token's, or the second's after a BOS.
func (t *Tokenizer) stripsFirstSpace(i int, first int) bool {
	if !t.addSpacePrefix {
		return false
	}
	if first == t.bos && t.bos != NoToken {
		return i == 1
	}
	return i == 0
}

// Decode turns token ids back into text: the concatenation of their
// pieces, except that with AddSpacePrefix (SentencePiece) the space that
// Encode put at the start of the text is removed from the first token after
// the leading BOS, if any. Decode(Encode(s)) == s for byte-level BPE (when
// s is valid UTF-8), and for SentencePiece when s has no special tokens and
// every byte of s is representable. Unlike llama.cpp's llama_detokenize,
// Decode never "cleans up" spaces before punctuation: it is lossless. The
// result may hold invalid UTF-8 if the ids split a character.
func (t *Tokenizer) Decode(ids []int, special bool) string {
	var b []byte
	for i, id := range ids {
		p := t.piece(id, special)
		if len(p) > 0 && p[0] == ' ' && t.stripsFirstSpace(i, ids[0]) {
			p = p[1:]
		}
		b = append(b, p...)
	}
	return string(b)
}

// Decoder decodes a stream of tokens incrementally: Add returns the text
// completed by each token, holding back an incomplete UTF-8 sequence at the
// end until a later token completes it. The concatenation of everything
// Add and Flush return equals Decode of the whole sequence. A Decoder is
// not safe for concurrent use.
type Decoder struct {
	t       *Tokenizer
	special bool
	n       int // tokens added so far
	first   int // first token added
	noStrip bool
	pending []byte
}

// NewDecoder returns a decoder for a token sequence from its start: its
// output is exactly Decode's, including the removal of the space prefix.
func (t *Tokenizer) NewDecoder(special bool) *Decoder {
	return &Decoder{t: t, special: special}
}

// NewContinuationDecoder returns a decoder for tokens that continue an
// earlier sequence, such as tokens generated after a prompt: no leading
// space is removed (as llama-server streams pieces). For byte-level BPE it
// is the same as NewDecoder.
func (t *Tokenizer) NewContinuationDecoder(special bool) *Decoder {
	return &Decoder{t: t, special: special, noStrip: true}
}

// Add decodes one more token and returns the text it completes (possibly
// empty).
func (d *Decoder) Add(id int) string {
	if d.n == 0 {
		d.first = id
	}
	p := d.t.piece(id, d.special)
	if !d.noStrip && len(p) > 0 && p[0] == ' ' && d.t.stripsFirstSpace(d.n, d.first) {
		p = p[1:]
	}
	d.n++
	d.pending = append(d.pending, p...)
	k := completePrefix(d.pending)
	if k == 0 {
		return ""
	}
	out := string(d.pending[:k])
	d.pending = append(d.pending[:0], d.pending[k:]...)
	return out
}

// Flush returns whatever is held back (an incomplete UTF-8 sequence, as raw
// bytes) and resets the decoder to the state after the tokens seen so far.
func (d *Decoder) Flush() string {
	out := string(d.pending)
	d.pending = d.pending[:0]
	return out
}

// completePrefix returns the length of b without a trailing incomplete
// (but so far valid) UTF-8 sequence.
func completePrefix(b []byte) int {
	n := len(b)
	// The last sequence starts at most 3 bytes from the end.
	for i := n - 1; i >= 0 && i >= n-4; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return i
			}
			return n
		}
	}
	return n
}
