package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/kvserve/kvserve/internal/cachetune"
	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/kvcache"
)

// tuneReport is tune-cache's result (its --json output).
type tuneReport struct {
	Model       string                `json:"model"`
	Text        string                `json:"text"`
	Tokens      int                   `json:"tokens,omitempty"`
	Ctx         int                   `json:"ctx"`
	Chunks      int                   `json:"chunks"` // of the screen
	BasePPL     float64               `json:"base_ppl,omitempty"`
	Budget      float64               `json:"budget_bits"`
	Types       []string              `json:"types"`
	KeyChannels string                `json:"key_channels"`
	KeyEncode   string                `json:"key_encode"`
	PageTokens  int                   `json:"page_tokens"`
	Screen      []cachetune.Item      `json:"screen"`
	ScreenFrom  string                `json:"screen_from,omitempty"` // --screen FILE
	Allocation  *cachetune.Allocation `json:"allocation"`
	// Sweep is the sweep's allocation before --fill spent the rest.
	Sweep   *cachetune.Allocation `json:"sweep,omitempty"`
	Setting cachetune.Setting     `json:"setting"`
	Flags   []string              `json:"flags"` // for kvserve serve
	Verify  *tuneVerify           `json:"verify,omitempty"`
}

type tuneVerify struct {
	Ctx     int     `json:"ctx"`
	Chunks  int     `json:"chunks"`
	KLD     float64 `json:"kld"`
	KLDErr  float64 `json:"kld_err"`
	P99     float64 `json:"kld_p99"`
	SameTop float64 `json:"same_top"`
	PPL     float64 `json:"ppl"`
	Seconds float64 `json:"seconds"`
}

