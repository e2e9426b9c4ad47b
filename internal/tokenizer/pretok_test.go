package tokenizer

import (
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dlclark/regexp2/v2"

	"github.com/kvserve/kvserve/internal/testassets"
)

var kinds = []struct {
	name string
	kind pretokKind
}{{"default", pretokDefault}, {"gpt2", pretokGPT2}, {"llama3", pretokLlama3}, {"qwen2", pretokQwen2}}

var (
	reOnce     sync.Once
	reCompiled map[pretokKind][]*regexp2.Regexp
)

func regexes(tb testing.TB) map[pretokKind][]*regexp2.Regexp {
	reOnce.Do(func() {
		reCompiled = map[pretokKind][]*regexp2.Regexp{}
		for k, list := range pretokRegexes {
			for _, s := range list {
				re, err := regexp2.Compile(s, regexp2.None, regexp2.OptionMaxBacktrackingStackSize(-1))
				if err != nil {
					panic(err)
				}
				reCompiled[k] = append(reCompiled[k], re)
			}
		}
	})
	return reCompiled
}

// regexSplit is the reference pre-tokenizer: the regexes evaluated by
// regexp2 over the code points (as llama.cpp decodes them), each regex
// splitting every piece of the previous one into its matches and the text
// between them.
func regexSplit(tb testing.TB, kind pretokKind, text string) []string {
	tb.Helper()
	text = llamaClean(text)
	var runes []rune
	var offs []int
	for i := 0; i < len(text); {
		r, n := decodeRune(text, i)
		runes = append(runes, r)
		offs = append(offs, i)
		i += n
	}
	offs = append(offs, len(text))
	pieces := [][2]int{{0, len(runes)}}
	if len(runes) == 0 {
		pieces = nil
	}
	for _, re := range regexes(tb)[kind] {
		var next [][2]int
		for _, p := range pieces {
			ms, err := re.FindAllRunesIndex(runes[p[0]:p[1]], -1)
			if err != nil {
				tb.Fatal(err)
			}
			at := 0
			for _, m := range ms {
				if m[0] > at {
					next = append(next, [2]int{p[0] + at, p[0] + m[0]})
				}
				if m[1] > m[0] {
					next = append(next, [2]int{p[0] + m[0], p[0] + m[1]})
				}
				at = m[1]
			}
			if at < p[1]-p[0] {
				next = append(next, [2]int{p[0] + at, p[1]})
			}
		}
		pieces = next
	}
	var out []string
	for _, p := range pieces {
		out = append(out, text[offs[p[0]]:offs[p[1]]])
	}
	return out
}

// An alphabet that exercises every branch of the matchers: ASCII and
// non-ASCII letters, numbers of each kind, ASCII and Unicode spaces and
// line breaks, punctuation and symbols, the contraction letters in both
// cases, marks, controls, surrogates and malformed bytes.
var alphabet = []string{
	"a", "b", "z", "A", "Z", "s", "t", "m", "d", "r", "e", "v", "l", "S", "T", "M", "D", "R", "E", "V", "L",
	"é", "ß", "ſ", "K", "İ", "東", "京", "ж", "ا", "ǅ", "ʰ",
	"0", "1", "9", "٣", "²", "½", "Ⅻ", "𝟘",
	" ", " ", " ", "\t", "\n", "\r", "\v", "\f", "\u0085", "\u00a0", "\u1680", "\u2003", "\u2028", "\u2029", "\u202f", "\u3000", "\u180e", "\x1c",
	"'", "'", "'", "’", ".", ",", "!", "?", "(", ")", "-", "_", "\"", "#", "%", "&", "*", "/", ":", ";", "@", "[", "\\", "]", "{", "}", "¡", "§", "«", "、", "。",
	"$", "+", "<", "=", ">", "^", "`", "|", "~", "€", "©", "😀", "🚀",
	"\u0301", "\u200d", "\x00", "\x7f", "\ufeff", "\ue000",
	"\xed\xa0\x80", "\xc0\x80", "\xff", "\x80", "\xe2\x82",
	"'s", "'T", "'re", "'VE", "'ll", "'Ll", "'d", " 's", "  ", "\r\n", " \n ", "123", "1234567",
}

