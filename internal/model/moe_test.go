package model_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvserve/kvserve/internal/gguf"
	"github.com/kvserve/kvserve/internal/model"
	"github.com/kvserve/kvserve/internal/parallel"
	"github.com/kvserve/kvserve/internal/synth"
	"github.com/kvserve/kvserve/internal/tensor"
)

// synthFile writes a tiny synthetic preset (kvtest vocabulary: no shared
// assets needed) and returns its path.
func synthFile(t testing.TB, preset, typ string) string {
	t.Helper()
	p, err := synth.Lookup(preset)
	if err != nil {
		t.Fatal(err)
	}
	ft, err := synth.ParseFileType(typ)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), preset+"-"+typ+".gguf")
	if err := synth.WriteFile(path, &synth.Options{Preset: p, Type: ft, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	return path
}

func loadPath(t testing.TB, path string) *model.Model {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	m, err := model.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A mixture-of-experts prompt evaluated in one batch (tokens grouped by
// expert, each expert's product over all its tokens) gives bit-for-bit the
// logits of the same tokens decoded one at a time (each reading only its
// selected experts), with float and quantized experts; and a decode step
// allocates nothing.
func TestMoEPrefillEqualsDecode(t *testing.T) {
	for _, c := range []struct{ preset, typ string }{
		{"tiny-qwen3moe", "f16"}, {"tiny-qwen3moe", "q8_0"}, {"tiny-qwen3moe", "q4_k_m"},
		{"tiny-gpt-oss", "f16"},  // MXFP4 experts with biases, clamped SwiGLU, sinks, window layers
		{"tiny-qwen2moe", "f16"}, // a gated shared expert
	} {
		t.Run(c.preset+"/"+c.typ, func(t *testing.T) {
			m := loadPath(t, synthFile(t, c.preset, c.typ))
			if m.NExpert != 16 || m.NExpertUsed != 4 || len(m.Layers[0].GateExps) != 16 {
				t.Fatalf("experts %d/%d, %d loaded", m.NExpert, m.NExpertUsed, len(m.Layers[0].GateExps))
			}
			pool := parallel.New(2)
			defer pool.Close()
			const n = 48
			toks := make([]int, n)
			pos := make([]int, n)
			out := make([]bool, n)
			for i := range toks {
				toks[i] = (i*7919 + 13) % 8000
				pos[i] = i
				out[i] = true
			}
			r := model.NewRunner(m, pool, n)
			kv := newCache(t, m, tensor.F16, 2)
			lg, err := r.Forward(&model.Batch{Tokens: toks, Pos: pos, Output: out}, kv)
			if err != nil {
				t.Fatal(err)
			}
			batch := append([]float32(nil), lg...)
			kv2 := newCache(t, m, tensor.F16, 2)
			V := m.NVocab
			b := &model.Batch{Tokens: []int{0}, Pos: []int{0}}
			for i := range toks {
				b.Tokens[0], b.Pos[0] = toks[i], i
				lg, err := r.Forward(b, kv2)
				if err != nil {
					t.Fatal(err)
				}
				for j, v := range lg {
					if v != batch[i*V+j] {
						t.Fatalf("token %d: logit %d = %v decoded, %v in the batch", i, j, v, batch[i*V+j])
					}
				}
			}
			allocs := testing.AllocsPerRun(20, func() {
				b.Pos[0]++
				if _, err := r.Forward(b, kv2); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("MoE decode step allocates %v objects", allocs)
			}
		})
	}
}

// A file whose expert tensors disagree with its expert_count (fewer or
// more experts than the key says) is refused with an error naming the
// tensor and the key, for each MoE architecture (gpt-oss: MXFP4 experts).
func TestMoEExpertCountMismatch(t *testing.T) {
	for _, c := range []struct{ preset, arch string }{
		{"tiny-qwen3moe", "qwen3moe"}, {"tiny-gpt-oss", "gpt-oss"}, {"tiny-qwen2moe", "qwen2moe"},
	} {
		path := synthFile(t, c.preset, "f16")
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		key := []byte(c.arch + ".expert_count")
		i := bytes.Index(raw, key)
		if i < 0 {
			t.Fatalf("%s: no expert_count key", c.preset)
		}
		v := raw[i+len(key)+4:] // after the value type
		if binary.LittleEndian.Uint32(v) != 16 {
			t.Fatalf("%s: expert_count = %d", c.preset, binary.LittleEndian.Uint32(v))
		}
		for _, n := range []uint32{12, 20} {
			binary.LittleEndian.PutUint32(v, n)
			if err := os.WriteFile(path, raw, 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := gguf.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			_, err = model.Load(f)
			f.Close()
			want := fmt.Sprintf("holds 16 experts, but %s.expert_count is %d", c.arch, n)
			if err == nil || !strings.Contains(err.Error(), "ffn_gate_exps.weight") || !strings.Contains(err.Error(), want) {
				t.Fatalf("%s, expert_count %d: err = %v, want one naming the tensor and %q", c.preset, n, err, want)
			}
			t.Log(err)
		}
	}
}
