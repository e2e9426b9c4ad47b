package tokenizer

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzEncode: encoding never panics; on the GPT-2 byte-level BPE tokenizer
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
