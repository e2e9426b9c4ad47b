package main

import (
	"fmt"
	"os"

	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/perplexity"
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
	f.Int(&topK, perplexity.DefaultTopK, "log-probabilities kept per position in a base file", "kl-top-k")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
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
	e, err := engine.Load(mf.model, mf.threads)
	if err != nil {
		return err
	}
	defer e.Close()
	ctx := mf.ctx
	if ctx <= 0 {
		ctx = e.Model.NCtxTrain
	}
	o := perplexity.Options{Ctx: ctx, Chunks: chunks, BOS: e.BOS(), TopK: topK, Progress: os.Stderr}
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
	res, err := perplexity.Run(tokens, e.ChunkEvaluator(cache, min(mf.batch, ctx)), o)
	if err != nil {
		return err
	}
	for i, p := range res.ChunkPPL {
		fmt.Printf("[%d]%.4f,", i+1, p)
	}
	fmt.Println()
	fmt.Printf("%d chunks, %d scored tokens, %.1f s\n", res.Chunks, res.Tokens, res.Elapsed.Seconds())
	res.Report(os.Stdout)
	return nil
}
