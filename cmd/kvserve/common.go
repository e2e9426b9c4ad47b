package main

import (
	"fmt"
	"strings"

	"github.com/kvserve/kvserve/internal/cachepolicy"
	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/sample"
	"github.com/kvserve/kvserve/internal/tensor"
)

// cacheTypeNames lists the cache types (tensor's traits table), for help.
func cacheTypeNames() string {
	var names []string
	for _, t := range tensor.TypesFor(tensor.Cache) {
		names = append(names, t.String())
	}
	return strings.Join(names, ", ")
}

// modelFlags are the flags every model-running command shares.
type modelFlags struct {
	model   string
	threads int
	ctx     int
	batch   int
	cache   engine.CacheOptions
}

func (mf *modelFlags) register(f *flags, ctxDefault int) {
	f.String(&mf.model, "", "model file (GGUF); default: the embedded kvtest-27m Q8_0", "m", "model")
	f.Int(&mf.threads, 0, "threads (0: one per CPU)", "t", "threads")
	f.Int(&mf.ctx, ctxDefault, "context size in tokens (0: the model's training context)", "c", "ctx-size")
	f.Int(&mf.batch, engine.DefaultBatch, "prompt micro-batch size in tokens", "b", "batch-size")
	registerCache(f, &mf.cache)
}

func registerCache(f *flags, o *engine.CacheOptions) {
	f.String(&o.TypeK, "f16", "KV cache type for K: "+cacheTypeNames(), "ctk", "cache-type-k")
	f.String(&o.TypeV, "f16", "KV cache type for V (same types)", "ctv", "cache-type-v")
	f.String(&o.LayersK, "", "per-layer K cache types, e.g. 0-1:f16,7:q8_0", "cache-type-k-layers")
	f.String(&o.LayersV, "", "per-layer V cache types, e.g. 0-1:f16,7:q8_0", "cache-type-v-layers")
	f.String(&o.Rotate, "on", "Hadamard-rotate quantized cache rows (on|off)", "cache-rotate")
	f.Int(&o.PageTokens, 256, "token positions per cache page (the unit of conversion and freeing)", "cache-page-tokens")
	f.Bool(&o.SWAFull, false, "keep every page of sliding-window layers (by default a window layer releases the pages no later token attends)", "swa-full")
}

func registerSampling(f *flags, p *sample.Params) {
	d := sample.DefaultParams()
	f.Float32(&p.Temperature, d.Temperature, "temperature (0: greedy)", "temp")
	f.Int(&p.TopK, d.TopK, "top-k sampling (0: disabled)", "top-k")
	f.Float32(&p.TopP, d.TopP, "top-p (nucleus) sampling (1: disabled)", "top-p")
	f.Float32(&p.MinP, d.MinP, "min-p sampling (0: disabled)", "min-p")
	f.Float32(&p.RepeatPenalty, d.RepeatPenalty, "repetition penalty (1: disabled)", "repeat-penalty")
	f.Int(&p.RepeatLastN, d.RepeatLastN, "tokens considered for penalties", "repeat-last-n")
	f.Float32(&p.PresencePenalty, d.PresencePenalty, "presence penalty", "presence-penalty")
	f.Float32(&p.FrequencyPenalty, d.FrequencyPenalty, "frequency penalty", "frequency-penalty")
	f.Uint64(&p.Seed, d.Seed, "random seed (4294967295: random)", "s", "seed")
}

// policyFlags are the automatic cache precision flags.
type policyFlags struct {
	ladderK, ladderV            string
	hot, warm, sink             int
	dynamic, dynamicK, dynamicV string
	budget                      string
}

func registerPolicy(f *flags, p *policyFlags) {
	dk, dv := cachepolicy.DefaultLadders()
	f.String(&p.ladderK, typeList(dk), "K cache ladder for policies, highest precision first (tier 0 is the write type)", "cache-ladder-k")
	f.String(&p.ladderV, typeList(dv), "V cache ladder for policies", "cache-ladder-v")
	f.Int(&p.hot, 0, "multistage: keep the most recent N tokens at tier 0, demote older pages as they age (0: off)", "cache-hot")
	f.Int(&p.warm, cachepolicy.DefaultWarm, "multistage: pages older than --cache-hot spend N tokens of age in each middle tier of the ladder (0: straight to the bottom)", "cache-warm")
	f.Int(&p.sink, 0, "multistage: keep the first N tokens at tier 0", "cache-sink")
	f.String(&p.dynamic, "", "step K and V down by context length, e.g. 0:f16,2048:q8_0,3072:q4_0", "dynamic-cache")
	f.String(&p.dynamicK, "", "step K down by context length (overrides --dynamic-cache for K)", "dynamic-cache-k")
	f.String(&p.dynamicV, "", "step V down by context length (overrides --dynamic-cache for V)", "dynamic-cache-v")
	f.String(&p.budget, "", "cache memory budget across all slots, e.g. 48MiB: demote old pages to stay under it", "cache-budget")
}

func typeList(ts []tensor.Type) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = t.String()
	}
	return strings.Join(s, ",")
}

// policy builds the policy the flags describe (nil when no rule is on).
func (p *policyFlags) policy() (*cachepolicy.Policy, error) {
	var pol cachepolicy.Policy
	var err error
	if pol.LadderK, err = cachepolicy.ParseLadder(p.ladderK); err != nil {
		return nil, fmt.Errorf("--cache-ladder-k: %w", err)
	}
	if pol.LadderV, err = cachepolicy.ParseLadder(p.ladderV); err != nil {
		return nil, fmt.Errorf("--cache-ladder-v: %w", err)
	}
	pol.Hot, pol.Warm, pol.Sink = p.hot, p.warm, p.sink
	for _, d := range []struct {
		spec string
		dst  *[]cachepolicy.LengthStep
		name string
	}{{p.dynamic, &pol.LengthK, "--dynamic-cache"}, {p.dynamic, &pol.LengthV, "--dynamic-cache"},
		{p.dynamicK, &pol.LengthK, "--dynamic-cache-k"}, {p.dynamicV, &pol.LengthV, "--dynamic-cache-v"}} {
		if d.spec == "" {
			continue
		}
		if *d.dst, err = cachepolicy.ParseLengths(d.spec); err != nil {
			return nil, fmt.Errorf("%s: %w", d.name, err)
		}
	}
	if p.budget != "" {
		if pol.Budget, err = cachepolicy.ParseBytes(p.budget); err != nil {
			return nil, fmt.Errorf("--cache-budget: %w", err)
		}
	}
	if !pol.Enabled() {
		return nil, nil
	}
	return &pol, nil
}