func cmdTuneCache(args []string) error {
	f := newFlags("tune-cache", "kvserve tune-cache [-m MODEL] -f TEXT [--bits 4.5] [-c 2048] [--chunks 3] [--types LIST] [--verify-chunks N] [--json]")
	var model, file, types, screenFile string
	var threads, ctx, batch, chunks, verify, pageTokens int
	var bits float64
	var asJSON, fill bool
	var keyChannels, keyEncode string
	f.String(&model, "", "model file (GGUF); default: the embedded kvtest-27m Q8_0", "m", "model")
	f.String(&file, "", "text file the screen and the verification evaluate (e.g. ../shared/eval/dev.txt)", "f", "file")
	f.Float(&bits, 4.5, "budget: average bits per cached value, K and V, scales and key means included", "bits")
	f.Int(&ctx, 2048, "tokens per chunk", "c", "ctx-size")
	f.Int(&chunks, 3, "chunks each screen run evaluates (2 runs per attention layer)", "chunks")
	f.String(&types, cachetune.DefaultTypes, "types the allocator chooses among (known: "+strings.Join(cachetune.KnownTypes(), ", ")+")", "types")
	f.String(&keyChannels, "centre", "--cache-key-channels of the screen and the setting: off, centre or scale", "cache-key-channels")
	f.String(&keyEncode, "query", "--cache-key-encode of the screen and the setting: mse or query", "cache-key-encode")
	f.Int(&pageTokens, cachetune.DefaultPageTokens, "--cache-page-tokens of the screen and the setting (the key means cost 16/N bits per key value)", "cache-page-tokens")
	f.Int(&verify, 0, "after choosing, measure the setting's KLD over N chunks (0: do not)", "verify-chunks")
	f.Bool(&fill, false, "after the sweep (scripts/layer_alloc.py's allocation), spend what it left of the budget one layer side at a time, most predicted KLD saved per bit first", "fill")
	f.String(&screenFile, "", "take the screen from an earlier run's --json output instead of measuring it (same model, text and cache flags)", "screen")
	f.Bool(&asJSON, false, "print the result as JSON (progress still goes to stderr)", "json")
	f.Int(&threads, 0, "threads (0: one per CPU)", "t", "threads")
	f.Int(&batch, engine.DefaultBatch, "prompt micro-batch size in tokens", "b", "batch-size")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q", pos[0])
	}
	kinds, err := cachetune.ParseKinds(types)
	if err != nil {
		return fmt.Errorf("--types: %w", err)
	}
	over, err := cachetune.MeansOverhead(keyChannels, pageTokens)
	if err != nil {
		return err
	}
	if keyEncode != "mse" && keyEncode != "query" {
		return fmt.Errorf("--cache-key-encode must be mse or query, not %q", keyEncode)
	}
	if chunks < 1 || verify < 0 || ctx < 2 || pageTokens < 1 {
		return fmt.Errorf("--chunks and --cache-page-tokens must be at least 1, -c at least 2, --verify-chunks at least 0")
	}
	measure := screenFile == "" || verify > 0
	if file == "" && measure {
		return fmt.Errorf("no text: give -f FILE (the screen measures the model on it, e.g. ../shared/eval/dev.txt)")
	}
	var text []byte
	if measure {
		if text, err = os.ReadFile(file); err != nil {
			return err
		}
	}
	var saved *tuneReport
	if screenFile != "" {
		if saved, err = readScreen(screenFile); err != nil {
			return err
		}
	}
	// The budget is checked against the cheapest type before any run.
	probe := []cachetune.Item{{Side: "K", Weight: 1}, {Side: "V", Weight: 1}}
	if _, err := cachetune.Allocate(probe, kinds, bits, over); err != nil {
		return fmt.Errorf("--bits: %w", err)
	}

	e, err := engine.LoadWith(model, threads, engine.LoadOptions{})
	if err != nil {
		return err
	}
	defer e.Close()
	m := e.Model
	if w := e.ContextWarning(ctx); w != "" {
		fmt.Fprintf(os.Stderr, "warning: %s\n", w)
	}
	for _, k := range kinds {
		for _, hd := range []int{m.HeadDim, m.HeadDimV} {
			if err := kvcache.CheckType(k.Type, hd); err != nil {
				return fmt.Errorf("--types: %s does not fit this model: %w", k.Name, err)
			}
		}
	}
	base := cachetune.Base{KeyChannels: keyChannels, KeyEncode: keyEncode, PageTokens: pageTokens}
	co := engine.DefaultCacheOptions()
	co.KeyChannels, co.KeyEncode, co.PageTokens = keyChannels, keyEncode, pageTokens
	rep := &tuneReport{Model: e.Path, Text: file, Ctx: ctx, Chunks: chunks, Budget: bits, KeyChannels: keyChannels,
		KeyEncode: keyEncode, PageTokens: pageTokens}
	for _, k := range kinds {
		rep.Types = append(rep.Types, k.Name)
	}
	if saved != nil {
		if err := saved.matches(rep, cachetune.Layers(e)); err != nil {
			return fmt.Errorf("--screen %s: %w", screenFile, err)
		}
		if saved.Model != "" && saved.Model != e.Path {
			fmt.Fprintf(os.Stderr, "warning: the screen in %s was measured on %s, not %s\n", screenFile, saved.Model, e.Path)
		}
	}
	var sess *cachetune.Session
	if measure {
		baseChunks := verify
		if saved == nil {
			baseChunks = max(chunks, verify)
		}
		fmt.Fprintf(os.Stderr, "tune-cache: %s, ctx %d, f16 base over %d chunks, %d threads\n", e.Path, ctx, baseChunks, e.Pool.Threads())
		o := cachetune.Options{Ctx: ctx, Chunks: min(chunks, baseChunks), BaseChunks: baseChunks, Batch: batch, Cache: co, Progress: os.Stderr}
		if sess, err = cachetune.NewSession(e, string(text), o); err != nil {
			return err
		}
		defer sess.Close()
		// An interrupted run removes its base file (gigabytes at real
		// vocabularies) before exiting.
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(sig)
		go func(path string) {
			if _, ok := <-sig; ok {
				os.Remove(path)
				fmt.Fprintln(os.Stderr, "tune-cache: interrupted")
				os.Exit(130)
			}
		}(sess.BasePath())
		if err := sess.RunBase(); err != nil {
			return err
		}
		rep.Tokens, rep.BasePPL = sess.Tokens(), sess.BasePPL
	}
	if saved != nil {
		// The screen's own context and chunks; its text when this run
		// measures nothing.
		rep.Screen, rep.ScreenFrom, rep.Ctx, rep.Chunks = saved.Screen, screenFile, saved.Ctx, saved.Chunks
		if !measure {
			rep.Text, rep.Tokens, rep.BasePPL = saved.Text, saved.Tokens, saved.BasePPL
		}
	} else {
		rep.Chunks = min(chunks, sess.BaseChunks)
		if rep.Screen, err = sess.Screen(); err != nil {
			return err
		}
	}
	if rep.Allocation, err = cachetune.Allocate(rep.Screen, kinds, bits, over); err != nil {
		return err
	}
	if fill {
		rep.Sweep = rep.Allocation
		rep.Allocation = cachetune.Fill(rep.Sweep, kinds, bits, over)
	}
	rep.Setting = cachetune.NewSetting(rep.Allocation, kinds, base)
	rep.Flags = rep.Setting.Args()
	if verify > 0 {
		n := min(verify, sess.BaseChunks)
		fmt.Fprintf(os.Stderr, "verifying the setting over %d chunks: %s\n", n, strings.Join(rep.Flags, " "))
		res, err := sess.Measure(rep.Setting.Options(), n)
		if err != nil {
			return fmt.Errorf("verification: %w", err)
		}
		kl := res.KL
		rep.Verify = &tuneVerify{Ctx: ctx, Chunks: res.Chunks, KLD: kl.MeanKLD, KLDErr: kl.MeanKLDErr, P99: kl.KLDQuantiles[0.99],
			SameTop: kl.SameTop, PPL: res.PPL, Seconds: res.Elapsed.Seconds()}
	}
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	rep.print(os.Stdout)
	return nil
}

