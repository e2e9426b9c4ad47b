package tokenizer

import (
	"bufio"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/kvserve/kvserve/internal/gguf"
	"github.com/kvserve/kvserve/internal/testassets"
)

// The three test models and their reference files.
var models = []struct {
	name, gguf, ref string
}{
	{"kvtest-27m", "models/kvtest-27m-f16.gguf", "reference/kvtest-27m.json"},
	{"kvtest-qwen3-14m", "models/kvtest-qwen3-14m-f16.gguf", "reference/kvtest-qwen3-14m.json"},
	{"kvtest-spm-5m", "models/kvtest-spm-5m-f16.gguf", "reference/kvtest-spm-5m.json"},
}

var (
	tokMu    sync.Mutex
	tokCache = map[string]*Tokenizer{}
)

// loadModel returns the tokenizer of a shared test model (cached across
// tests).
func loadModel(tb testing.TB, rel string) *Tokenizer {
	tb.Helper()
	path := testassets.Path(tb, rel)
	tokMu.Lock()
	defer tokMu.Unlock()
	if t, ok := tokCache[path]; ok {
		return t
	}
	f, err := gguf.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	t, err := FromGGUF(f)
	if err != nil {
		tb.Fatalf("%s: %v", rel, err)
	}
	tokCache[path] = t
	return t
}

