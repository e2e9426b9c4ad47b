package synth_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvserve/kvserve/internal/chat"
	"github.com/kvserve/kvserve/internal/gguf"
	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/model"
	"github.com/kvserve/kvserve/internal/parallel"
	"github.com/kvserve/kvserve/internal/synth"
	"github.com/kvserve/kvserve/internal/tensor"
	"github.com/kvserve/kvserve/internal/testassets"
	"github.com/kvserve/kvserve/internal/tokenizer"
)

func mustType(t testing.TB, name string) synth.FileType {
	ft, err := synth.ParseFileType(name)
	if err != nil {
		t.Fatal(err)
	}
	return ft
}

func preset(t testing.TB, name string) *synth.Preset {
	p, err := synth.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func write(t testing.TB, name, typ string, seed uint64, threads int) []byte {
	var b bytes.Buffer
	o := &synth.Options{Preset: preset(t, name), Type: mustType(t, typ), Seed: seed, Threads: threads}
	if err := synth.Write(&b, o); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// Every real preset's parameter count (computed from its layout, nothing
// written) is within 1% of the published figure, and its tensor count is
// what the architecture's per-layer list gives.
func TestPresetShapes(t *testing.T) {
	perLayer := map[string]int{"llama": 9, "mistral3": 9, "qwen2": 12, "qwen3": 11, "gemma2": 11, "gemma3": 13, "phi3": 6,
		"qwen3moe": 12, "gpt-oss": 19, "qwen2moe": 17}
	for _, p := range synth.Presets() {
		n := len(synth.TensorNames(p))
		want := 2 + perLayer[p.Arch]*p.NLayer // token_embd, output_norm
		switch p.Arch {                       // three Gated DeltaNet layers to one of attention
		case "qwen3next": // DeltaNet 17 tensors, attention 16
			want = 2 + 17*p.NLayer - p.NLayer/4
		case "qwen35": // 14 and 11
			want = 2 + 14*p.NLayer - 3*p.NLayer/4
		case "qwen35moe": // 19 and 16
			want = 2 + 19*p.NLayer - 3*p.NLayer/4
		case "lfm2": // short convolution 8, attention 11
			want = 2 + 8*p.NLayer + 3*len(p.AttnLayers)
		}
		if !p.Tied {
			want++
		}
		if p.Llama3Rope != nil {
			want++
		}
		if p.LongRope != nil {
			want += 2
		}
		if n != want {
			t.Errorf("%s: %d tensors, want %d", p.Name, n, want)
		}
		if p.Tiny {
			continue
		}
		got := float64(p.ParamCount())
		if p.Params == 0 {
			t.Logf("%-16s %-8s %3d tensors %.3fB parameters (no exact published figure)", p.Name, p.Arch, n, got/1e9)
			continue
		}
		if math.Abs(got-p.Params)/p.Params > 0.01 {
			t.Errorf("%s: %.4gB parameters, published %.4gB", p.Name, got/1e9, p.Params/1e9)
		}
		t.Logf("%-16s %-8s %3d tensors %.3fB parameters (published %.3fB)", p.Name, p.Arch, n, got/1e9, p.Params/1e9)
	}
}

// The same preset, seed and type give the same bytes whatever the thread
// count; another seed gives other bytes.
func TestDeterministic(t *testing.T) {
	for _, typ := range []string{"f16", "q4_k_m"} {
		a := write(t, "tiny-qwen2", typ, 7, 1)
		b := write(t, "tiny-qwen2", typ, 7, 3)
		if !bytes.Equal(a, b) {
			t.Errorf("%s: 1 and 3 threads wrote different bytes", typ)
		}
		if c := write(t, "tiny-qwen2", typ, 8, 2); bytes.Equal(a, c) {
			t.Errorf("%s: seeds 7 and 8 wrote the same bytes", typ)
		}
	}
}

// Size predicts the written size exactly.
func TestSize(t *testing.T) {
	for _, typ := range []string{"f32", "bf16", "q8_0"} {
		o := &synth.Options{Preset: preset(t, "tiny-phi3"), Type: mustType(t, typ), Seed: 1}
		n, _, err := synth.Size(o)
		if err != nil {
			t.Fatal(err)
		}
		if b := write(t, "tiny-phi3", typ, 1, 2); uint64(len(b)) != n {
			t.Errorf("%s: Size %d, wrote %d", typ, n, len(b))
		}
	}
}

// Every tiny preset parses, has its architecture's keys and tensors, and
// its vocabulary, special tokens and chat template work with kvserve's
// tokenizer and template engine.
func TestTinyFiles(t *testing.T) {
	for _, p := range synth.Presets() {
		if !p.Tiny {
			continue
		}
		t.Run(p.Name, func(t *testing.T) {
			f, err := gguf.Parse(write(t, p.Name, "f16", 1, 2))
			if err != nil {
				t.Fatal(err)
			}
			if f.Architecture() != p.Arch {
				t.Fatalf("architecture %q", f.Architecture())
			}
			if n, _ := f.Uint(p.Arch + ".block_count"); int(n) != p.NLayer {
				t.Errorf("block_count %d", n)
			}
			for _, k := range archKeys[p.Arch] {
				if _, ok := f.Get(p.Arch + "." + k); !ok {
					t.Errorf("missing key %s.%s", p.Arch, k)
				}
			}
			for _, ti := range f.Tensors {
				want := tensor.F16
				switch {
				case len(ti.Dims) == 1 || strings.HasSuffix(ti.Name, "ffn_gate_inp.weight") || strings.HasSuffix(ti.Name, ".bias") ||
					strings.HasSuffix(ti.Name, "ssm_conv1d.weight") || strings.HasSuffix(ti.Name, "shortconv.conv.weight"):
					want = tensor.F32 // as the converter keeps norms, biases, MoE routers and convolution kernels
				case p.Arch == "gpt-oss" && strings.HasSuffix(ti.Name, "_exps.weight"):
					want = tensor.MXFP4 // gpt-oss's experts as shipped
				}
				if ti.Type != want {
					t.Errorf("%s: type %s, want %s", ti.Name, ti.Type, want)
				}
			}
			emb, ok := f.Tensor("token_embd.weight")
			if !ok || emb.Dims[1] != uint64(p.NVocab) {
				t.Fatalf("token_embd %v", emb)
			}
			tok, err := tokenizer.FromGGUF(f)
			if err != nil {
				t.Fatal(err)
			}
			if tok.VocabSize() != p.NVocab {
				t.Errorf("tokenizer has %d tokens, want %d", tok.VocabSize(), p.NVocab)
			}
			if tok.EOT() < 0 && p.Family != synth.FamilyMistral {
				t.Errorf("no end-of-turn token")
			}
			tmpl, err := chat.FromGGUF(f, tok.TokenText)
			if err != nil {
				t.Fatal(err)
			}
			s, err := tmpl.Apply([]chat.Message{{Role: "user", Content: "Hi"}}, true, nil)
			if err != nil {
				t.Fatal(err)
			}
			ids := tok.Encode(s, true, true)
			t.Logf("chat %q → %d tokens", s, len(ids))
			if !containsSpecial(tok, ids) {
				t.Errorf("the rendered chat %q has no special token", s)
			}
		})
	}
}

func containsSpecial(tok *tokenizer.Tokenizer, ids []int) bool {
	for _, id := range ids {
		// (gpt-oss's harmony markers are user-defined, as llama.cpp types them)
		if tt := tok.TokenType(id); tt == tokenizer.TypeControl || tt == tokenizer.TypeUserDefined {
			return true
		}
	}
	return false
}

// Keys each architecture's loader reads in llama.cpp (beyond the common
// ones).
var archKeys = map[string][]string{
	"lfm2":      {"shortconv.l_cache", "attention.head_count_kv"},
	"qwen35":    {"ssm.conv_kernel", "ssm.state_size", "ssm.group_count", "ssm.time_step_rank", "ssm.inner_size", "rope.dimension_count"},
	"qwen35moe": {"ssm.conv_kernel", "ssm.state_size", "ssm.group_count", "ssm.time_step_rank", "ssm.inner_size", "expert_count"},
	"qwen3next": {"ssm.conv_kernel", "ssm.state_size", "ssm.group_count", "ssm.time_step_rank", "ssm.inner_size",
		"rope.dimension_count", "expert_count", "expert_shared_feed_forward_length"},
	"llama":    {"rope.dimension_count", "rope.freq_base", "attention.layer_norm_rms_epsilon"},
	"mistral3": {"rope.scaling.type", "rope.scaling.factor", "rope.scaling.original_context_length", "rope.scaling.yarn_beta_fast", "rope.scaling.yarn_beta_slow", "attention.temperature_scale"},
	"qwen2":    {"rope.freq_base", "attention.layer_norm_rms_epsilon"},
	"qwen3":    {"attention.key_length", "attention.layer_norm_rms_epsilon"},
	"gemma2":   {"attention.sliding_window", "attn_logit_softcapping", "final_logit_softcapping", "attention.key_length"},
	"gemma3":   {"attention.sliding_window", "rope.freq_base", "rope.freq_base_swa", "rope.scaling.type", "attention.key_length"},
	"phi3":     {"rope.dimension_count", "rope.scaling.original_context_length", "rope.scaling.attn_factor", "attention.sliding_window"},
	"qwen3moe": {"attention.key_length", "expert_count", "expert_used_count", "expert_feed_forward_length"},
	"qwen2moe": {"expert_count", "expert_used_count", "expert_feed_forward_length", "expert_shared_feed_forward_length"},
	"gpt-oss":  {"expert_count", "expert_used_count", "expert_feed_forward_length", "attention.sliding_window", "rope.scaling.type"},
}

// The tiny presets of the architectures kvserve loads run a forward pass
// with finite, peaked logits.
func TestTinyForward(t *testing.T) {
	for _, name := range []string{"tiny-llama", "tiny-qwen2", "tiny-qwen3"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), name+".gguf")
			o := &synth.Options{Preset: preset(t, name), Type: mustType(t, "q8_0"), Seed: 1}
			if err := synth.WriteFile(path, o); err != nil {
				t.Fatal(err)
			}
			f, err := gguf.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			m, err := model.Load(f)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := tokenizer.FromGGUF(f)
			if err != nil {
				t.Fatal(err)
			}
			ids := tok.Encode("The quick brown fox jumps over the lazy dog, and then it runs away.", true, false)
			types := make([]tensor.Type, m.NLayer)
			for i := range types {
				types[i] = tensor.F16
			}
			kv, err := kvcache.New(kvcache.Config{Layers: m.NLayer, KVHeads: m.NHeadKV, HeadDimK: m.HeadDim, HeadDimV: m.HeadDimV,
				Seqs: 1, Ctx: 256, Threads: 2, TypeK: types, TypeV: types, Attn: m.CacheAttn()})
			if err != nil {
				t.Fatal(err)
			}
			defer kv.Close()
			pool := parallel.New(2)
			defer pool.Close()
			r := model.NewRunner(m, pool, 64)
			n := len(ids)
			b := &model.Batch{Tokens: ids, Pos: make([]int, n), Output: make([]bool, n)}
			for i := range b.Pos {
				b.Pos[i], b.Output[i] = i, true
			}
			logits, err := r.Forward(b, kv)
			if err != nil {
				t.Fatal(err)
			}
			V := m.NVocab
			for i := 0; i < n; i++ {
				row := logits[i*V : (i+1)*V]
				mx, z := math.Inf(-1), 0.0
				for _, x := range row {
					if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
						t.Fatalf("position %d: logit %g", i, x)
					}
					mx = math.Max(mx, float64(x))
				}
				for _, x := range row {
					z += math.Exp(float64(x) - mx)
				}
				// Peaked: the top token has at least 10× the uniform probability.
				if top := 1 / z; top < 10/float64(V) {
					t.Errorf("position %d: top probability %.2g is nearly uniform", i, top)
				}
			}
		})
	}
}

