// Package bench owns kvserve's performance measurements in the spirit of
// llama-bench: prompt processing (pp) and generation (tg) throughput at
// chosen cache depths, the machine's memory read bandwidth measured with
// the same thread count, and decode efficiency — the fraction of that
// bandwidth a decode step achieves, (bytes read per token × tokens/s) ÷
// bandwidth, since decoding is memory-bound.
package bench

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/model"
)

// Options select the tests.
type Options struct {
	Prompt int   // pp test length (0: none)
	Gen    int   // tg test length (0: none)
	Depths []int // tg (and pp) after a prefill of each depth
	Reps   int
	Batch  int
	Cache  engine.CacheOptions
	// Parallel is how many sequences the tg test decodes at once (0 or 1:
	// one), as the server's busy slots do: each step is one batch of one
	// token per sequence (each with logits), so the weights are read once
	// per step for all of them; tokens/s is the aggregate.
	Parallel int
	// AllLogits makes the pp test compute logits at every token of its
	// batch, as a speculative verification pass does (each drafted token
	// is checked against the target's distribution before it), not only at
	// the last; its test is named "pv" instead of "pp".
	AllLogits bool
}

// Result is one test's figures.
type Result struct {
	Test        string    `json:"test"` // "pp512", "tg128", "tg128@d2048", "pv4" (AllLogits)
	Model       string    `json:"model"`
	Threads     int       `json:"threads"`
	TypeK       string    `json:"type_k"`
	TypeV       string    `json:"type_v"`
	Depth       int       `json:"depth"`
	Parallel    int       `json:"n_parallel,omitempty"` // sequences decoded at once (tg; aggregate tokens/s)
	Tokens      int       `json:"n_tokens"`
	TPS         float64   `json:"tokens_per_second"` // median
	TPSMin      float64   `json:"tokens_per_second_min"`
	TPSMax      float64   `json:"tokens_per_second_max"`
	Samples     []float64 `json:"samples_tokens_per_second"`
	BytesPerTok float64   `json:"bytes_per_token,omitempty"`
	Bandwidth   float64   `json:"bandwidth_bytes_per_second,omitempty"`
	Efficiency  float64   `json:"decode_efficiency,omitempty"`
	// The same ratio against the bandwidth of re-reading a buffer the size
	// of one token's reads (the working set; it may fit in a large L3).
	BandwidthWS  float64 `json:"bandwidth_working_set_bytes_per_second,omitempty"`
	EfficiencyWS float64 `json:"decode_efficiency_working_set,omitempty"`
}

// WeightBytes is the bytes of weights a decode step reads: every matrix
// of every layer and the output matrix (the embedding lookup reads one
// row); of a mixture of experts, the router, the shared expert and the
// expert_used_count experts a token runs (one expert's share of the
// expert tensors each).
func WeightBytes(m *model.Model) int64 {
	var b int64
	for i := range m.Layers {
		L := &m.Layers[i]
		for _, w := range []*model.Linear{L.Wq, L.Wk, L.Wv, L.Wo, L.Gate, L.Up, L.Down, L.Router, L.ShGate, L.ShUp, L.ShDown} {
			if w != nil {
				b += int64(len(w.Data))
			}
		}
		if len(L.GateExps) > 0 {
			per := int64(len(L.GateExps[0].Data) + len(L.UpExps[0].Data) + len(L.DownExps[0].Data))
			b += int64(m.NExpertUsed) * per
		}
	}
	b += int64(len(m.Output.Data)) + int64(m.TokEmbd.RowBytes)
	return b
}

