package engine_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/model"
	"github.com/kvserve/kvserve/internal/perplexity"
	"github.com/kvserve/kvserve/internal/sample"
	"github.com/kvserve/kvserve/internal/synth"
	"github.com/kvserve/kvserve/internal/testassets"
)

// synthFixture is testdata/llamacpp/synth.json: llama.cpp's perplexity and
// top-10 tokens on kvserve synth's models (scripts/synth-llamacpp.sh).
type synthFixture struct {
	PPL struct {
		Ctx, Chunks int
	} `json:"ppl"`
	Entries []struct {
		Preset, Type, Cache string
		Seed                uint64
		Layers              int
		SHA256              string `json:"sha256"`
		PPL                 float64
		PPLNoFA             float64 `json:"ppl_fa0"` // llama.cpp without flash attention: its own noise
		PromptTokens        []int   `json:"prompt_tokens"`
		Top10               []int   `json:"top10"`
	} `json:"entries"`
}

// Every architecture against llama.cpp, on synthetic models of each family
// (tiny presets in two seeds and each weight type, and a real-shape preset
// cut to a few layers): the file is the one llama.cpp scored (same SHA-256),
// kvserve's perplexity of dev.txt is within 0.1% of llama.cpp's with f16
// weights and cache, 0.5% with q8_0 and q4_0 caches, and with quantized
// weights within llama.cpp's own noise on them (at least 0.2%: the largest
// difference between llama.cpp with flash attention on and off over the
// quantized entries, 0.32% today — random-weight models have near-flat
// predictions, PPL above the vocabulary size, where one rounding flip in
// the quantized activations moves the figure) — and the top-10 tokens of a
// fixed prompt are the same set up to ties at the boundary (a token
// llama.cpp ranks in its top 10 that kvserve does not must be within 0.05
// nats of kvserve's tenth, 0.1 with quantized weights).
func TestArchitecturesMatchLlamaCpp(t *testing.T) {
	// synth.json and any synth-<topic>.json beside it (one per family of
	// presets, so that each can be regenerated on its own), same settings.
	files, err := filepath.Glob("../../testdata/llamacpp/synth*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/llamacpp/synth*.json: %v", err)
	}
	var fx synthFixture
	for i, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var one synthFixture
		if err := json.Unmarshal(raw, &one); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if i > 0 && one.PPL != fx.PPL {
			t.Fatalf("%s: perplexity settings %+v differ from %s's %+v", f, one.PPL, files[0], fx.PPL)
		}
		fx.PPL = one.PPL
		fx.Entries = append(fx.Entries, one.Entries...)
	}
	text, err := os.ReadFile(testassets.Path(t, "eval/dev.txt"))
	if err != nil {
		t.Fatal(err)
	}
	shared := testassets.Dir(t)
	dir := t.TempDir()
	// llama.cpp's own noise on quantized weights: the largest relative
	// difference between its flash-attention and plain paths over every
	// quantized-weight entry.
	// (Mixture-of-experts entries are left out: their router's near-ties
	// make their own noise larger, see moeTol.)
	noiseQ := 0.0
	for _, e := range fx.Entries {
		if e.Type != "f16" && e.PPLNoFA > 0 && !isMoE(e.Preset) {
			noiseQ = max(noiseQ, math.Abs(e.PPLNoFA-e.PPL)/e.PPL)
		}
	}
	for _, e := range fx.Entries {
		cache := e.Cache
		if cache == "" {
			cache = "f16"
		}
		name := fmt.Sprintf("%s/%s/seed%d/cache-%s", e.Preset, e.Type, e.Seed, cache)
		if e.Layers > 0 {
			name += fmt.Sprintf("/layers%d", e.Layers)
		}
		t.Run(name, func(t *testing.T) {
			if testing.Short() && e.Layers > 0 {
				t.Skip("real-shape presets are slow; -short runs the tiny ones")
			}
			p, err := synth.Lookup(e.Preset)
			if err != nil {
				t.Fatal(err)
			}
			if e.Layers > 0 {
				if p, err = p.WithLayers(e.Layers); err != nil {
					t.Fatal(err)
				}
			}
			ft, err := synth.ParseFileType(e.Type)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "m.gguf")
			if err := synth.WriteFile(path, &synth.Options{Preset: p, Type: ft, Seed: e.Seed, Vocab: synth.VocabSource{Shared: shared}}); err != nil {
				t.Fatal(err)
			}
			defer os.Remove(path)
			if sum := fileSHA(t, path); sum != e.SHA256 {
				t.Fatalf("synth wrote a different file than llama.cpp scored (sha256 %s, fixture %s): regenerate the fixture", sum, e.SHA256)
			}
			eng, err := engine.Load(path, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer eng.Close()
			co := engine.DefaultCacheOptions()
			co.TypeK, co.TypeV = cache, cache
			co.Rotate = "off" // as llama.cpp stores them
			c, err := eng.NewCache(co, 1, fx.PPL.Ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			res, err := perplexity.Run(eng.Tok.Encode(string(text), true, true), eng.ChunkEvaluator(c, 512),
				perplexity.Options{Ctx: fx.PPL.Ctx, Chunks: fx.PPL.Chunks, BOS: eng.BOS()})
			if err != nil {
				t.Fatal(err)
			}
			tol, tie := 0.001, 0.05
			weights := e.Type
			if p.Arch == "gpt-oss" {
				weights = "mxfp4" // its experts are MXFP4 in every file type, as the converter keeps them
			}
			if weights != "f16" {
				// Quantized weights: activations are quantized too (Q8_K,
				// Q8_0), one rounding flip moves a near-flat distribution,
				// and llama.cpp's own two paths differ by up to noiseQ.
				tol, tie = max(0.002, noiseQ), 0.1
			}
			if cache != "f16" {
				tol = max(tol, 0.005)
			}
			if e.PPLNoFA > 0 {
				tol = max(tol, math.Abs(e.PPLNoFA-e.PPL)/e.PPL)
			}
			if isMoE(e.Preset) {
				tol = max(tol, moeTol(cache, weights))
			}
			d := (res.PPL - e.PPL) / e.PPL
			if math.Abs(d) > tol {
				t.Errorf("PPL %.4f, llama.cpp %.4f: %+.3f%% (allowed %.1f%%)", res.PPL, e.PPL, 100*d, 100*tol)
			}
			top, lp := topTokens(t, eng, co, e.PromptTokens, 10)
			tenth := lp[top[9]]
			// A MoE entry with a quantized cache or weights may see one
			// routing flip at the prompt's last tokens (see moeTol): up to
			// 3 of llama.cpp's 10 may then be out of kvserve's top 10, each
			// within 1 nat of the tenth.
			misses, allowed, far := 0, 0, tie
			if isMoE(e.Preset) && (cache != "f16" || weights != "f16") {
				allowed, far = 3, 1.0
			}
			for _, id := range e.Top10 {
				if slices.Contains(top, id) || tenth-lp[id] <= tie {
					continue
				}
				if misses++; misses > allowed || tenth-lp[id] > far {
					t.Errorf("llama.cpp's top-10 token %d has log-prob %.4f here, %.4f below the tenth (top-10 %v, llama.cpp %v)",
						id, lp[id], tenth-lp[id], top, e.Top10)
				}
			}
			t.Logf("PPL %.4f (llama.cpp %.4f, %+.3f%%; allowed %.2f%%), top-10 agree", res.PPL, e.PPL, 100*d, 100*tol)
		})
	}
}

