package engine

import (
	"github.com/kvserve/kvserve/internal/cachepolicy"
	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/model"
	"github.com/kvserve/kvserve/internal/perplexity"
)

// ChunkEvaluator returns an evaluator for the perplexity harness: every
// chunk is processed from an empty cache in micro-batches of batch tokens,
// with logits computed only for the scored positions.
func (e *Engine) ChunkEvaluator(cache *kvcache.Cache, batch int) perplexity.ChunkEvaluator {
	r := model.NewRunner(e.Model, e.Pool, batch)
	r.SetContext(cache.Config().Ctx)
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

// BitsTracker records the bits per cached value a growing-context run's
// cache held, averaged over the evaluated tokens (each token weighted by
// the cache it was evaluated against) and at the end.
type BitsTracker struct {
	sum, weight float64
	Final       float64
}

// Mean is the token-weighted average of bits per cached value.
func (b *BitsTracker) Mean() float64 {
	if b.weight == 0 {
		return 0
	}
	return b.sum / b.weight
}

// BitsPerValue returns the average bits per value of the positions seq
// holds (each page's type weighted by the positions it holds).
func BitsPerValue(c *kvcache.Cache, seq int) float64 {
	cfg := c.Config()
	var bits, vals float64
	for _, p := range c.Pages(seq) {
		n := float64(p.Tokens * cfg.KVHeads)
		if p.V {
			n *= float64(cfg.HeadDimV)
		} else {
			n *= float64(cfg.HeadDimK)
		}
		bits += n * p.Type.BitsPerValue()
		vals += n
	}
	if vals == 0 {
		return 0
	}
	return bits / vals
}

// GrowingEvaluator evaluates each chunk as one growing context, the way a
// long chat fills its cache: micro-batches of `step` tokens, with the
// policy (if any) applied between them as the server applies it between
// decode steps.
func (e *Engine) GrowingEvaluator(cache *kvcache.Cache, step int, p *cachepolicy.Policy, bits *BitsTracker, st *cachepolicy.Stats) perplexity.ChunkEvaluator {
	r := model.NewRunner(e.Model, e.Pool, step)
	r.SetContext(cache.Config().Ctx)
	V := e.Model.NVocab
	P := cache.Config().PageTokens
	return func(tokens []int, from int, fn func(pos int, logits []float32)) error {
		cache.Clear(0)
		cache.SetSeqWriteTypes(0, nil, nil)
		n := len(tokens)
		out := make([]bool, step)
		for i := 0; i < n; i += step {
			j := min(i+step, n)
			if p != nil && p.Enabled() {
				p.Apply(cache, 0, st)
				if p.Budget > 0 {
					pages := (j+P-1)/P - cache.NumPages(0, 0)
					if err := p.MakeRoom(cache, int64(max(pages, 0))*cachepolicy.PageBytes(cache, 0), []int{0}, st); err != nil {
						return err
					}
				}
			}
			for k := i; k < j; k++ {
				out[k-i] = k >= from && k < n-1
			}
			b := &model.Batch{Tokens: tokens[i:j], Pos: seq(i, j), Output: out[:j-i]}
			logits, err := r.Forward(b, cache)
			if err != nil {
				return err
			}
			if bits != nil {
				bpv := BitsPerValue(cache, 0)
				bits.sum += bpv * float64(j-i)
				bits.weight += float64(j - i)
				bits.Final = bpv
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
