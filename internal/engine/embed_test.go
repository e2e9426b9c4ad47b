package engine_test

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/gguf"
	"github.com/kvserve/kvserve/internal/synth"
	"github.com/kvserve/kvserve/internal/testassets"
)

// TestEmbeddingParity checks kvserve's embeddings of the shared test models
// against llama.cpp's (testdata/llamacpp/embeddings.json, written by
// scripts/embed-llamacpp.sh) for every pooling, on llama.cpp's token ids:
// cosine similarity and relative norm.
func TestEmbeddingParity(t *testing.T) {
	b, err := os.ReadFile("../../testdata/llamacpp/embeddings.json")
	if err != nil {
		t.Fatal(err)
	}
	var fx struct {
		Entries []struct {
			Model, Pooling, Text string
			Tokens               []int
			Embedding            []float64
		}
	}
	if err := json.Unmarshal(b, &fx); err != nil {
		t.Fatal(err)
	}
	engines := map[string]*engine.Engine{}
	scheds := map[string]*engine.Scheduler{}
	defer func() {
		for m, s := range scheds {
			s.Close()
			engines[m].Close()
		}
	}()
	worst := 1.0
	plain := map[string][]float64{}
	for _, e := range fx.Entries {
		plain[e.Model+" "+e.Pooling+" "+e.Text] = e.Embedding
	}
	for _, e := range fx.Entries {
		if base, variant, _ := strings.Cut(e.Model, "+"); strings.HasPrefix(variant, "lora") {
			// The adapter must matter, or matching llama.cpp proves nothing.
			if c := cos64(e.Embedding, plain[base+" "+e.Pooling+" "+e.Text]); c > 0.999 {
				t.Errorf("%s %s: llama.cpp's vector with the adapter has cosine %.5f with the one without", e.Model, e.Pooling, c)
			}
		}
		sc := scheds[e.Model]
		if sc == nil {
			base, variant, _ := strings.Cut(e.Model, "+")
			path := testassets.Path(t, "models/"+base+".gguf")
			if variant == "rank" {
				path = rankModel(t, path)
			}
			eng, err := engine.Load(path, 2)
			if err != nil {
				t.Fatal(err)
			}
			if scale, ok := strings.CutPrefix(variant, "lora"); ok {
				s, err := strconv.ParseFloat(scale, 32)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := eng.LoadLora(loraAdapter(t, path), float32(s)); err != nil {
					t.Fatal(err)
				}
			}
			if sc, err = eng.NewScheduler(engine.SchedulerOptions{Slots: 1, SlotCtx: 512}); err != nil {
				t.Fatal(err)
			}
			sc.Start()
			engines[e.Model], scheds[e.Model] = eng, sc
		}
		pool, err := engine.ParsePooling(e.Pooling)
		if err != nil {
			t.Fatal(err)
		}
		vecs, err := sc.Embed(context.Background(), e.Tokens, pool)
		if err != nil {
			t.Fatal(err)
		}
		got := vecs[len(vecs)-1] // pooling none: the fixture holds the last token's row
		if pool == engine.PoolNone && len(vecs) != len(e.Tokens) {
			t.Fatalf("%s none: %d rows for %d tokens", e.Model, len(vecs), len(e.Tokens))
		}
		if len(got) != len(e.Embedding) {
			t.Fatalf("%s: width %d, llama.cpp %d", e.Model, len(got), len(e.Embedding))
		}
		var dot, ng, nw float64
		for i, w := range e.Embedding {
			g := float64(got[i])
			dot += g * w
			ng += g * g
			nw += w * w
		}
		if pool == engine.PoolRank {
			// Scores (softmax over the head's rows): compare them as numbers.
			for i, w := range e.Embedding {
				if d := math.Abs(float64(got[i]) - w); d > 1e-3 {
					t.Errorf("%s rank %q: scores %v, llama.cpp %v", e.Model, e.Text, got, e.Embedding)
					break
				}
			}
			t.Logf("%-22s rank %q: scores %v, llama.cpp %v", e.Model, e.Text[:12], got, e.Embedding)
			continue
		}
		cos := dot / math.Sqrt(ng*nw)
		rel := math.Abs(math.Sqrt(ng)-math.Sqrt(nw)) / math.Sqrt(nw)
		worst = min(worst, cos)
		t.Logf("%-22s %-4s %q: cosine %.7f, norm %.4f vs %.4f", e.Model, e.Pooling, e.Text[:12], cos, math.Sqrt(ng), math.Sqrt(nw))
		if cos < 0.9999 || rel > 1e-3 {
			t.Errorf("%s %s %q: cosine %.6f, relative norm difference %.2e with llama.cpp", e.Model, e.Pooling, e.Text, cos, rel)
		}
	}
	t.Logf("worst cosine with llama.cpp over %d embeddings: %.7f", len(fx.Entries), worst)
}

func cos64(a, b []float64) float64 {
	var d, na, nb float64
	for i := range a {
		d += a[i] * b[i]
		na += a[i] * a[i]
		nb += b[i] * b[i]
	}
	return d / math.Sqrt(na*nb)
}

// rankModel writes src with the rank head scripts/embed-llamacpp.sh gave
// llama.cpp (synth.WithRankHead, labels yes/no, seed 1).
func rankModel(t *testing.T, src string) string {
	f, err := gguf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	path := filepath.Join(t.TempDir(), "rank.gguf")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := synth.WithRankHead(f, out, []string{"yes", "no"}, 1); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// loraAdapter writes the adapter scripts/embed-llamacpp.sh gave llama.cpp
// (synth.TestLoraAdapter) for the base model at path.
func loraAdapter(t *testing.T, base string) string {
	f, err := gguf.Open(base)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	path := filepath.Join(t.TempDir(), "lora.gguf")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := synth.TestLoraAdapter(f, out); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestNormalizeEmbedding(t *testing.T) {
	for _, c := range []struct {
		norm int
		want []float32
	}{
		{-1, []float32{3, -4}},
		{0, []float32{3 * 32760 / 4.0, -32760}},
		{1, []float32{3.0 / 7, -4.0 / 7}},
		{2, []float32{0.6, -0.8}},
	} {
		v := []float32{3, -4}
		engine.NormalizeEmbedding(v, c.norm)
		for i := range v {
			if math.Abs(float64(v[i]-c.want[i])) > 1e-5*math.Abs(float64(c.want[i])) {
				t.Errorf("norm %d: %v, want %v", c.norm, v, c.want)
			}
		}
	}
	z := []float32{0, 0}
	engine.NormalizeEmbedding(z, 2)
	if z[0] != 0 || z[1] != 0 {
		t.Errorf("zero vector: %v", z)
	}
}
