package engine

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/model"
	"github.com/kvserve/kvserve/internal/tensor"
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

// rankHead is a model's rank (classification) head, llama.cpp's rank
// pooling: over the pooled token's normed hidden state x, y = tanh(cls·x +
// cls_b) when the file has cls.weight, then z = cls_out·y + cls_out_b when
// it has cls.output.weight, then softmax(z) for qwen3 rerankers (whose
// cls.output rows are the "yes"/"no" tokens' output rows).
type rankHead struct {
	cls, out   [][]float32 // rows
	clsB, outB []float32
	softmax    bool
	last       bool // pool the last token (qwen3), else the first
}

// rankHead reads the rank head's tensors, or returns ErrNoRankHead.
func (e *Engine) rankHead() (*rankHead, error) {
	E := e.Model.NEmbd
	mat := func(name string, in int) ([][]float32, error) {
		ti, ok := e.File.Tensor(name)
		if !ok {
			return nil, nil
		}
		if len(ti.Dims) < 1 || len(ti.Dims) > 2 || int(ti.Dims[0]) != in {
			return nil, fmt.Errorf("%s has shape %v; want rows of %d", name, ti.Dims, in)
		}
		rows := 1
		if len(ti.Dims) == 2 {
			rows = int(ti.Dims[1])
		}
		rs, err := ti.Type.RowSizeChecked(in)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		data := e.File.TensorData(ti)
		if len(data) < rows*rs {
			return nil, fmt.Errorf("%s is truncated", name)
		}
		out := make([][]float32, rows)
		for r := range out {
			out[r] = make([]float32, in)
			tensor.DequantizeRow(ti.Type, data[r*rs:(r+1)*rs], out[r])
		}
		return out, nil
	}
	vec := func(name string, n int) ([]float32, error) {
		m, err := mat(name, n)
		if err != nil || m == nil {
			return nil, err
		}
		return m[0], nil
	}
	h := &rankHead{softmax: e.Model.Arch == "qwen3", last: e.Model.Arch == "qwen3"}
	var err error
	if h.cls, err = mat("cls.weight", E); err != nil {
		return nil, err
	}
	in := E
	if h.cls != nil {
		if h.clsB, err = vec("cls.bias", len(h.cls)); err != nil {
			return nil, err
		}
		in = len(h.cls)
	}
	if h.out, err = mat("cls.output.weight", in); err != nil {
		return nil, err
	}
	if h.out != nil {
		if h.outB, err = vec("cls.output.bias", len(h.out)); err != nil {
			return nil, err
		}
	}
	if h.cls == nil && h.out == nil {
		return nil, ErrNoRankHead
	}
	return h, nil
}

// apply computes the head's scores for a pooled hidden state.
func (h *rankHead) apply(x []float32) []float32 {
	layer := func(w [][]float32, b []float32, in []float32) []float32 {
		out := make([]float32, len(w))
		for r, row := range w {
			var d float64
			for i, v := range row {
				d += float64(v) * float64(in[i])
			}
			if b != nil {
				d += float64(b[r])
			}
			out[r] = float32(d)
		}
		return out
	}
	if h.cls != nil {
		x = layer(h.cls, h.clsB, x)
		for i, v := range x {
			x[i] = float32(math.Tanh(float64(v)))
		}
	}
	if h.out != nil {
		x = layer(h.out, h.outB, x)
	}
	if h.softmax {
		mx := x[0]
		for _, v := range x {
			mx = max(mx, v)
		}
		var sum float64
		for i, v := range x {
			e := math.Exp(float64(v - mx))
			x[i] = float32(e)
			sum += e
		}
		for i := range x {
			x[i] = float32(float64(x[i]) / sum)
		}
	}
	return x
}

// HasRankHead reports whether the model has a rank (classification) head
// (cls.weight or cls.output.weight), which rank pooling needs.
func (e *Engine) HasRankHead() bool {
	_, err := e.rankHead()
	return err == nil
}

// ErrNoRankHead is returned for rank pooling on a model without a rank head.
var ErrNoRankHead = errors.New("rank pooling needs a model with a rank head (cls.weight / cls.output.weight tensors, as reranker models have); this model has none")

// Embed computes the embedding of tokens with the given pooling: one
// vector of the model's width (PoolNone: one per token; PoolRank: the rank
// head's scores, the relevance score first), not normalized —
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
	var head *rankHead
	switch pool {
	case PoolNone, PoolMean, PoolCLS, PoolLast:
	case PoolRank:
		var err error
		if head, err = s.e.rankHead(); err != nil {
			return nil, err
		}
		// The head reads the first token's state, or the last's (qwen3).
		pool = PoolCLS
		if head.last {
			pool = PoolLast
		}
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
	if head != nil {
		out = [][]float32{head.apply(out[0])}
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
