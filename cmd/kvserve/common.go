package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/kvserve/kvserve/internal/cachepolicy"
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
	f.Bool(&mf.noRepack, false, "keep weights in the file's layout (no repacking at load; for comparisons)", "nr", "no-repack")
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
	f.String(&o.KeyEncode, "mse", "how rotated K rows of cb4, cb3, cb2, q4_0 and q5_0 pick their indices: mse (nearest levels) or query (refined against the sequence's observed queries to lower the attention-score error; same format)", "cache-key-encode")
	f.Int(&o.PageTokens, 256, "token positions per cache page (the unit of conversion and freeing)", "cache-page-tokens")
	f.Bool(&o.SWAFull, false, "keep every page of sliding-window layers (by default a window layer releases the pages no later token attends)", "swa-full")
	f.Int(&o.CtxCheckpoints, engine.DefaultCtxCheckpoints, "hybrid recurrent models: recurrent-state checkpoints kept per slot at page boundaries, so a conversation's next turn resumes instead of re-evaluating its history (0-64)", "ctx-checkpoints")
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

// registerChainSampling registers llama-server's flags for the samplers
// beyond the default chain.
func registerChainSampling(f *flags, p *sample.Params, samplers, seq *string, breakers, bias *multiString) {
	d := sample.DefaultParams()
	f.Float32(&p.TypicalP, d.TypicalP, "locally typical sampling (1: disabled)", "typical")
	f.Float32(&p.DynatempRange, d.DynatempRange, "dynamic temperature range (0: disabled)", "dynatemp-range")
	f.Float32(&p.DynatempExponent, d.DynatempExponent, "dynamic temperature exponent", "dynatemp-exp")
	f.Float32(&p.XTCProbability, d.XTCProbability, "XTC probability (0: disabled)", "xtc-probability")
	f.Float32(&p.XTCThreshold, d.XTCThreshold, "XTC threshold (above 0.5: disabled)", "xtc-threshold")
	f.Float32(&p.TopNSigma, d.TopNSigma, "top-n-sigma sampling (-1: disabled)", "top-nsigma", "top-n-sigma")
	f.Int(&p.Mirostat, d.Mirostat, "mirostat sampling: 0 off, 1 mirostat, 2 mirostat 2.0 (replaces the other samplers)", "mirostat")
	f.Float32(&p.MirostatEta, d.MirostatEta, "mirostat learning rate (eta)", "mirostat-lr")
	f.Float32(&p.MirostatTau, d.MirostatTau, "mirostat target entropy (tau)", "mirostat-ent")
	f.Float32(&p.DRYMultiplier, d.DRYMultiplier, "DRY sampling multiplier (0: disabled)", "dry-multiplier")
	f.Float32(&p.DRYBase, d.DRYBase, "DRY sampling base", "dry-base")
	f.Int(&p.DRYAllowedLength, d.DRYAllowedLength, "DRY: repetitions this long are not penalized", "dry-allowed-length")
	f.Int(&p.DRYPenaltyLastN, d.DRYPenaltyLastN, "DRY: tokens scanned for repetitions (-1: the context, 0: disabled)", "dry-penalty-last-n")
	f.Var(breakers, "DRY sequence breaker (repeat for several; \"none\" for none; default \\n : \" *)", "dry-sequence-breaker")
	f.String(samplers, "", "sampler order, ';'-separated (default "+strings.Join(sample.StageNames(sample.DefaultStages()), ";")+")", "samplers")
	f.String(seq, "", "sampler order in one letter each (default edskypmxt)", "sampling-seq", "sampler-seq")
	f.Var(bias, "TOKEN_ID(+|-)BIAS: add BIAS to the token's logit (e.g. 15043+1; -inf bans it); repeatable", "l", "logit-bias")
}

