package model_test

import (
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/kvserve/kvserve/internal/gguf"
	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/model"
	"github.com/kvserve/kvserve/internal/parallel"
	"github.com/kvserve/kvserve/internal/tensor"
	"github.com/kvserve/kvserve/internal/testassets"
)

type reference struct {
	Prompts []struct {
		Text       string    `json:"text"`
		Tokens     []int     `json:"tokens"`
		Argmax     []int     `json:"argmax"`
		LastLogits []float32 `json:"last_logits"`
	} `json:"prompts"`
	Greedy struct {
		Tokens []int `json:"tokens"`
	} `json:"greedy"`
}

func loadRef(t *testing.T, name string) *reference {
	b, err := os.ReadFile(testassets.Path(t, "reference/"+name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var r reference
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

func open(t *testing.T, rel string) *model.Model { return openB(t, rel) }

func openB(t testing.TB, rel string) *model.Model {
	f, err := gguf.Open(testassets.Path(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	m, err := model.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func newCache(t *testing.T, m *model.Model, typ tensor.Type, threads int) *kvcache.Cache {
	return newCacheB(t, m, typ, threads)
}

func newCacheB(t testing.TB, m *model.Model, typ tensor.Type, threads int) *kvcache.Cache {
	types := make([]tensor.Type, m.NLayer)
	for i := range types {
		types[i] = typ
	}
	c, err := kvcache.New(kvcache.Config{Layers: m.NLayer, KVHeads: m.NHeadKV, HeadDimK: m.HeadDim, HeadDimV: m.HeadDimV,
		Seqs: 1, Ctx: m.NCtxTrain, Threads: threads, TypeK: types, TypeV: types})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// Every reference prompt: logits of the last position within 1e-2 of the
// float32 reference and argmax equal at every position.
func TestReferenceLogits(t *testing.T) {
	for _, tc := range []struct{ file, ref string }{
		{"models/kvtest-27m-f16.gguf", "kvtest-27m"},
		{"models/kvtest-qwen3-14m-f16.gguf", "kvtest-qwen3-14m"},
		{"models/kvtest-spm-5m-f16.gguf", "kvtest-spm-5m"},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			ref := loadRef(t, tc.ref)
			m := open(t, tc.file)
			pool := parallel.New(2)
			defer pool.Close()
			r := model.NewRunner(m, pool, 512)
			for pi, p := range ref.Prompts {
				kv := newCache(t, m, tensor.F32, 2)
				n := len(p.Tokens)
				b := &model.Batch{Tokens: p.Tokens, Pos: make([]int, n), Output: make([]bool, n)}
				for i := range b.Pos {
					b.Pos[i] = i
					b.Output[i] = true
				}
				logits, err := r.Forward(b, kv)
				if err != nil {
					t.Fatal(err)
				}
				V := m.NVocab
				for i := 0; i < n; i++ {
					if got := argmax(logits[i*V : (i+1)*V]); got != p.Argmax[i] {
						t.Errorf("prompt %d position %d: argmax %d, want %d", pi, i, got, p.Argmax[i])
					}
				}
				last := logits[(n-1)*V : n*V]
				maxd := 0.0
				for i, v := range p.LastLogits {
					maxd = math.Max(maxd, math.Abs(float64(last[i]-v)))
				}
				t.Logf("prompt %d (%d tokens): max |Δlogit| = %.2e", pi, n, maxd)
				if maxd > 1e-2 {
					t.Errorf("prompt %d: max abs logit difference %g > 1e-2", pi, maxd)
				}
			}
		})
	}
}

// The 48-token greedy continuation of kvtest-27m equals the reference,
// decoding one token at a time after the prompt (f32 and f16 caches).
func TestGreedyContinuation(t *testing.T) {
	ref := loadRef(t, "kvtest-27m")
	m := open(t, "models/kvtest-27m-f16.gguf")
	pool := parallel.New(2)
	defer pool.Close()
	r := model.NewRunner(m, pool, 64)
	want := ref.Greedy.Tokens
	const nPrompt = 5 // BOS + "Once upon a time"
	for _, typ := range []tensor.Type{tensor.F32, tensor.F16} {
		kv := newCache(t, m, typ, 2)
		toks := append([]int(nil), want[:nPrompt]...)
		pos := make([]int, nPrompt)
		for i := range pos {
			pos[i] = i
		}
		logits, err := r.Forward(&model.Batch{Tokens: toks, Pos: pos}, kv)
		if err != nil {
			t.Fatal(err)
		}
		for len(toks) < len(want) {
			next := argmax(logits)
			toks = append(toks, next)
			logits, err = r.Forward(&model.Batch{Tokens: []int{next}, Pos: []int{len(toks) - 1}}, kv)
			if err != nil {
				t.Fatal(err)
			}
		}
		for i := range want {
			if toks[i] != want[i] {
				t.Fatalf("%s cache: token %d = %d, want %d\n got %v\nwant %v", typ, i, toks[i], want[i], toks, want)
			}
		}
	}
}

// A decode step allocates nothing (pages are allocated once per
// PageTokens positions, not per token).
func TestDecodeAllocatesNothing(t *testing.T) {
	m := open(t, "models/kvtest-27m-f16.gguf")
	pool := parallel.New(2)
	defer pool.Close()
	r := model.NewRunner(m, pool, 8)
	kv := newCache(t, m, tensor.F16, 2)
	b := &model.Batch{Tokens: []int{5}, Pos: []int{0}}
	if _, err := r.Forward(b, kv); err != nil { // allocates the first pages
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(50, func() {
		b.Pos[0]++
		if _, err := r.Forward(b, kv); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("decode step allocates %v objects", allocs)
	}
}
