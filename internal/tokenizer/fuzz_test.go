package tokenizer

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzEncode: encoding never panics, gives at least one token per
// MaxTokenBytes bytes, and EncodeLimit agrees with it; on the GPT-2
// byte-level BPE tokenizer
// valid UTF-8 round-trips through Decode, with special tokens parsed or
// not; the streaming decoder's output concatenates to Decode's. The
// SentencePiece tokenizer is exercised for panics and decoder consistency.
func FuzzEncode(f *testing.F) {
	for _, s := range []string{
		"", "Hello, world!", "  leading spaces and\ttabs\n", "naïve café — 東京 🚀", "x = f(3.14159) + y[2]",
		"<|im_start|>user\nhi<|im_end|>", "I'm sure they'll've done it", "1234567 apples", "\n\n\nthree newlines",
		"ÀÉÎÕÜ and ß", "   ", "a\r\nb", "def f(x):\n    return x**2  # square", "emoji 👩\u200d👩\u200d👧 family",
		"<s>Hello</s><unk>", "<|endoftext|><|endoftext|>x<|endof", "\xff\xfe invalid \xed\xa0\x80 \xc0\x80",
		"\x00\x01\x1f\x7f", "\u00a0\u2028\u3000", strings.Repeat("ab", 200),
	} {
		f.Add(s)
	}
	bpe := loadModel(f, models[0].gguf)
	spm := loadModel(f, models[2].gguf)
	f.Fuzz(func(t *testing.T, s string) {
		for _, tok := range []*Tokenizer{bpe, spm} {
			for _, parse := range []bool{false, true} {
				ids := tok.Encode(s, true, parse)
				for _, id := range ids {
					if id < 0 || id >= tok.VocabSize() {
						t.Fatalf("%s: id %d out of range", tok.Model(), id)
					}
				}
				// The size bound servers refuse by, and EncodeLimit.
				if L := tok.MaxTokenBytes(); L > 0 {
					if n := len(tok.Encode(s, false, parse)); n < (len(s)+L-1)/L {
						t.Fatalf("%s: %d tokens for %d bytes, below the bound (longest token %d bytes)", tok.Model(), n, len(s), L)
					}
				}
				if got, ok := tok.EncodeLimit(s, true, parse, len(ids)); !ok || !slices.Equal(got, ids) {
					t.Fatalf("%s: EncodeLimit at the length differs", tok.Model())
				}
				if _, ok := tok.EncodeLimit(s, true, parse, len(ids)-1); ok {
					t.Fatalf("%s: EncodeLimit below the length accepted", tok.Model())
				}
				if tok == bpe && utf8.ValidString(s) {
					if got := tok.Decode(tok.Encode(s, false, parse), parse); got != s {
						t.Fatalf("gpt2 parseSpecial=%v: Decode(Encode(%q)) = %q", parse, s, got)
					}
				}
				dec := tok.Decode(ids, parse)
				d := tok.NewDecoder(parse)
				var b strings.Builder
				for _, id := range ids {
					b.WriteString(d.Add(id))
				}
				b.WriteString(d.Flush())
				if b.String() != dec {
					t.Fatalf("%s: streamed %q, Decode %q", tok.Model(), b.String(), dec)
				}
			}
		}
	})
}