// loadLlama3 builds the Llama-3 vocabulary from encoder.json and vocab.bpe.
func loadLlama3(tb testing.TB) *Tokenizer {
	tb.Helper()
	dir := testassets.Path(tb, "tokenizers/llama3")
	tokMu.Lock()
	defer tokMu.Unlock()
	if t, ok := tokCache[dir]; ok {
		return t
	}
	raw, err := os.ReadFile(filepath.Join(dir, "encoder.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var enc map[string]int
	if err := json.Unmarshal(raw, &enc); err != nil {
		tb.Fatal(err)
	}
	tokens := make([]string, len(enc))
	for s, id := range enc {
		if id < 0 || id >= len(tokens) || tokens[id] != "" {
			tb.Fatalf("encoder.json: bad or repeated id %d", id)
		}
		tokens[id] = s
	}
	fh, err := os.Open(filepath.Join(dir, "vocab.bpe"))
	if err != nil {
		tb.Fatal(err)
	}
	defer fh.Close()
	var merges []string
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if line := sc.Text(); line != "" {
			merges = append(merges, line)
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	t, err := New(Vocab{
		Model: "gpt2", Pre: "llama-bpe", Tokens: tokens, Merges: merges,
		BOS: NoToken, EOS: NoToken, EOT: NoToken, EOM: NoToken, UNK: NoToken, PAD: NoToken, SEP: NoToken,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tokCache[dir] = t
	return t
}

type refCase struct {
	Text string `json:"text"`
	IDs  []int  `json:"ids"`
}

type reference struct {
	Cases   []refCase `json:"tokenizer_cases"`
	Prompts []struct {
		Text   string `json:"text"`
		Tokens []int  `json:"tokens"`
	} `json:"prompts"`
}

func readJSON(tb testing.TB, rel string, v any) {
	tb.Helper()
	raw, err := os.ReadFile(testassets.Path(tb, rel))
	if err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		tb.Fatalf("%s: %v", rel, err)
	}
}

// TestReferenceTokenization: every tokenizer_cases entry (no BOS) and every
// prompt (with BOS where the model adds one) of the three models, exactly.
func TestReferenceTokenization(t *testing.T) {
	for _, m := range models {
		t.Run(m.name, func(t *testing.T) {
			tok := loadModel(t, m.gguf)
			var ref reference
			readJSON(t, m.ref, &ref)
			if len(ref.Cases) == 0 || len(ref.Prompts) == 0 {
				t.Fatal("reference has no cases or prompts")
			}
			for _, c := range ref.Cases {
				got := tok.Encode(c.Text, false, true)
				if !slices.Equal(got, c.IDs) {
					t.Errorf("Encode(%q)\n got %v\nwant %v", c.Text, got, c.IDs)
				}
				if dec := tok.Decode(got, true); dec != c.Text {
					t.Errorf("Decode(Encode(%q)) = %q", c.Text, dec)
				}
			}
			for _, p := range ref.Prompts {
				got := tok.Encode(p.Text, true, true)
				if !slices.Equal(got, p.Tokens) {
					t.Errorf("Encode(%q, addSpecial)\n got %v\nwant %v", p.Text, got, p.Tokens)
				}
				if dec := tok.Decode(got, false); dec != p.Text {
					t.Errorf("Decode(Encode(%q, addSpecial)) = %q", p.Text, dec)
				}
			}
		})
	}
}

// TestLlama3 checks the real 128k Llama-3 vocabulary on the reference cases
// and on the first 20,000 characters of War and Peace.
func TestLlama3(t *testing.T) {
	tok := loadLlama3(t)
	var ref struct {
		Regex        string    `json:"pre_tokenizer_regex"`
		IgnoreMerges bool      `json:"ignore_merges"`
		Cases        []refCase `json:"cases"`
		WarAndPeace  struct {
			TextFile string `json:"text_file"`
			IDs      []int  `json:"ids"`
		} `json:"war_and_peace_first_20000_chars"`
	}
	readJSON(t, "reference/llama3-tokenizer.json", &ref)
	if !ref.IgnoreMerges || !tok.ignoreMerges {
		t.Errorf("ignore_merges: reference %v, tokenizer %v", ref.IgnoreMerges, tok.ignoreMerges)
	}
	if len(ref.Cases) == 0 {
		t.Fatal("no cases")
	}
	for _, c := range ref.Cases {
		got := tok.Encode(c.Text, false, false)
		if !slices.Equal(got, c.IDs) {
			t.Errorf("Encode(%q)\n got %v\nwant %v", c.Text, got, c.IDs)
		}
		if dec := tok.Decode(got, false); dec != c.Text {
			t.Errorf("Decode(Encode(%q)) = %q", c.Text, dec)
		}
	}
	raw, err := os.ReadFile(testassets.Path(t, ref.WarAndPeace.TextFile))
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	n := 0
	for i := range text {
		if n == 20000 {
			text = text[:i]
			break
		}
		n++
	}
	got := tok.Encode(text, false, false)
	if !slices.Equal(got, ref.WarAndPeace.IDs) {
		i := 0
		for i < len(got) && i < len(ref.WarAndPeace.IDs) && got[i] == ref.WarAndPeace.IDs[i] {
			i++
		}
		t.Fatalf("War and Peace: %d tokens, want %d; first difference at token %d", len(got), len(ref.WarAndPeace.IDs), i)
	}
	if dec := tok.Decode(got, false); dec != text {
		t.Error("War and Peace: Decode(Encode(text)) != text")
	}
}

// TestSpecialTokens: special-token parsing on and off, BOS/EOS, EOG.
func TestSpecialTokens(t *testing.T) {
	t.Run("gpt2", func(t *testing.T) {
		tok := loadModel(t, models[0].gguf)
		text := "<|im_start|>user\nhi<|im_end|>"
		on := tok.Encode(text, false, true)
		if len(on) < 2 || on[0] != 1 || on[len(on)-1] != 2 {
			t.Errorf("parseSpecial: %v, want <|im_start|> (1) first and <|im_end|> (2) last", on)
		}
		off := tok.Encode(text, false, false)
		if slices.Contains(off, 1) || slices.Contains(off, 2) {
			t.Errorf("no parseSpecial: %v contains a special token", off)
		}
		if dec := tok.Decode(off, false); dec != text {
			t.Errorf("no parseSpecial round trip: %q", dec)
		}
		if dec := tok.Decode(on, false); dec != "user\nhi" {
			t.Errorf("Decode(special=false) = %q, want control tokens dropped", dec)
		}
		if dec := tok.Decode(on, true); dec != text {
			t.Errorf("Decode(special=true) = %q", dec)
		}
		if string(tok.Piece(1, true)) != "<|im_start|>" || len(tok.Piece(1, false)) != 0 {
			t.Errorf("Piece(<|im_start|>) = %q / %q", tok.Piece(1, true), tok.Piece(1, false))
		}
		// Longest first: "<|endoftext|>" next to other specials.
		got := tok.Encode("a<|endoftext|><|im_end|>b", true, true)
		if want := []int{0}; got[0] != want[0] || !slices.Contains(got, 2) || slices.Index(got, 0) != 0 {
			t.Errorf("BOS + specials: %v", got)
		}
		if tok.BOS() != 0 || tok.EOS() != 0 || tok.EOT() != 2 || !tok.AddBOS() || tok.AddEOS() {
			t.Errorf("BOS %d EOS %d EOT %d AddBOS %v AddEOS %v", tok.BOS(), tok.EOS(), tok.EOT(), tok.AddBOS(), tok.AddEOS())
		}
		if !tok.IsEOG(0) || !tok.IsEOG(2) || tok.IsEOG(1) || tok.IsEOG(-1) || tok.IsEOG(1<<30) {
			t.Error("IsEOG: want exactly <|endoftext|> and <|im_end|> among 0..2")
		}
		if tok.TokenType(1) != TypeControl || tok.TokenText(1) != "<|im_start|>" || tok.VocabSize() != 8192 {
			t.Errorf("TokenType(1) = %d, TokenText(1) = %q, VocabSize = %d", tok.TokenType(1), tok.TokenText(1), tok.VocabSize())
		}
		if got := tok.Encode("", true, true); !slices.Equal(got, []int{0}) {
			t.Errorf("Encode(\"\", addSpecial) = %v, want [BOS]", got)
		}
	})
	t.Run("qwen2", func(t *testing.T) {
		tok := loadModel(t, models[1].gguf)
		if tok.AddBOS() {
			t.Error("qwen3 model must not add BOS")
		}
		if got := tok.Encode("hi", true, true); len(got) == 0 || got[0] == tok.BOS() {
			t.Errorf("Encode(addSpecial) = %v starts with BOS", got)
		}
	})
	t.Run("spm", func(t *testing.T) {
		tok := loadModel(t, models[2].gguf)
		if tok.BOS() != 1 || tok.EOS() != 2 || tok.UNK() != 0 || !tok.AddBOS() {
			t.Fatalf("BOS %d EOS %d UNK %d AddBOS %v", tok.BOS(), tok.EOS(), tok.UNK(), tok.AddBOS())
		}
		plain := tok.Encode("Hello", false, false)
		// "<s>" parsed: BOS, then "Hello" with a new space prefix.
		got := tok.Encode("<s>Hello", false, true)
		if want := append([]int{1}, plain...); !slices.Equal(got, want) {
			t.Errorf("Encode(<s>Hello, parseSpecial) = %v, want %v", got, want)
		}
		off := tok.Encode("<s>Hello", false, false)
		if slices.Contains(off, 1) {
			t.Errorf("Encode(<s>Hello) without parseSpecial = %v contains BOS", off)
		}
		if dec := tok.Decode(off, false); dec != "<s>Hello" {
			t.Errorf("round trip without parseSpecial: %q", dec)
		}
		if got := tok.Encode("<unk>", false, true); !slices.Equal(got, []int{0}) {
			t.Errorf("Encode(<unk>, parseSpecial) = %v, want [0]", got)
		}
		if got := tok.Encode("x", true, false); got[0] != 1 {
			t.Errorf("addSpecial: %v", got)
		}
		if dec := tok.Decode(tok.Encode("Hello world", true, false), false); dec != "Hello world" {
			t.Errorf("Decode after BOS = %q", dec)
		}
		if dec := tok.Decode(tok.Encode("  two spaces", false, false), false); dec != "  two spaces" {
			t.Errorf("Decode = %q", dec)
		}
		if p := tok.Piece(tok.Encode("\n", false, false)[1], false); string(p) != "\n" {
			t.Errorf("byte token piece = %q", p)
		}
		if !tok.IsEOG(2) || tok.IsEOG(1) {
			t.Error("IsEOG: want EOS only")
		}
	})
	t.Run("user-defined", func(t *testing.T) {
		v := smallVocab()
		v.Tokens = append(v.Tokens, "<tool>", "<ctl>")
		v.Types = append(v.Types, TypeUserDefined, TypeControl)
		tok, err := New(v)
		if err != nil {
			t.Fatal(err)
		}
		ud, ctl := len(v.Tokens)-2, len(v.Tokens)-1
		for _, parse := range []bool{false, true} {
			got := tok.Encode("ab<tool>ba<ctl>", false, parse)
			if !slices.Contains(got, ud) {
				t.Errorf("parseSpecial=%v: user-defined token not matched: %v", parse, got)
			}
			if slices.Contains(got, ctl) != parse {
				t.Errorf("parseSpecial=%v: control token matched=%v: %v", parse, !parse, got)
			}
			if dec := tok.Decode(got, true); dec != "ab<tool>ba<ctl>" {
				t.Errorf("round trip: %q", dec)
			}
		}
		// A user-defined token renders even without special.
		if string(tok.Piece(ud, false)) != "<tool>" {
			t.Errorf("Piece(user-defined) = %q", tok.Piece(ud, false))
		}
	})
}

// smallVocab is a byte-level BPE vocabulary with the 256 byte tokens and a
// few merges.
func smallVocab() Vocab {
	v := Vocab{Model: "gpt2", Pre: "gpt-2", BOS: NoToken, EOS: NoToken, EOT: NoToken, EOM: NoToken, UNK: NoToken, PAD: NoToken, SEP: NoToken}
	for b := 0; b < 256; b++ {
		v.Tokens = append(v.Tokens, byteToUnicode[b])
		v.Types = append(v.Types, TypeNormal)
	}
	v.Merges = []string{"a b", "ab a", "Ġ a"}
	v.Tokens = append(v.Tokens, "ab", "aba", "Ġa")
	v.Types = append(v.Types, TypeNormal, TypeNormal, TypeNormal)
	return v
}

// TestRoundTrip: Decode(Encode(s)) == s for the byte-level BPE tokenizers
// on assorted text and on the evaluation text.
func TestRoundTrip(t *testing.T) {
	texts := []string{
		"", " ", "\n", "Hello, world!", "  leading\tand trailing  ", "a\r\nb\r\n\r\n", "ÀÉÎÕÜ ß naïve",
		"東京 🚀 👩\u200d👩\u200d👧", "x = f(3.14159) + y[2]", "I'm sure they'll've DONE IT'S", "\u00a0\u2028\u3000 odd spaces",
		"1234567890 ١٢٣ ²³ Ⅻ", "<|endoftext|> <|im_start|>", "\x00\x01\x7f control", strings.Repeat("ab", 3000),
		strings.Repeat(" ", 300) + "x", "tab\t\t\tend\t",
	}
	raw, err := os.ReadFile(testassets.Path(t, "eval/dev.txt"))
	if err != nil {
		t.Fatal(err)
	}
	texts = append(texts, string(raw[:200000]))
	for _, m := range models[:2] {
		tok := loadModel(t, m.gguf)
		for _, s := range texts {
			for _, parse := range []bool{false, true} {
				ids := tok.Encode(s, false, parse)
				if dec := tok.Decode(ids, parse); dec != s {
					t.Errorf("%s parseSpecial=%v: Decode(Encode(%.60q)) = %.60q", m.name, parse, s, dec)
				}
			}
		}
	}
	tok := loadLlama3(t)
	for _, s := range texts {
		if dec := tok.Decode(tok.Encode(s, false, false), false); dec != s {
			t.Errorf("llama3: Decode(Encode(%.60q)) = %.60q", s, dec)
		}
	}
}

// TestDecoder: the streaming decoder across characters split between
// tokens (byte-level BPE and SentencePiece byte fallback).
func TestDecoder(t *testing.T) {
	text := "naïve café — 東京 🚀 👩\u200d👩\u200d👧 ok"
	for _, m := range models {
		tok := loadModel(t, m.gguf)
		ids := tok.Encode(text, true, false)
		want := tok.Decode(ids, false)
		if want != text {
			t.Fatalf("%s: Decode = %q", m.name, want)
		}
		d := tok.NewDecoder(false)
		var got strings.Builder
		held := 0
		for _, id := range ids {
			s := d.Add(id)
			if !utf8.ValidString(s) {
				t.Errorf("%s: Add returned invalid UTF-8 %q", m.name, s)
			}
			if s == "" && len(tok.Piece(id, false)) > 0 {
				held++
			}
			got.WriteString(s)
		}
		got.WriteString(d.Flush())
		if got.String() != want {
			t.Errorf("%s: streamed %q, want %q", m.name, got.String(), want)
		}
		if held == 0 {
			t.Errorf("%s: no token was held back; the test text should split characters", m.name)
		}
	}
	// A character split over three tokens comes out whole with the third.
	tok := loadModel(t, models[0].gguf)
	d := tok.NewDecoder(false)
	euro := "€" // e2 82 ac
	var ids []int
	for i := 0; i < len(euro); i++ {
		id, ok := tok.TokenID(byteToUnicode[euro[i]])
		if !ok {
			t.Fatalf("no byte token for %#x", euro[i])
		}
		ids = append(ids, id)
	}
	if a, b, c := d.Add(ids[0]), d.Add(ids[1]), d.Add(ids[2]); a != "" || b != "" || c != euro {
		t.Errorf("split €: %q %q %q", a, b, c)
	}
	// An unfinished character is returned raw by Flush.
	d.Add(ids[0])
	if f := d.Flush(); f != euro[:1] {
		t.Errorf("Flush = %q", f)
	}
	// A continuation decoder keeps the SentencePiece leading space.
	spm := loadModel(t, models[2].gguf)
	ids = spm.Encode("time", false, false)
	if s := spm.NewContinuationDecoder(false).Add(ids[0]); !strings.HasPrefix(s, " ") {
		t.Errorf("continuation decoder dropped the space: %q", s)
	}
	if s := spm.NewDecoder(false).Add(ids[0]); strings.HasPrefix(s, " ") {
		t.Errorf("decoder kept the prefix space: %q", s)
	}
}

// TestMalformedVocab: inconsistent vocabularies give errors, not panics.
func TestMalformedVocab(t *testing.T) {
	base := smallVocab
	cases := []struct {
		name string
		edit func(v *Vocab)
		want string
	}{
		{"unknown model", func(v *Vocab) { v.Model = "bert" }, `unknown tokenizer model "bert"`},
		{"unknown pre", func(v *Vocab) { v.Pre = "tekken" }, `unknown pre-tokenizer "tekken"`},
		{"no tokens", func(v *Vocab) { v.Tokens, v.Types = nil, nil }, "no tokens"},
		{"scores length", func(v *Vocab) { v.Scores = make([]float32, 3) }, "3 scores"},
		{"types length", func(v *Vocab) { v.Types = v.Types[:10] }, "10 token types"},
		{"BOS out of range", func(v *Vocab) { v.BOS = len(v.Tokens) }, "BOS token id"},
		{"EOT negative", func(v *Vocab) { v.EOT = -5 }, "EOT token id"},
		{"EOG out of range", func(v *Vocab) { v.ExtraEOG = []int{1 << 20} }, "end-of-generation"},
		{"AddBOS without BOS", func(v *Vocab) { v.AddBOS = true }, "no BOS"},
		{"AddEOS without EOS", func(v *Vocab) { v.AddEOS = true }, "no EOS"},
		{"duplicate token", func(v *Vocab) { v.Tokens[258] = "a" }, "duplicate token"},
		{"spm with merges", func(v *Vocab) { v.Model = "llama" }, "merges"},
	}
	for _, c := range cases {
		v := base()
		c.edit(&v)
		_, err := New(v)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
	if _, err := New(Vocab{Model: "gpt2", Pre: "bogus"}); err == nil || !strings.Contains(err.Error(), "llama-bpe") {
		t.Errorf("unknown pre error should list the supported ones: %v", err)
	}
	// Odd but accepted input: malformed merges, unknown token types.
	v := base()
	v.Merges = append(v.Merges, "", "x", "nospace", " leading")
	v.Types[5] = 42
	tok, err := New(v)
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Encode("abab a", false, false); len(got) == 0 {
		t.Error("no tokens")
	}
	// Out-of-range ids are harmless.
	if tok.Decode([]int{-1, 1 << 40, 97}, true) != "a" || tok.TokenText(-3) != "" || tok.TokenType(1<<40) != TypeUndefined {
		t.Error("out-of-range ids")
	}
}

// TestMalformedGGUF: bad tokenizer metadata in a GGUF file gives errors.
func TestMalformedGGUF(t *testing.T) {
	kv := func(k string, v gguf.Value) gguf.KV { return gguf.KV{Key: k, Value: v} }
	str := func(s string) gguf.Value { return gguf.Value{Type: gguf.TypeString, V: s} }
	u32 := func(x uint32) gguf.Value { return gguf.Value{Type: gguf.TypeUint32, V: x} }
	strs := func(s ...string) gguf.Value {
		return gguf.Value{Type: gguf.TypeArray, V: &gguf.Array{Elem: gguf.TypeString, Values: s}}
	}
	f32s := func(x ...float32) gguf.Value {
		return gguf.Value{Type: gguf.TypeArray, V: &gguf.Array{Elem: gguf.TypeFloat32, Values: x}}
	}
	i32s := func(x ...int32) gguf.Value {
		return gguf.Value{Type: gguf.TypeArray, V: &gguf.Array{Elem: gguf.TypeInt32, Values: x}}
	}
	spm := func(extra ...gguf.KV) []gguf.KV {
		return append([]gguf.KV{kv("tokenizer.ggml.model", str("llama")), kv("tokenizer.ggml.tokens", strs("<unk>", "<s>", "</s>", "\u2581a"))}, extra...)
	}
	cases := []struct {
		name string
		kvs  []gguf.KV
		want string
	}{
		{"no model", []gguf.KV{kv("tokenizer.ggml.tokens", strs("a"))}, "no string tokenizer.ggml.model"},
		{"unknown model", []gguf.KV{kv("tokenizer.ggml.model", str("rwkv"))}, `unknown tokenizer model "rwkv"`},
		{"unknown pre", []gguf.KV{kv("tokenizer.ggml.model", str("gpt2")), kv("tokenizer.ggml.pre", str("gemma4"))}, `unknown pre-tokenizer "gemma4"`},
		{"no merges", []gguf.KV{kv("tokenizer.ggml.model", str("gpt2")), kv("tokenizer.ggml.pre", str("gpt-2")), kv("tokenizer.ggml.tokens", strs("a"))}, "no tokenizer.ggml.merges"},
		{"no tokens", []gguf.KV{kv("tokenizer.ggml.model", str("llama"))}, "no tokenizer.ggml.tokens"},
		{"tokens not strings", []gguf.KV{kv("tokenizer.ggml.model", str("llama")), kv("tokenizer.ggml.tokens", f32s(1))}, "not an array of strings"},
		{"short scores", spm(kv("tokenizer.ggml.scores", f32s(0, 1))), "2 scores for 4 tokens"},
		{"scores type", spm(kv("tokenizer.ggml.scores", strs("a", "b", "c", "d"))), "element type"},
		{"short types", spm(kv("tokenizer.ggml.token_type", i32s(1, 1, 1))), "3 token types for 4 tokens"},
		{"types type", spm(kv("tokenizer.ggml.token_type", f32s(1, 1, 1, 1))), "not an array of int32"},
		{"eos out of range", spm(kv("tokenizer.ggml.eos_token_id", u32(4))), "eos_token_id = 4 is out of range"},
		{"eos not integer", spm(kv("tokenizer.ggml.eos_token_id", str("2"))), "not an integer"},
		{"add_bos not bool", spm(kv("tokenizer.ggml.add_bos_token", u32(1))), "not a bool"},
		{"add_bos without bos", []gguf.KV{kv("tokenizer.ggml.model", str("llama")), kv("tokenizer.ggml.tokens", strs("a")), kv("tokenizer.ggml.add_bos_token", gguf.Value{Type: gguf.TypeBool, V: true})}, "no BOS"},
	}
	for _, c := range cases {
		var buf strings.Builder
		if err := gguf.Write(&buf, c.kvs, nil); err != nil {
			t.Fatalf("%s: writing: %v", c.name, err)
		}
		f, err := gguf.Parse([]byte(buf.String()))
		if err != nil {
			t.Fatalf("%s: parsing: %v", c.name, err)
		}
		_, err = FromGGUF(f)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
	// A well-formed small SentencePiece vocabulary with defaults: the
	// default BOS/EOS/UNK ids (1, 2, 0) exist.
	var buf strings.Builder
	if err := gguf.Write(&buf, spm(kv("tokenizer.ggml.scores", f32s(0, 0, 0, -1, 7))), nil); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse([]byte(buf.String()))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	// No byte tokens: an unknown character falls back to UNK.
	if got := tok.Encode("a€", true, false); !slices.Equal(got, []int{1, 3, 0, 0, 0}) {
		t.Errorf("Encode = %v, want [1 3 0 0 0]", got)
	}
}

// TestDevTxt tokenizes the perplexity text with special tokens parsed, as
// the perplexity command does, and logs the time taken.
func TestDevTxt(t *testing.T) {
	raw, err := os.ReadFile(testassets.Path(t, "eval/dev.txt"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	seps := strings.Count(text, "<|endoftext|>")
	for _, m := range models {
		tok := loadModel(t, m.gguf)
		tok.cacheMu.Lock()
		tok.cache = make(map[string][]int32) // measure a cold cache
		tok.cacheMu.Unlock()
		start := time.Now()
		ids := tok.Encode(text, true, true)
		el := time.Since(start)
		t.Logf("%s: %d bytes -> %d tokens in %v", m.name, len(text), len(ids), el)
		if m.name != "kvtest-spm-5m" {
			body, want := ids, seps
			if tok.AddBOS() {
				body, want = ids[1:], seps+1
			}
			if n := countID(ids, 0); n != want {
				t.Errorf("%s: %d <|endoftext|> tokens, want %d", m.name, n, want)
			}
			if dec := tok.Decode(body, true); dec != text {
				t.Errorf("%s: round trip of dev.txt failed", m.name)
			}
		}
	}
}

func countID(ids []int, id int) int {
	n := 0
	for _, x := range ids {
		if x == id {
			n++
		}
	}
	return n
}

func BenchmarkEncodeDevTxt(b *testing.B) {
	raw, err := os.ReadFile(testassets.Path(b, "eval/dev.txt"))
	if err != nil {
		b.Fatal(err)
	}
	text := string(raw)
	for _, m := range models {
		tok := loadModel(b, m.gguf)
		b.Run(m.name, func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				tok.cacheMu.Lock()
				tok.cache = make(map[string][]int32)
				tok.cacheMu.Unlock()
				tok.Encode(text, true, true)
			}
		})
	}
	tok := loadLlama3(b)
	b.Run("llama3", func(b *testing.B) {
		b.SetBytes(int64(len(text)))
		for b.Loop() {
			tok.cacheMu.Lock()
			tok.cache = make(map[string][]int32)
			tok.cacheMu.Unlock()
			tok.Encode(text, false, true)
		}
	})
}

// TestSPMWords proves the word-by-word SentencePiece encoding (with its
// cache) equal to llama.cpp's whole-text algorithm on the evaluation text
// and random text, and checks that a vocabulary with a token spanning a
// word start disables it.
func TestSPMWords(t *testing.T) {
	tok := loadModel(t, models[2].gguf)
	if !tok.spmSegments {
		t.Fatal("the test SentencePiece vocabulary should allow word-by-word encoding")
	}
	raw, err := os.ReadFile(testassets.Path(t, "eval/dev.txt"))
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{string(raw)}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		texts = append(texts, randomText(rng, 1+rng.IntN(30)))
	}
	st := encodeState{limit: -1}
	for _, text := range texts {
		esc := strings.ReplaceAll(" "+text, " ", spaceMark)
		got := tok.spmEncode(esc, &st, nil)
		want := tok.spmEncodeWhole(esc, &st.spm, nil)
		if !slices.Equal(got, want) {
			t.Fatalf("word-by-word encoding of %.80q differs", text)
		}
	}
	if spmSegmentable([]string{"a", "▁b", "▁▁", "c▁▁"}) {
		t.Error(`"c▁▁" spans a word start`)
	}
	if !spmSegmentable([]string{"a", "▁b", "▁▁", "▁▁c", "<0x20>"}) {
		t.Error("no token spans a word start")
	}
}

// TestConcurrentEncode: one tokenizer used from several goroutines (the
// shared word cache) gives the same results as sequential use.
func TestConcurrentEncode(t *testing.T) {
	raw, err := os.ReadFile(testassets.Path(t, "eval/dev.txt"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(raw[:100000]), "\n")
	for _, m := range models {
		tok := loadModel(t, m.gguf)
		want := make([][]int, len(lines))
		for i, l := range lines {
			want[i] = tok.Encode(l, true, true)
		}
		tok.cacheMu.Lock()
		tok.cache = make(map[string][]int32)
		tok.cacheMu.Unlock()
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for i := range lines {
					j := (i + g*len(lines)/4) % len(lines)
					if got := tok.Encode(lines[j], true, true); !slices.Equal(got, want[j]) {
						t.Errorf("%s: concurrent Encode(%q) differs", m.name, lines[j])
						return
					}
				}
			})
		}
		wg.Wait()
	}
}

func BenchmarkEncodePrompt(b *testing.B) {
	tok := loadModel(b, models[0].gguf)
	prompt := "<|im_start|>user\nThe kernel scheduler decides which task runs next because of priorities.<|im_end|>\n<|im_start|>assistant\n"
	b.SetBytes(int64(len(prompt)))
	for b.Loop() {
		tok.Encode(prompt, true, true)
	}
}

func BenchmarkDecoder(b *testing.B) {
	tok := loadModel(b, models[0].gguf)
	ids := tok.Encode("naïve café — 東京 🚀 and some more ordinary English text to stream.", false, false)
	for b.Loop() {
		d := tok.NewDecoder(false)
		for _, id := range ids {
			d.Add(id)
		}
		d.Flush()
	}
}
