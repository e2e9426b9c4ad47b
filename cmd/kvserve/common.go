package main

import (
	"fmt"
	"strings"

	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/kvcache"
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
	model    string
	threads  int
	ctx      int
	batch    int
	cache    engine.CacheOptions
	noRepack bool
}

func (mf *modelFlags) register(f *flags, ctxDefault int) {
	f.String(&mf.model, "", "model file (GGUF); default: the embedded kvtest-27m Q8_0", "m", "model")
	f.Int(&mf.threads, 0, "threads (0: one per CPU)", "t", "threads")
	f.Int(&mf.ctx, ctxDefault, "context size in tokens (0: the model's training context)", "c", "ctx-size")
	f.Int(&mf.batch, engine.DefaultBatch, "prompt micro-batch size in tokens", "b", "batch-size")
	f.Bool(&mf.noRepack, false, "keep weights in the file's layout (no repacking at load; for comparisons)", "no-repack")
	registerCache(f, &mf.cache)
}

func registerCache(f *flags, o *engine.CacheOptions) {
	f.String(&o.TypeK, "f16", "KV cache type for K: "+cacheTypeNames(), "ctk", "cache-type-k")
	f.String(&o.TypeV, "f16", "KV cache type for V (same types)", "ctv", "cache-type-v")
	f.String(&o.LayersK, "", "per-layer K cache types, e.g. 0-1:f16,7:q8_0", "cache-type-k-layers")
	f.String(&o.LayersV, "", "per-layer V cache types, e.g. 0-1:f16,7:q8_0", "cache-type-v-layers")
	f.String(&o.Rotate, "on", "Hadamard-rotate quantized cache rows (on|off)", "cache-rotate")
	f.String(&o.KeyChannels, "off", "quantized K pages keep per-channel statistics: off, centre (per-page channel means removed) or scale (means removed and channels scaled by their spread)", "cache-key-channels")
	f.String(&o.ValueChannels, "off", "quantized V pages keep per-page per-channel means: off or centre", "cache-value-channels")
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

// specFlags are the speculative decoding flags (llama-server's names).
type specFlags struct {
	draft      string
	typ        string
	max, min   int
	pmin       float32
	ngram      int
	ctkd, ctvd string
}

func (sf *specFlags) register(f *flags) {
	f.String(&sf.draft, "", "draft model (GGUF) for speculative decoding; it must share the model's vocabulary", "md", "model-draft")
	f.String(&sf.typ, "none", "speculative decoding without a draft model: none, or ngram-simple (prompt lookup: draft what followed the latest earlier occurrence of the context's last n-gram; good for code edits and rewrites)", "spec-type")
	f.Int(&sf.ngram, engine.DefaultNGram, "longest n-gram prompt lookup matches (shorter ones are tried down to 1 token)", "spec-ngram-size-n", "spec-ngram-simple-size-n")
	f.Int(&sf.max, engine.DefaultDraftMax, "most tokens drafted per step", "draft-max", "draft", "draft-n")
	f.Int(&sf.min, 0, "fewest drafted tokens worth verifying (a shorter draft is dropped)", "draft-min", "draft-n-min")
	f.Float32(&sf.pmin, engine.DefaultDraftPMin, "the draft model stops drafting when its most probable token's probability is lower", "draft-p-min")
	f.String(&sf.ctkd, "f16", "draft model's KV cache type for K", "ctkd", "cache-type-k-draft")
	f.String(&sf.ctvd, "f16", "draft model's KV cache type for V", "ctvd", "cache-type-v-draft")
}

// options returns the speculation settings (nil: none) and the draft
// model's path.
func (sf *specFlags) options(cache engine.CacheOptions) (*engine.SpecOptions, error) {
	o := &engine.SpecOptions{Max: sf.max, Min: sf.min, PMin: sf.pmin, NGram: sf.ngram}
	switch sf.typ {
	case "none", "":
	case "ngram-simple", "ngram", "lookup":
		o.Lookup = true
	default:
		return nil, fmt.Errorf("--spec-type must be none or ngram-simple, not %q", sf.typ)
	}
	if sf.max < 1 || sf.min < 0 || sf.ngram < 1 {
		return nil, fmt.Errorf("--draft-max and --spec-ngram-size-n must be at least 1, --draft-min at least 0")
	}
	if sf.pmin < 0 || sf.pmin > 1 {
		return nil, fmt.Errorf("--draft-p-min must be between 0 and 1")
	}
	if sf.pmin == 0 {
		o.PMin = -1 // no threshold (0 means the default in SpecOptions)
	}
	for _, t := range []string{sf.ctkd, sf.ctvd} {
		if _, err := kvcache.ParseType(t); err != nil {
			return nil, fmt.Errorf("draft cache: %w", err)
		}
	}
	o.DraftCache = engine.CacheOptions{TypeK: sf.ctkd, TypeV: sf.ctvd, Rotate: cache.Rotate, PageTokens: cache.PageTokens, SWAFull: cache.SWAFull}
	if sf.draft == "" && !o.Lookup {
		return nil, nil
	}
	return o, nil
}
