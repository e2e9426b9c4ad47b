package main

import (
	"fmt"
	"os"

	"github.com/kvserve/kvserve/internal/cachepolicy"
	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/perplexity"
	"github.com/kvserve/kvserve/internal/tensor"
)

func cmdPerplexity(args []string) error {
	f := newFlags("perplexity", "kvserve perplexity [-m MODEL] -f TEXT [-c CTX] [--chunks N] [cache flags] [--kl-divergence-base FILE [--kl-divergence]]")
	var mf modelFlags
	mf.register(f, 512)
	var file, klBase string
	var chunks, topK int
	var kl bool
	f.String(&file, "", "text file to evaluate (special tokens in it are parsed)", "f", "file")
	f.Int(&chunks, -1, "maximum chunks to evaluate (-1: all)", "chunks")
	f.String(&klBase, "", "KL-divergence base file: written by this run, or read with --kl-divergence", "kl-divergence-base")
	f.Bool(&kl, false, "compare against the --kl-divergence-base file instead of writing it", "kl-divergence")
	f.Int(&topK, perplexity.DefaultTopK, "keep only the top N log-probabilities per position in a base file (0: the whole distribution, exact)", "kl-top-k")
	var growing bool
	var step, segment int
	var spans string
	var pf cachepolicy.Flags
	f.Bool(&growing, false, "evaluate one growing context of -c tokens per chunk (as a long chat fills its cache), scoring every position and applying the cache policy flags", "policy")
	f.Int(&step, 32, "with --policy: tokens per forward pass between policy applications", "policy-step")
	f.Int(&segment, 512, "with --policy: report KL divergence per segment of N positions", "segment")
	f.String(&spans, "", "with --policy: mark positions of every chunk as generated or reasoning tokens (the rest is prompt), e.g. generated:2048-4096 or reasoning:1024-3072,generated:3072-", "span")
	var cbScale string
	f.String(&cbScale, "search", "how codebook cache types (cb4, cb3, cb2) pick each block's scale: search (the default), maxabs or fine (to measure what the search buys)", "cache-cb-scale")
	pf.Bind(f)
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	mode, err := tensor.ParseCodebookScaleMode(cbScale)
	if err != nil {
		return fmt.Errorf("--cache-cb-scale: %w", err)
	}
	tensor.SetCodebookScaleMode(mode)
	if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q", pos[0])
	}
	if file == "" {
		return fmt.Errorf("no text: give -f FILE")
	}
	if kl && klBase == "" {
		return fmt.Errorf("--kl-divergence needs --kl-divergence-base FILE (made by an earlier run)")
	}
	text, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	e, err := engine.LoadWith(mf.model, mf.threads, engine.LoadOptions{NoRepack: mf.noRepack})
	if err != nil {
		return err
	}
	defer e.Close()
	ctx := mf.ctx
	if ctx <= 0 {
		ctx = e.Model.NCtxTrain
	}
	if w := e.ContextWarning(ctx); w != "" {
		fmt.Fprintf(os.Stderr, "warning: %s\n", w)
	}
	autoKeyChannels(f, &pf, &mf.cache)
	pol, err := pf.Policy()
	if err != nil {
		return err
	}
	if pol != nil && !growing {
		return fmt.Errorf("cache policy flags need --policy (one growing context per chunk)")
	}
	roleSpans, err := engine.ParseSpans(spans)
	if err != nil {
		return fmt.Errorf("--span: %w", err)
	}
	if len(roleSpans) > 0 && !growing {
		return fmt.Errorf("--span needs --policy (one growing context per chunk)")
	}
	if pol != nil {
		if err := pol.Validate(e.Model.NLayer, e.Model.HeadDim, e.Model.HeadDimV); err != nil {
			return cachepolicy.FlagError(err)
		}
	}
	o := perplexity.Options{Ctx: ctx, Chunks: chunks, BOS: e.BOS(), TopK: topK, Progress: os.Stderr, ScoreAll: growing, Vocab: e.Model.NVocab}
	if growing {
		o.Segment = segment
	}
	if klBase != "" {
		if kl {
			fb, err := os.Open(klBase)
			if err != nil {
				return err
			}
			defer fb.Close()
			o.KLBase = fb
		} else {
			fb, err := os.Create(klBase)
			if err != nil {
				return err
			}
			defer fb.Close()
			o.KLBaseOut = fb
		}
	}
	cache, err := e.NewCache(mf.cache, 1, ctx)
	if err != nil {
		return err
	}
	defer cache.Close()
	tokens := e.Tok.Encode(string(text), true, true)
	fmt.Fprintf(os.Stderr, "perplexity: %s, %d tokens, %d per chunk, cache K %s V %s, %d threads\n",
		e.Path, len(tokens), ctx, mf.cache.TypeK, mf.cache.TypeV, e.Pool.Threads())
	eval := e.ChunkEvaluator(cache, min(mf.batch, ctx))
	var bits engine.BitsTracker
	var pst cachepolicy.Stats
	if growing {
		eval = e.GrowingEvaluator(cache, engine.GrowingOptions{Step: max(1, min(step, ctx)), Policy: pol, Spans: roleSpans, Bits: &bits, Stats: &pst})
	}
	res, err := perplexity.Run(tokens, eval, o)
	if err != nil {
		return err
	}
	if growing {
		fmt.Printf("average bits per cached value: %.3f (at the end: %.3f); policy conversions: %d by age, %d by length, %d by role, %d by budget\n",
			bits.Mean(), bits.Final, pst.ByAge, pst.ByLength, pst.ByRole, pst.ByBudget)
		if pst.Evictions > 0 {
			fmt.Printf("evicted: %d tokens in %d evictions (--cache-evict)\n", pst.EvictedTokens, pst.Evictions)
		}
	}
	for i, p := range res.ChunkPPL {
		fmt.Printf("[%d]%.4f,", i+1, p)
	}
	fmt.Println()
	fmt.Printf("%d chunks, %d scored tokens, %.1f s\n", res.Chunks, res.Tokens, res.Elapsed.Seconds())
	res.Report(os.Stdout)
	return nil
}