func randomText(rng *rand.Rand, n int) string {
	var b strings.Builder
	for range n {
		b.WriteString(alphabet[rng.IntN(len(alphabet))])
	}
	return b.String()
}

func checkSplit(t *testing.T, kind pretokKind, name, text string) bool {
	t.Helper()
	got := pretokenize(kind, text)
	want := regexSplit(t, kind, text)
	if !slices.Equal(got, want) {
		t.Errorf("%s: pre-tokenizing %q\n  matcher %q\n  regex   %q", name, text, got, want)
		return false
	}
	return true
}

// TestPretokMatchesRegex proves the hand-written pre-tokenizers equal to
// the regexp2 evaluation of their regexes on random text over a hostile
// alphabet, on every single alphabet entry and pair, and on the real
// evaluation texts.
func TestPretokMatchesRegex(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, k := range kinds {
		fails := 0
		for _, a := range alphabet {
			for _, b := range alphabet {
				if !checkSplit(t, k.kind, k.name, a+b) {
					fails++
				}
			}
		}
		for i := 0; i < 3000 && fails < 5; i++ {
			if !checkSplit(t, k.kind, k.name, randomText(rng, 1+rng.IntN(40))) {
				fails++
			}
		}
	}
	t.Run("eval-text", func(t *testing.T) {
		for _, f := range []string{"eval/dev.txt", "eval/war-and-peace-part1.txt"} {
			raw, err := os.ReadFile(testassets.Path(t, f))
			if err != nil {
				t.Fatal(err)
			}
			// Two 64 KiB pieces of each, cut at line ends (the regex engine is slow).
			text := string(raw)
			for _, off := range []int{0, len(text) / 2} {
				chunk := text[off:min(off+1<<16, len(text))]
				chunk = chunk[strings.IndexByte(chunk, '\n')+1 : strings.LastIndexByte(chunk, '\n')+1]
				for _, k := range kinds {
					checkSplit(t, k.kind, k.name+" "+f, chunk)
				}
			}
		}
	})
}

// FuzzPretok: for any input, each hand-written pre-tokenizer agrees with
// its regexes, and its pieces concatenate back to the (cleaned) input.
func FuzzPretok(f *testing.F) {
	for _, s := range []string{"", "Hello, world!", "  leading spaces and\ttabs\n", "naïve café — 東京 🚀",
		"x = f(3.14159) + y[2]", "I'm sure they'll've done it", "1234567 apples", "\n\n\nthree newlines",
		"a\r\nb", "   ", "emoji 👩\u200d👩\u200d👧 family", "'S'LL'Ve", "\xed\xa0\x80\xc0\x80\xff", "$$+<=>^~|`"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, k := range kinds {
			if !checkSplit(t, k.kind, k.name, s) {
				return
			}
			if got := strings.Join(pretokenize(k.kind, s), ""); got != llamaClean(s) {
				t.Fatalf("%s: pieces of %q join to %q", k.name, s, got)
			}
		}
	})
}

func TestLlamaClean(t *testing.T) {
	cases := map[string]string{
		"ok":                 "ok",
		"\xff":               "\ufffd",
		"a\x80b":             "a\ufffdb",
		"\xc0\x80":           "\x00", // overlong, decoded as llama.cpp does
		"\xed\xa0\x80":       "\xed\xa0\x80",
		"\xe2\x82":           "\ufffd\ufffd",
		"\xf7\xbf\xbf\xbf":   "\ufffd\ufffd\ufffd\ufffd", // above U+10FFFF
		"\xf0\x9f\x9a\x80!!": "🚀!!",
	}
	for in, want := range cases {
		if got := llamaClean(in); got != want {
			t.Errorf("llamaClean(%q) = %q, want %q", in, got, want)
		}
	}
}