// The committed llama.cpp fixture (scripts/synth-llamacpp.sh) was made
// from the files this generator writes now: each entry's file hash
// matches, so the fixture's figures still describe these files.
func TestLlamaCppFixture(t *testing.T) {
	files, err := filepath.Glob("../../testdata/llamacpp/synth*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/llamacpp/synth*.json: %v", err)
	}
	var fx struct {
		Entries []struct {
			Preset string  `json:"preset"`
			Seed   uint64  `json:"seed"`
			Type   string  `json:"type"`
			SHA256 string  `json:"sha256"`
			PPL    float64 `json:"ppl"`
			Top10  []int   `json:"top10"`
		} `json:"entries"`
	}
	for _, f := range files { // synth.json and one file per family of presets
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var one = fx
		one.Entries = nil
		if err := json.Unmarshal(b, &one); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		fx.Entries = append(fx.Entries, one.Entries...)
	}
	seen := map[string]bool{}
	for _, e := range fx.Entries {
		seen[e.Preset] = true
		if math.IsNaN(e.PPL) || e.PPL <= 1 || len(e.Top10) != 10 {
			t.Errorf("%s %s: ppl %g, %d top ids", e.Preset, e.Type, e.PPL, len(e.Top10))
		}
		if e.Type != "f16" {
			continue // the quantized files are the same values through package quantize's plan and quantizers
		}
		sum := sha256.Sum256(write(t, e.Preset, e.Type, e.Seed, 2))
		if got := hex.EncodeToString(sum[:]); got != e.SHA256 {
			t.Errorf("%s %s seed %d: sha256 %s, fixture %s (regenerate with scripts/synth-llamacpp.sh)", e.Preset, e.Type, e.Seed, got, e.SHA256)
		}
	}
	for _, p := range synth.Presets() {
		if p.Arch == "qwen35" || p.Arch == "qwen35moe" {
			continue // the reference llama.cpp predates Qwen3.5: nothing to score
		}
		if p.Tiny && !seen[p.Name] {
			t.Errorf("fixture has no entry for %s", p.Name)
		}
	}
}

