package engine

import (
	"context"
	"fmt"
	"math"

	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/model"
)

// Pooling is how a sequence's hidden states become its embedding
// (llama.cpp's llama_pooling_type, same numbering as the GGUF key
// "{arch}.pooling_type").
type Pooling int

// The pooling types.
const (
	PoolNone Pooling = iota // one embedding per token
	PoolMean                // the mean of every token's
	PoolCLS                 // the first token's
	PoolLast                // the last token's
	PoolRank                // a rank (classification) head over the first token's: a relevance score
)

var poolingNames = []string{"none", "mean", "cls", "last", "rank"}

func (p Pooling) String() string {
	if p >= 0 && int(p) < len(poolingNames) {
		return poolingNames[p]
	}
	return fmt.Sprintf("pooling(%d)", int(p))
}

// ParsePooling reads a pooling name (llama.cpp's --pooling values).
func ParsePooling(s string) (Pooling, error) {
	for i, n := range poolingNames {
		if s == n {
			return Pooling(i), nil
		}
	}
	return 0, fmt.Errorf("unknown pooling %q (none, mean, cls, last or rank)", s)
}

// FilePooling is the pooling the model file declares ("{arch}.pooling_type"),
// PoolNone when it declares none (as llama.cpp).
func (e *Engine) FilePooling() Pooling {
	if v, ok := e.File.Int(e.Model.Arch + ".pooling_type"); ok && v >= 0 && int(v) < len(poolingNames) {
		return Pooling(v)
	}
	return PoolNone
}

// HasRankHead reports whether the model has a rank (classification) head:
// the tensors cls.weight or cls.output.weight that llama.cpp's rank pooling
// applies. kvserve does not implement them yet, so it reports whether the
// file has them, for a clear error.
func (e *Engine) HasRankHead() bool {
	for _, n := range []string{"cls.weight", "cls.output.weight"} {
		if _, ok := e.File.Tensor(n); ok {
			return true
		}
	}
	return false
}

// ErrNoRankHead is returned for rank pooling on a model without a rank head.
var ErrNoRankHead = fmt.Errorf("rank pooling needs a model with a rank head (cls.weight / cls.output.weight tensors, as reranker models have); this model has none")

// Embed computes the embedding of tokens with the given pooling: one
// vector of the model's width (PoolNone: one per token), not normalized —
// the output-normed hidden states of the last layer (llama.cpp's
// result_norm), with causal attention as the model was trained. It runs on
// the scheduler's goroutine between steps, a chunk of the prompt per step
// (so running streams keep going), into a cache of its own created for the
// request and freed at the end; nothing is generated and no slot is used.
// tokens must fit one slot's context.
func (s *Scheduler) Embed(ctx context.Context, tokens []int, pool Pooling) ([][]float32, error) {
	if len(tokens) == 0 {
		return nil, fmt.Errorf("empty input")
	}
	if len(tokens) > s.o.SlotCtx {
		return nil, fmt.Errorf("input of %d tokens does not fit the slot context of %d tokens", len(tokens), s.o.SlotCtx)
	}
	nv := s.e.Model.NVocab
	for _, t := range tokens {
		if t < 0 || t >= nv {
			return nil, fmt.Errorf("token id %d out of range (vocabulary of %d)", t, nv)
		}
	}
	switch pool {
	case PoolNone, PoolMean, PoolCLS, PoolLast:
	case PoolRank:
		return nil, ErrNoRankHead
	default:
		return nil, fmt.Errorf("unknown pooling %d", int(pool))
	}
	cache, err := s.e.NewCache(s.o.Cache, 1, len(tokens))
	if err != nil {
		return nil, err
	}
	defer cache.Close()
	E := s.e.Model.NEmbd
	var out [][]float32
	var sum []float64
	if pool == PoolMean {
		sum = make([]float64, E)
	}
	var b model.Batch
	b.Embeddings = true
	for next := 0; next < len(tokens); {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		err := s.Do(func(*kvcache.Cache) error {
			n := s.o.Batch
			if s.anyActive() {
				n = min(n, s.o.PrefillChunk)
			}
			n = min(n, len(tokens)-next)
			b.Tokens, b.Pos, b.Seq, b.Output = b.Tokens[:0], b.Pos[:0], b.Seq[:0], b.Output[:0]
			rows := 0
			for i := next; i < next+n; i++ {
				want := pool == PoolNone || pool == PoolMean || (pool == PoolCLS && i == 0) || (pool == PoolLast && i == len(tokens)-1)
				b.Tokens = append(b.Tokens, tokens[i])
				b.Pos = append(b.Pos, i)
				b.Seq = append(b.Seq, 0)
				b.Output = append(b.Output, want)
				if want {
					rows++
				}
			}
			h, err := s.runner.Forward(&b, cache)
			if err != nil {
				return err
			}
			for r := 0; r < rows; r++ {
				row := h[r*E : (r+1)*E]
				if pool == PoolMean {
					for j, v := range row {
						sum[j] += float64(v)
					}
				} else {
					out = append(out, append([]float32(nil), row...))
				}
			}
			next += n
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if pool == PoolMean {
		v := make([]float32, E)
		for j := range v {
			v[j] = float32(sum[j] / float64(len(tokens)))
		}
		out = [][]float32{v}
	}
	return out, nil
}

// NormalizeEmbedding scales v in place as llama.cpp's common_embd_normalize
// (llama-server's "embd_normalize"): -1 leaves it, 0 scales the largest
// magnitude to 32760 (int16 range), 1 to unit taxicab norm, 2 to unit
// Euclidean norm (the default), p > 2 to unit p-norm. A zero vector stays
// zero.
func NormalizeEmbedding(v []float32, norm int) {
	var sum float64
	switch {
	case norm < 0:
		return
	case norm == 0:
		for _, x := range v {
			sum = math.Max(sum, math.Abs(float64(x)))
		}
		sum /= 32760
	case norm == 2:
		for _, x := range v {
			sum += float64(x) * float64(x)
		}
		sum = math.Sqrt(sum)
	default:
		for _, x := range v {
			sum += math.Pow(math.Abs(float64(x)), float64(norm))
		}
		sum = math.Pow(sum, 1/float64(norm))
	}
	if sum == 0 {
		return
	}
	for i := range v {
		v[i] = float32(float64(v[i]) / sum)
	}
}