// Run runs the selected tests on e.
func Run(e *engine.Engine, o Options, progress func(string)) ([]Result, error) {
	if o.Reps <= 0 {
		o.Reps = 3
	}
	if o.Batch <= 0 {
		o.Batch = engine.DefaultBatch
	}
	if len(o.Depths) == 0 {
		o.Depths = []int{0}
	}
	np := max(o.Parallel, 1)
	m := e.Model
	maxDepth := slices.Max(o.Depths)
	ctx := max(maxDepth, 1) + max(o.Prompt, o.Gen)
	if ctx > m.NCtxTrain {
		return nil, fmt.Errorf("depth %d + test length exceeds the model's context of %d", maxDepth, m.NCtxTrain)
	}
	cache, err := e.NewCache(o.Cache, np, ctx)
	if err != nil {
		return nil, err
	}
	defer cache.Close()
	r := model.NewRunner(m, e.Pool, o.Batch)
	r.SetContext(ctx)
	rng := rand.New(rand.NewPCG(1, 2))
	tokens := make([]int, ctx)
	for i := range tokens {
		tokens[i] = rng.IntN(m.NVocab)
	}
	tokens[0] = max(e.BOS(), 0)
	bw := 0.0
	if o.Gen > 0 {
		progress("measuring memory read bandwidth")
		bw = MemoryBandwidth(e.Pool, 1<<30, 5)
	}
	base := Result{Model: e.Path, Threads: e.Pool.Threads(), TypeK: o.Cache.TypeK, TypeV: o.Cache.TypeV}
	var out []Result
	// prefill fills sequences [0, seqs) to n tokens each.
	prefill := func(n, seqs int) error {
		for s := 0; s < np; s++ {
			cache.Clear(s)
		}
		for s := 0; s < seqs; s++ {
			for i := 0; i < n; i += o.Batch {
				j := min(i+o.Batch, n)
				b := &model.Batch{Tokens: tokens[i:j], Pos: seq(i, j), Output: make([]bool, j-i)}
				if s > 0 {
					b.Seq = make([]int, j-i)
					for k := range b.Seq {
						b.Seq[k] = s
					}
				}
				if _, err := r.Forward(b, cache); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for _, d := range o.Depths {
		suffix := ""
		if d > 0 {
			suffix = fmt.Sprintf("@d%d", d)
		}
		if o.Prompt > 0 {
			res := base
			kind := "pp"
			if o.AllLogits {
				kind = "pv"
			}
			res.Test, res.Depth, res.Tokens = fmt.Sprintf("%s%d%s", kind, o.Prompt, suffix), d, o.Prompt
			for rep := 0; rep <= o.Reps; rep++ { // first run warms up
				if err := prefill(d, 1); err != nil {
					return nil, err
				}
				t0 := time.Now()
				for i := d; i < d+o.Prompt; i += o.Batch {
					j := min(i+o.Batch, d+o.Prompt)
					out := make([]bool, j-i)
					out[len(out)-1] = true
					if o.AllLogits {
						for k := range out {
							out[k] = true
						}
					}
					if _, err := r.Forward(&model.Batch{Tokens: tokens[i:j], Pos: seq(i, j), Output: out}, cache); err != nil {
						return nil, err
					}
				}
				if rep > 0 {
					res.Samples = append(res.Samples, float64(o.Prompt)/time.Since(t0).Seconds())
				}
			}
			finish(&res)
			progress(fmt.Sprintf("%s: %.1f t/s", res.Test, res.TPS))
			out = append(out, res)
		}
		if o.Gen > 0 {
			res := base
			res.Test, res.Depth, res.Tokens = fmt.Sprintf("tg%d%s", o.Gen, suffix), d, o.Gen
			if np > 1 {
				res.Test += fmt.Sprintf("×%d", np)
				res.Parallel = np
			}
			var cacheBytes int64
			for rep := 0; rep <= o.Reps; rep++ {
				if err := prefill(max(d, 1), np); err != nil {
					return nil, err
				}
				start := max(d, 1)
				before := cache.Bytes()
				t0 := time.Now()
				b := &model.Batch{Tokens: make([]int, np), Pos: make([]int, np)}
				if np > 1 {
					b.Seq, b.Output = seq(0, np), make([]bool, np)
					for s := range b.Output {
						b.Output[s] = true
					}
				}
				for i := 0; i < o.Gen; i++ {
					for s := 0; s < np; s++ {
						b.Tokens[s], b.Pos[s] = tokens[(start+i+97*s)%ctx], start+i
					}
					if _, err := r.Forward(b, cache); err != nil {
						return nil, err
					}
				}
				if rep > 0 {
					res.Samples = append(res.Samples, float64(np*o.Gen)/time.Since(t0).Seconds())
				}
				cacheBytes = (before + cache.Bytes()) / 2 // average cache read per step (all sequences)
			}
			finish(&res)
			// Bytes per token: one step's reads (the weights once, every
			// sequence's cache) over the tokens of the step.
			res.BytesPerTok = float64(WeightBytes(m)+usedCacheBytes(cache, cacheBytes, max(d, 1)+o.Gen/2)) / float64(np)
			res.Bandwidth = bw
			res.Efficiency = res.BytesPerTok * res.TPS / bw
			res.BandwidthWS = MemoryBandwidth(e.Pool, int(res.BytesPerTok)*np, 20) // one step's reads
			res.EfficiencyWS = res.BytesPerTok * res.TPS / res.BandwidthWS
			progress(fmt.Sprintf("%s: %.1f t/s, %.1f MB/token, efficiency %.2f", res.Test, res.TPS, res.BytesPerTok/1e6, res.Efficiency))
			out = append(out, res)
		}
	}
	return out, nil
}

// usedCacheBytes estimates the cache bytes a decode step reads at the given
// mean length: the pages' bytes scaled from page-granular to the positions
// actually attended.
func usedCacheBytes(c *kvcache.Cache, pageBytes int64, meanLen int) int64 {
	cfg := c.Config()
	held := c.Len(0)
	if held == 0 {
		return 0
	}
	pages := (held + cfg.PageTokens - 1) / cfg.PageTokens
	return pageBytes * int64(meanLen) / int64(pages*cfg.PageTokens)
}

func finish(r *Result) {
	s := slices.Clone(r.Samples)
	slices.Sort(s)
	r.TPS = s[len(s)/2]
	if len(s)%2 == 0 {
		r.TPS = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	r.TPSMin, r.TPSMax = s[0], s[len(s)-1]
}

func seq(a, b int) []int {
	s := make([]int, b-a)
	for i := range s {
		s[i] = a + i
	}
	return s
}
