package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/ops"
	"github.com/kvserve/kvserve/internal/perplexity"
	"github.com/kvserve/kvserve/internal/sample"
	"github.com/kvserve/kvserve/internal/synth"
	"github.com/kvserve/kvserve/internal/testassets"
)

// TestRepackIdentical checks that weights repacked at load (the default)
// give exactly what the file's layout gives: the same perplexity to the
// last bit (prefill: the GEMM path) and the same greedy tokens (decode:
// the matrix-vector path), on synthetic models whose matrices are packed.
func TestRepackIdentical(t *testing.T) {
	text, err := os.ReadFile(testassets.Path(t, "eval/dev.txt"))
	if err != nil {
		t.Fatal(err)
	}
	shared := testassets.Dir(t)
	dir := t.TempDir()
	for _, c := range []struct{ preset, typ string }{{"tiny-llama", "q8_0"}, {"tiny-qwen3", "q4_k_m"}, {"tiny-llama", "q5_k_m"}, {"tiny-llama", "f16"}} {
		t.Run(c.preset+"/"+c.typ, func(t *testing.T) {
			p, err := synth.Lookup(c.preset)
			if err != nil {
				t.Fatal(err)
			}
			ft, err := synth.ParseFileType(c.typ)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, c.preset+"-"+c.typ+".gguf")
			if err := synth.WriteFile(path, &synth.Options{Preset: p, Type: ft, Seed: 1, Vocab: synth.VocabSource{Shared: shared}}); err != nil {
				t.Fatal(err)
			}
			run := func(noRepack bool) (float64, []int) {
				e, err := engine.LoadWith(path, 2, engine.LoadOptions{NoRepack: noRepack})
				if err != nil {
					t.Fatal(err)
				}
				defer e.Close()
				if !noRepack && e.Packed.Matrices == 0 && ops.CanPack(e.Model.Layers[0].Wq.Type, e.Model.Layers[0].Wq.In) {
					t.Fatal("no matrix was packed")
				}
				t.Logf("noRepack=%v: %+v", noRepack, e.Packed)
				c, err := e.NewCache(engine.DefaultCacheOptions(), 1, 256)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				res, err := perplexity.Run(e.Tok.Encode(string(text[:20000]), true, true), e.ChunkEvaluator(c, 512),
					perplexity.Options{Ctx: 256, Chunks: 2, BOS: e.BOS()})
				if err != nil {
					t.Fatal(err)
				}
				sp := sample.DefaultParams()
				sp.Temperature = 0
				st, err := e.Generate(context.Background(), engine.GenerateOptions{Prompt: "The history of the city", NPredict: 24, Ctx: 256,
					Sample: sp, IgnoreEOS: true, Cache: engine.DefaultCacheOptions()}, func(string) error { return nil })
				if err != nil {
					t.Fatal(err)
				}
				return res.PPL, st.Tokens
			}
			pplA, tokA := run(true)
			pplB, tokB := run(false)
			if pplA != pplB {
				t.Errorf("perplexity %v without repacking, %v with", pplA, pplB)
			}
			if !slices.Equal(tokA, tokB) {
				t.Errorf("greedy tokens differ:\n%v\n%v", tokA, tokB)
			}
		})
	}
}
