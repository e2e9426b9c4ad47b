package engine_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/perplexity"
	"github.com/kvserve/kvserve/internal/testassets"
)

// klRun evaluates dev.txt with the given cache, writing a KL base or
// comparing against one.
func klRun(t *testing.T, e *engine.Engine, tokens []int, co engine.CacheOptions, ctx, chunks int, baseOut *bytes.Buffer, base []byte) *perplexity.Result {
	t.Helper()
	cache, err := e.NewCache(co, 1, ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	o := perplexity.Options{Ctx: ctx, Chunks: chunks, BOS: e.BOS(), Vocab: e.Model.NVocab}
	if baseOut != nil {
		o.KLBaseOut = baseOut
	}
	if base != nil {
		o.KLBase = bytes.NewReader(base)
	}
	res, err := perplexity.Run(tokens, e.ChunkEvaluator(cache, 512), o)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// The harness's noise floor: an f32 cache against the f16 base has a mean
// KL divergence below 1e-4; a q4_0 cache is far above it; the base run
// compared with itself gives zero to the base file's resolution.
func TestKLDivergenceHarness(t *testing.T) {
	e, err := engine.Load(testassets.Path(t, "models/kvtest-27m-f16.gguf"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	text, err := os.ReadFile(testassets.Path(t, "eval/dev.txt"))
	if err != nil {
		t.Fatal(err)
	}
	tokens := e.Tok.Encode(string(text), true, true)
	const ctx, chunks = 1024, 4
	var base bytes.Buffer
	f16 := engine.DefaultCacheOptions()
	ref := klRun(t, e, tokens, f16, ctx, chunks, &base, nil)

	self := klRun(t, e, tokens, f16, ctx, chunks, nil, base.Bytes())
	// The base keeps log-probabilities at 16-bit resolution: a run against
	// its own base is within that resolution of zero.
	if self.KL.MeanKLD > 1e-7 || self.KL.SameTop != 1 || self.PPL != ref.PPL {
		t.Errorf("f16 vs its own base: KLD %g, same top %g, PPL %g vs %g", self.KL.MeanKLD, self.KL.SameTop, self.PPL, ref.PPL)
	}
	f32 := f16
	f32.TypeK, f32.TypeV = "f32", "f32"
	r32 := klRun(t, e, tokens, f32, ctx, chunks, nil, base.Bytes())
	t.Logf("f32 vs f16 cache: mean KLD %.3g, p99 %.3g, same top %.3f%%", r32.KL.MeanKLD, r32.KL.KLDQuantiles[0.99], 100*r32.KL.SameTop)
	if r32.KL.MeanKLD >= 1e-4 {
		t.Errorf("noise floor: f32 vs f16 mean KLD %g >= 1e-4", r32.KL.MeanKLD)
	}
	q4 := f16
	q4.TypeK, q4.TypeV, q4.Rotate = "q4_0", "q4_0", "off"
	r4 := klRun(t, e, tokens, q4, ctx, chunks, nil, base.Bytes())
	t.Logf("q4_0 (no rotation) vs f16 cache: mean KLD %.3g, same top %.3f%%", r4.KL.MeanKLD, 100*r4.KL.SameTop)
	if r4.KL.MeanKLD < 100*r32.KL.MeanKLD || r4.KL.SameTop >= r32.KL.SameTop {
		t.Errorf("q4_0 cache should be far from the base: KLD %g (f32: %g)", r4.KL.MeanKLD, r32.KL.MeanKLD)
	}
	var out bytes.Buffer
	r4.Report(&out)
	for _, want := range []string{"Mean    KLD:", "99.0%   KLD:", "Same top p:", "RMS Δp    :", "Final estimate: PPL = "} {
		if !bytes.Contains(out.Bytes(), []byte(want)) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