// Real presets: their vocabularies (Llama 3's padded, SentencePiece's
// padded) are accepted by kvserve's tokenizer at the real size.
func TestRealVocabularies(t *testing.T) {
	shared := testassets.Dir(t)
	for _, name := range []string{"gemma-2-2b", "mistral-7b-v0.3"} {
		p := preset(t, name)
		p, _ = p.WithLayers(1)
		var b bytes.Buffer
		// Write only the header: the sizing path writes zero tensor data.
		o := &synth.Options{Preset: p, Type: mustType(t, "q8_0"), Seed: 1, Vocab: synth.VocabSource{Shared: shared}}
		kvs, err := synth.Metadata(o)
		if err != nil {
			t.Fatal(err)
		}
		if err := gguf.Write(&b, kvs, nil); err != nil {
			t.Fatal(err)
		}
		f, err := gguf.Parse(b.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		tok, err := tokenizer.FromGGUF(f)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if tok.VocabSize() != p.NVocab {
			t.Errorf("%s: %d tokens, want %d", name, tok.VocabSize(), p.NVocab)
		}
		ids := tok.Encode("Hello world", false, false)
		if len(ids) == 0 || len(ids) > 4 {
			t.Errorf("%s: %q → %v", name, "Hello world", ids)
		}
		if !strings.Contains(f.Architecture(), p.Arch) {
			t.Errorf("%s: architecture %q", name, f.Architecture())
		}
	}
}