// readScreen reads an earlier --json output.
func readScreen(path string) (*tuneReport, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--screen: %w", err)
	}
	var r tuneReport
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("--screen %s: not tune-cache --json output: %w", path, err)
	}
	if len(r.Screen) == 0 {
		return nil, fmt.Errorf("--screen %s: no screen in it", path)
	}
	return &r, nil
}

// matches checks that a saved screen was measured as this run would.
func (r *tuneReport) matches(now *tuneReport, layers []int) error {
	if r.KeyChannels != now.KeyChannels || r.KeyEncode != now.KeyEncode || r.PageTokens != now.PageTokens {
		return fmt.Errorf("it was measured with --cache-key-channels %s --cache-key-encode %s --cache-page-tokens %d, this run has %s, %s, %d",
			r.KeyChannels, r.KeyEncode, r.PageTokens, now.KeyChannels, now.KeyEncode, now.PageTokens)
	}
	seen := map[string]bool{}
	for _, it := range r.Screen {
		key := fmt.Sprintf("%s %d", it.Side, it.Layer)
		if seen[key] {
			return fmt.Errorf("it names the %s cache of layer %d twice", it.Side, it.Layer)
		}
		seen[key] = true
	}
	for _, l := range layers {
		for _, sd := range []string{"K", "V"} {
			if !seen[fmt.Sprintf("%s %d", sd, l)] {
				return fmt.Errorf("it has no %s figure for layer %d (a screen of another model?)", sd, l)
			}
		}
	}
	if len(seen) != 2*len(layers) {
		return fmt.Errorf("it has %d figures; this model has %d attention layers (a screen of another model?)", len(seen), len(layers))
	}
	return nil
}

func (r *tuneReport) print(w io.Writer) {
	a := r.Allocation
	fmt.Fprintf(w, "model %s", r.Model)
	if r.Text != "" {
		fmt.Fprintf(w, ", text %s", r.Text)
	}
	if r.Tokens > 0 {
		fmt.Fprintf(w, " (%d tokens; f16 PPL %.4f)", r.Tokens, r.BasePPL)
	}
	if r.ScreenFrom != "" {
		fmt.Fprintf(w, "; screen from %s", r.ScreenFrom)
	}
	fmt.Fprintf(w, "\nscreen: KLD against the f16 cache with %s on one layer's K or V cache, the rest f16 (ctx %d, %d chunks, key channels %s, key encode %s)\n",
		cachetune.ScreenType, r.Ctx, r.Chunks, r.KeyChannels, r.KeyEncode)
	type row struct{ k, v *cachetune.Choice }
	rows := map[int]*row{}
	var order []int
	for i := range a.Choices {
		c := &a.Choices[i]
		if rows[c.Layer] == nil {
			rows[c.Layer] = &row{}
			order = append(order, c.Layer)
		}
		if c.Side == "K" {
			rows[c.Layer].k = c
		} else {
			rows[c.Layer].v = c
		}
	}
	fmt.Fprintf(w, "%5s  %10s %10s  %-6s %-6s  %10s\n", "layer", "K "+cachetune.ScreenType, "V "+cachetune.ScreenType, "K type", "V type", "predicted")
	for _, l := range order {
		rw := rows[l]
		kk, vk, kt, vt, pred := "-", "-", "-", "-", 0.0
		if rw.k != nil {
			kk, kt, pred = fmt.Sprintf("%.3e", rw.k.KLD), rw.k.Type, pred+rw.k.Predicted
		}
		if rw.v != nil {
			vk, vt, pred = fmt.Sprintf("%.3e", rw.v.KLD), rw.v.Type, pred+rw.v.Predicted
		}
		fmt.Fprintf(w, "%5d  %10s %10s  %-6s %-6s  %10.3e\n", l, kk, vk, kt, vt, pred)
	}
	fmt.Fprintf(w, "bits per cached value: %.3f (K %.3f, V %.3f; budget %.3g; types %s)\n", a.Bits, a.BitsK, a.BitsV, r.Budget, strings.Join(r.Types, ","))
	fmt.Fprintf(w, "predicted KLD: %.3e (the screen's damages × the types' ratios, summed; %d chunks)\n", a.Predicted, r.Chunks)
	if r.Sweep != nil {
		fmt.Fprintf(w, "--fill: the sweep alone chose %.3f bits, predicted KLD %.3e\n", r.Sweep.Bits, r.Sweep.Predicted)
	}
	if v := r.Verify; v != nil {
		fmt.Fprintf(w, "measured KLD:  %.3e ± %.1e over %d chunks of %d (p99 %.3e, same top token %.3f%%, PPL %.4f; %.0f s)\n",
			v.KLD, v.KLDErr, v.Chunks, v.Ctx, v.P99, 100*v.SameTop, v.PPL, v.Seconds)
	}
	fmt.Fprintf(w, "flags for kvserve serve:\n  %s\n", strings.Join(r.Flags, " "))
}