// isMoE reports whether a preset is a mixture of experts.
func isMoE(preset string) bool {
	p, err := synth.Lookup(preset)
	return err == nil && p.NExpert > 0
}

// moeTol is the perplexity tolerance of mixture-of-experts entries: 0.5%
// with f16 weights and cache, 1% with quantized weights or cache. Their
// router picks the top k of many experts whose scores on random weights
// are often within rounding of each other: a token whose k-th and
// (k+1)-th experts swap between two correct implementations (f32 sums in
// another order, activations rounded to f16 or Q8 in another order) takes
// another FFN in that layer, and everything after it moves. Measured
// (docs/models.md, MoE parity): llama.cpp's own flash-attention on/off
// runs differ by up to 0.27% on these entries, kvserve by up to 0.52% from
// llama.cpp (q4_k_m weights); with every expert used (no selection) the
// same model matches llama.cpp within 0.005% (qwen3moe; gpt-oss, whose
// MXFP4 experts multiply Q8_0 activations, within 0.06%).
func moeTol(cache, weights string) float64 {
	if cache == "f16" && weights == "f16" {
		return 0.005
	}
	return 0.01
}

func fileSHA(t *testing.T, path string) string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// topTokens runs the prompt (exact ids) through a fresh cache and returns
// the n most likely next tokens and every token's log-probability.
func topTokens(t *testing.T, e *engine.Engine, co engine.CacheOptions, prompt []int, n int) ([]int, []float64) {
	c, err := e.NewCache(co, 1, len(prompt)+1)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := model.NewRunner(e.Model, e.Pool, len(prompt))
	// llama.cpp's context: the prompt and one token, padded to 256 (it
	// picks LongRoPE's factors by that size).
	r.SetContext((len(prompt) + 1 + 255) / 256 * 256)
	pos := make([]int, len(prompt))
	for i := range pos {
		pos[i] = i
	}
	logits, err := r.Forward(&model.Batch{Tokens: prompt, Pos: pos}, c)
	if err != nil {
		t.Fatal(err)
	}
	lse := sample.LogSumExp(logits)
	lp := make([]float64, len(logits))
	idx := make([]int, len(logits))
	for i := range idx {
		idx[i] = i
		lp[i] = float64(logits[i]) - lse
	}
	slices.SortFunc(idx, func(a, b int) int {
		if logits[a] > logits[b] {
			return -1
		}
		if logits[a] < logits[b] {
			return 1
		}
		return 0
	})
	return idx[:n], lp
}
