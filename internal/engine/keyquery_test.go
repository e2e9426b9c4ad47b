package engine_test

import (
	"testing"

	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/model"
	"github.com/kvserve/kvserve/internal/testassets"
)

// --cache-key-encode query with key channels off: each K row is encoded
// once, from the queries up to its own token, so a prompt run as one
// batch and token by token gives bit-identical logits; and the encoding
// does change the result (against mse).
func TestKeyQueryBatchInvariant(t *testing.T) {
	e, err := engine.Load(testassets.Path(t, "models/kvtest-27m-f16.gguf"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	const n = 300
	toks := make([]int, n)
	for i := range toks {
		toks[i] = (i*7919 + 13) % e.Model.NVocab
	}
	run := func(enc string, batch int) []float32 {
		o := engine.DefaultCacheOptions()
		o.TypeK, o.TypeV, o.KeyEncode, o.PageTokens = "cb4", "cb4", enc, 64
		cache, err := e.NewCache(o, 1, 512)
		if err != nil {
			t.Fatal(err)
		}
		defer cache.Close()
		r := model.NewRunner(e.Model, e.Pool, batch)
		var last []float32
		for i := 0; i < n; i += batch {
			j := min(i+batch, n)
			pos := make([]int, j-i)
			for k := range pos {
				pos[k] = i + k
			}
			lg, err := r.Forward(&model.Batch{Tokens: toks[i:j], Pos: pos}, cache)
			if err != nil {
				t.Fatal(err)
			}
			last = append(last[:0], lg...)
		}
		return last
	}
	one, many, mse := run("query", n), run("query", 1), run("mse", n)
	same := true
	for i := range one {
		if one[i] != many[i] {
			t.Fatalf("logit %d: one batch %v, token by token %v", i, one[i], many[i])
		}
		same = same && one[i] == mse[i]
	}
	if same {
		t.Fatal("query-aware keys changed no logit")
	}
}
