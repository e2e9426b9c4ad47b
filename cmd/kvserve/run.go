package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"slices"

	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/sample"
	"github.com/kvserve/kvserve/internal/tensor"
)

func cmdRun(args []string) error {
	f := newFlags("run", "kvserve run [-m MODEL] -p PROMPT [-n N] [flags]")
	var mf modelFlags
	mf.register(f, 0)
	var prompt, promptFile string
	var n int
	var verbose, ignoreEOS bool
	var sp sample.Params
	f.String(&prompt, "", "prompt text", "p", "prompt")
	f.String(&promptFile, "", "read the prompt from a file", "f", "file")
	f.Int(&n, 128, "tokens to generate (-1: until end of text or context)", "n", "n-predict")
	f.Bool(&verbose, false, "print model and cache details, and cache usage", "v", "verbose")
	f.Bool(&ignoreEOS, false, "keep generating after end-of-generation tokens", "ignore-eos")
	var cpuprofile string
	f.String(&cpuprofile, "", "write a CPU profile (pprof) of the prompt and generation (not the load) to FILE", "cpuprofile")
	registerSampling(f, &sp)
	var sf specFlags
	sf.register(f)
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q (the prompt goes after -p)", pos[0])
	}
	if promptFile != "" {
		b, err := os.ReadFile(promptFile)
		if err != nil {
			return err
		}
		prompt = string(b)
	}
	if prompt == "" {
		return fmt.Errorf("no prompt: give -p TEXT or -f FILE")
	}
	if err := sp.Validate(); err != nil {
		return err
	}
	spec, err := sf.options(mf.cache)
	if err != nil {
		return err
	}
	e, err := engine.LoadWith(mf.model, mf.threads, engine.LoadOptions{NoRepack: mf.noRepack})
	if err != nil {
		return err
	}
	defer e.Close()
	if sf.draft != "" {
		d, err := engine.LoadDraft(sf.draft, e)
		if err != nil {
			return err
		}
		defer d.Close()
		spec.Draft = d
	}
	if verbose {
		m := e.Model
		fmt.Fprintf(os.Stderr, "model: %s (%s, %d layers, d=%d, %d heads / %d KV heads × %d, vocab %d)\n",
			e.Path, m.Arch, m.NLayer, m.NEmbd, m.NHead, m.NHeadKV, m.HeadDim, m.NVocab)
		fmt.Fprintf(os.Stderr, "cache: K %s, V %s, rotate %s; threads %d\n", mf.cache.TypeK, mf.cache.TypeV, mf.cache.Rotate, e.Pool.Threads())
	}
	ctxSize := mf.ctx
	if ctxSize <= 0 {
		ctxSize = e.Model.NCtxTrain
	}
	if w := e.ContextWarning(ctxSize); w != "" {
		fmt.Fprintf(os.Stderr, "warning: %s\n", w)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	stopProfile, err := startCPUProfile(cpuprofile)
	if err != nil {
		return err
	}
	defer stopProfile()
	opts := engine.GenerateOptions{
		Prompt: prompt, NPredict: n, Ctx: mf.ctx, Batch: mf.batch, Sample: sp, IgnoreEOS: ignoreEOS, Cache: mf.cache,
		Spec: spec,
	}
	fmt.Print(prompt)
	st, err := e.Generate(ctx, opts, func(s string) error {
		_, err := fmt.Print(s)
		return err
	})
	fmt.Println()
	if st != nil {
		fmt.Fprintf(os.Stderr, "prompt: %d tokens in %.3f s, %.1f tokens/s | generation: %d tokens in %.3f s, %.1f tokens/s\n",
			st.PromptTokens, st.PromptTime.Seconds(), rate(st.PromptTokens, st.PromptTime.Seconds()),
			st.GenTokens, st.GenTime.Seconds(), rate(st.GenTokens, st.GenTime.Seconds()))
		if spec != nil {
			fmt.Fprintf(os.Stderr, "speculative: %d tokens drafted, %d accepted (%.1f%%)\n",
				st.DraftN, st.DraftAccepted, 100*rate(st.DraftAccepted, float64(st.DraftN)))
		}
		if verbose {
			fmt.Fprintf(os.Stderr, "cache-usage: %s\n", usageLine(st))
		}
	}
	return err
}

func rate(n int, s float64) float64 {
	if s <= 0 {
		return 0
	}
	return float64(n) / s
}

func usageLine(st *engine.GenerateStats) string {
	s := fmt.Sprintf("%d tokens, %d bytes", st.CacheTokens, st.CacheBytes)
	types := make([]tensor.Type, 0, len(st.CacheByType))
	for t := range st.CacheByType {
		types = append(types, t)
	}
	slices.Sort(types)
	for _, t := range types {
		s += fmt.Sprintf(", %s %d", t, st.CacheByType[t])
	}
	return s
}