// chainFlags applies the sampler-order, DRY breaker and logit bias flags.
func chainFlags(p *sample.Params, samplers, seq string, breakers, bias multiString) error {
	var err error
	switch {
	case samplers != "" && seq != "":
		return fmt.Errorf("give --samplers or --sampling-seq, not both")
	case samplers != "":
		if p.Samplers, err = sample.ParseStages(strings.Split(samplers, ";")); err != nil {
			return fmt.Errorf("--samplers: %w", err)
		}
	case seq != "":
		if p.Samplers, err = sample.ParseStageChars(seq); err != nil {
			return fmt.Errorf("--sampling-seq: %w", err)
		}
	}
	if len(breakers) > 0 {
		p.DRYSequenceBreakers = nil
		for _, b := range breakers {
			if b != "none" {
				p.DRYSequenceBreakers = append(p.DRYSequenceBreakers, b)
			}
		}
	}
	for _, b := range bias {
		i := strings.IndexAny(b, "+-")
		if i <= 0 {
			return fmt.Errorf("--logit-bias %q: want TOKEN_ID+BIAS or TOKEN_ID-BIAS", b)
		}
		id, err1 := strconv.Atoi(b[:i])
		v, err2 := strconv.ParseFloat(b[i:], 32)
		if err1 != nil || err2 != nil || id < 0 || math.IsNaN(v) || math.IsInf(v, 1) {
			return fmt.Errorf("--logit-bias %q: want TOKEN_ID+BIAS or TOKEN_ID-BIAS", b)
		}
		p.LogitBias = append(p.LogitBias, sample.LogitBias{Token: int32(id), Bias: float32(v)})
	}
	return nil
}

// multiString is a repeatable string flag.
type multiString []string

func (m *multiString) String() string     { return strings.Join(*m, ",") }
func (m *multiString) Set(s string) error { *m = append(*m, s); return nil }

// specFlags are the speculative decoding flags (llama-server's names).
type specFlags struct {
	draft      string
	typ        string
	max, min   int
	pmin       float32
	ngram      int
	ctkd, ctvd string
	adapt      bool
}

func (sf *specFlags) register(f *flags) {
	f.String(&sf.draft, "", "draft model (GGUF) for speculative decoding; it must share the model's vocabulary", "md", "model-draft")
	f.String(&sf.typ, "none", "speculative decoding without a draft model: none, or ngram-simple (prompt lookup: draft what followed the latest earlier occurrence of the context's last n-gram; good for code edits and rewrites)", "spec-type")
	f.Int(&sf.ngram, engine.DefaultNGram, "longest n-gram prompt lookup matches (shorter ones are tried down to 1 token)", "spec-ngram-size-n", "spec-ngram-simple-size-n")
	f.Int(&sf.max, engine.DefaultDraftMax, "most tokens drafted per step", "draft-max", "draft", "draft-n")
	f.Int(&sf.min, 0, "fewest drafted tokens worth verifying (a shorter draft is dropped)", "draft-min", "draft-n-min")
	f.Float32(&sf.pmin, engine.DefaultDraftPMin, "the draft model stops drafting when its most probable token's probability is lower", "draft-p-min")
	f.Bool(&sf.adapt, false, "the draft model's draft length adapts as prompt lookup's does: it doubles after a wholly accepted draft and falls to one more than was accepted after a rejection (within --draft-max)", "draft-adapt")
	f.String(&sf.ctkd, "f16", "draft model's KV cache type for K", "ctkd", "cache-type-k-draft")
	f.String(&sf.ctvd, "f16", "draft model's KV cache type for V", "ctvd", "cache-type-v-draft")
}

// options returns the speculation settings (nil: none) and the draft
// model's path.
func (sf *specFlags) options(cache engine.CacheOptions) (*engine.SpecOptions, error) {
	o := &engine.SpecOptions{Max: sf.max, Min: sf.min, PMin: sf.pmin, NGram: sf.ngram, Adapt: sf.adapt}
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

// autoKeyChannels turns centred keys on for --dynamic-cache auto (the
// preset was measured with them) unless --cache-key-channels was given.
func autoKeyChannels(f *flags, pf *cachepolicy.Flags, o *engine.CacheOptions) {
	if pf.Dynamic == cachepolicy.Auto && !f.given("cache-key-channels") {
		o.KeyChannels = "centre"
	}
}
