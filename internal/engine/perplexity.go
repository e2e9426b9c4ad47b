package engine

import (
	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/model"
	"github.com/kvserve/kvserve/internal/perplexity"
)

// ChunkEvaluator returns an evaluator for the perplexity harness: every
// chunk is processed from an empty cache in micro-batches of batch tokens,
// with logits computed only for the scored positions.
func (e *Engine) ChunkEvaluator(cache *kvcache.Cache, batch int) perplexity.ChunkEvaluator {
	r := model.NewRunner(e.Model, e.Pool, batch)
	V := e.Model.NVocab
	return func(tokens []int, from int, fn func(pos int, logits []float32)) error {
		cache.Clear(0)
		n := len(tokens)
		out := make([]bool, batch)
		for i := 0; i < n; i += batch {
			j := min(i+batch, n)
			for k := i; k < j; k++ {
				out[k-i] = k >= from && k < n-1
			}
			b := &model.Batch{Tokens: tokens[i:j], Pos: seq(i, j), Output: out[:j-i]}
			logits, err := r.Forward(b, cache)
			if err != nil {
				return err
			}
			o := 0
			for k := i; k < j; k++ {
				if out[k-i] {
					fn(k, logits[o*V:(o+1)*V])
					o++
				}
			}
		}
		return nil
	}
}
