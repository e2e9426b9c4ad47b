package grammar

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/kvserve/kvserve/internal/testassets"
)

// The mask benchmarks run on the real Llama-3 vocabulary (128,000 BPE
// tokens from the shared test assets, plus Llama-3's 256 special tokens):
// each iteration generates a fixed valid text token by token with a fresh
// Matcher (as a request does): Mask, then Accept, per token.
//
//	go test -run '^$' -bench Llama3 ./internal/grammar

var (
	llama3Once  sync.Once
	llama3V     *Vocab
	llama3Piece map[string]int
	llama3Err   error
)

// gpt2ByteDecoder inverts GPT-2's byte-to-unicode mapping of byte-level BPE
// token texts.
func gpt2ByteDecoder() map[rune]byte {
	var bs []int
	for b := '!'; b <= '~'; b++ {
		bs = append(bs, int(b))
	}
	for b := '¡'; b <= '¬'; b++ {
		bs = append(bs, int(b))
	}
	for b := '®'; b <= 'ÿ'; b++ {
		bs = append(bs, int(b))
	}
	in := map[int]bool{}
	for _, b := range bs {
		in[b] = true
	}
	dec := map[rune]byte{}
	for _, b := range bs {
		dec[rune(b)] = byte(b)
	}
	n := 0
	for b := range 256 {
		if !in[b] {
			dec[rune(256+n)] = byte(b)
			n++
		}
	}
	return dec
}

func llama3Vocab(tb testing.TB) (*Vocab, map[string]int) {
	path := testassets.Path(tb, "tokenizers/llama3/encoder.json")
	llama3Once.Do(func() {
		raw, err := os.ReadFile(path)
		if err != nil {
			llama3Err = err
			return
		}
		var enc map[string]int
		if llama3Err = json.Unmarshal(raw, &enc); llama3Err != nil {
			return
		}
		dec := gpt2ByteDecoder()
		const nSpecial = 256
		pieces := make([][]byte, len(enc)+nSpecial)
		llama3Piece = map[string]int{}
		for text, id := range enc {
			var b []byte
			for _, r := range text {
				b = append(b, dec[r])
			}
			pieces[id] = b
			llama3Piece[string(b)] = id
		}
		base := len(enc)
		for i := range nSpecial {
			pieces[base+i] = []byte(fmt.Sprintf("<|reserved_special_token_%d|>", i))
		}
		llama3V = NewVocab(pieces, func(id int) TokenKind {
			switch id - base {
			case 1, 8, 9: // <|end_of_text|>, <|eom_id|>, <|eot_id|>
				return EOG
			}
			if id >= base {
				return Control
			}
			return Normal
		})
	})
	if llama3Err != nil {
		tb.Fatal(llama3Err)
	}
	return llama3V, llama3Piece
}

// greedyTokens splits text into the longest vocabulary pieces.
func greedyTokens(text string, pieces map[string]int) []int {
	var out []int
	for i := 0; i < len(text); {
		for l := min(len(text)-i, 64); l > 0; l-- {
			if id, ok := pieces[text[i:i+l]]; ok {
				out = append(out, id)
				i += l
				break
			}
		}
	}
	return out
}

const benchSchema = `{"type":"object","properties":{
 "name":{"type":"string","maxLength":40},
 "age":{"type":"integer","minimum":0,"maximum":150},
 "email":{"type":"string","format":"email"},
 "address":{"type":"object","properties":{"street":{"type":"string"},"city":{"type":"string"},"zip":{"type":"string","pattern":"^[0-9]{5}$"}},"required":["street","city","zip"]},
 "tags":{"type":"array","items":{"type":"string","maxLength":20},"maxItems":8},
 "active":{"type":"boolean"}},
 "required":["name","age","email","address","tags","active"]}`

const benchJSON = `{
  "name": "Ada Lovelace, Countess of Lovelace",
  "age": 36,
  "email": "ada@example.org",
  "address": {"street": "12 St James's Square", "city": "London", "zip": "10001"},
  "tags": ["mathematics", "computing", "analytical engine", "poetry"],
  "active": false
}`

const benchArith = "(alpha+beta)*gamma= result1\n12+34*(5-6)= total\n(x1+x2)/(y1-y2)= slope\n" +
	"((a+b)*(c+d))-(e/f)= expr\n1234567+7654321= sum\n"

var benchCases = []struct {
	name, grammar, text string
}{
	{"json-schema", mustSchemaGBNF(benchSchema), benchJSON},
	{"free-json", AnyJSONGBNF, benchJSON},
	{"gbnf-arithmetic", arithGBNF, benchArith},
}

func BenchmarkMaskLlama3(b *testing.B) {
	v, pieces := llama3Vocab(b)
	benchMask(b, v, pieces)
}

// BenchmarkMaskKvtest is the same on kvtest-27m's 8192-token vocabulary
// (the embedded model's).
func BenchmarkMaskKvtest(b *testing.B) {
	v, _ := modelVocab(b)
	pieces := map[string]int{}
	for id := v.Size() - 1; id >= 0; id-- {
		if p := v.Piece(id); len(p) > 0 && !v.IsEOG(id) && !v.IsControl(id) {
			pieces[string(p)] = id
		}
	}
	benchMask(b, v, pieces)
}

func benchMask(b *testing.B, v *Vocab, pieces map[string]int) {
	for _, c := range benchCases {
		g, err := Parse(c.grammar, Limits{})
		if err != nil {
			b.Fatal(err)
		}
		toks := greedyTokens(c.text, pieces)
		b.Run(c.name, func(b *testing.B) {
			var st MatcherStats
			for b.Loop() {
				m, err := g.NewMatcher(v, false)
				if err != nil {
					b.Fatal(err)
				}
				for _, id := range toks {
					mk, err := m.Mask()
					if err != nil {
						b.Fatal(err)
					}
					if !has(mk, id) {
						b.Fatalf("token %d %q not allowed", id, v.Piece(id))
					}
					if err := m.Accept(id); err != nil {
						b.Fatal(err)
					}
				}
				if !m.CanEnd() {
					b.Fatal("text incomplete")
				}
				st = m.Stats()
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*len(toks)), "µs/token")
			b.ReportMetric(float64(len(toks)), "tokens")
			b.ReportMetric(float64(st.States), "states")
			b.ReportMetric(float64(st.Computed)/float64(len(toks)), "computed/token")
			b.ReportMetric(float64(st.Nodes)/float64(len(toks)), "nodes/token")
		})
	}
}

func BenchmarkVocabLlama3(b *testing.B) {
	v, _ := llama3Vocab(b)
	pieces := make([][]byte, v.Size())
	for i := range pieces {
		pieces[i] = v.Piece(i)
	}
	for b.Loop() {
		NewVocab(pieces, func(id int) TokenKind {
			if v.IsEOG(id) {
				return EOG
			}
			return Normal
		})
	}
	b.ReportMetric(float64(v.Nodes()), "trie-nodes")
}
