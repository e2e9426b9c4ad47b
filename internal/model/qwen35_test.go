package model_test

import (
	"encoding/binary"
	"io"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"github.com/kvserve/kvserve/internal/gguf"
	"github.com/kvserve/kvserve/internal/model"
	"github.com/kvserve/kvserve/internal/parallel"
)

// Qwen3.5 reads key head h mod NK for value head h (the key heads tiled);
// Qwen3-Next reads h / (NV/NK) (each key head repeated in place).
func TestQwen35KeyHeadsTiled(t *testing.T) {
	next := model.SSMConfig{NK: 2, NV: 6}
	q35 := next
	q35.Split = true
	for hv, want := range []int{0, 0, 0, 1, 1, 1} {
		if got := next.KeyHead(hv); got != want {
			t.Errorf("qwen3next: value head %d reads key head %d, want %d", hv, got, want)
		}
	}
	for hv, want := range []int{0, 1, 0, 1, 0, 1} {
		if got := q35.KeyHead(hv); got != want {
			t.Errorf("qwen35: value head %d reads key head %d, want %d", hv, got, want)
		}
	}
}

// qwen35moe is qwen3next with the DeltaNet projections split and the
// value heads in tiled order: a tiny-qwen3next file rewritten in qwen35moe's
// layout (ssm_in split into attn_qkv and attn_gate in channel order, ssm_ba
// into ssm_beta and ssm_alpha, the value heads permuted so that each reads
// the same key head) gives the same logits. This pins both differences:
// without the permutation, or with the qwen3next grouping, it fails.
func TestQwen35MoeEqualsRearrangedQwen3Next(t *testing.T) {
	src := synthFile(t, "tiny-qwen3next", "f32")
	f, err := gguf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	next := loadPath(t, src)
	s := next.SSM
	dk, dv, NK, NV, rep := s.State, s.HeadV(), s.NK, s.NV, s.NV/s.NK
	grp := 2*dk + 2*rep*dv
	// pi: the qwen3next value head a qwen35 value head stands for.
	pi := func(h int) int { return (h%NK)*rep + h/NK }

	rows := func(name string) (ti *gguf.TensorInfo, data []float32) {
		ti, ok := f.Tensor(name)
		if !ok {
			t.Fatalf("no tensor %s", name)
		}
		b := f.TensorData(ti)
		return ti, unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/4)
	}
	f32 := func(name string, dims []uint64, v []float32) gguf.WriterTensor {
		return gguf.WriterTensor{Name: name, Dims: dims, Type: 0, Data: func(w io.Writer) error {
			return binary.Write(w, binary.LittleEndian, v)
		}}
	}
	var out []gguf.WriterTensor
	E := uint64(next.NEmbd)
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		name := ti.Name
		_, data := rows(name)
		switch {
		case strings.HasSuffix(name, ".ssm_in.weight"):
			p := strings.TrimSuffix(name, "ssm_in.weight")
			row := func(r int) []float32 { return data[r*int(E) : (r+1)*int(E)] }
			var qkv, z []float32
			for kh := 0; kh < NK; kh++ { // q
				for i := 0; i < dk; i++ {
					qkv = append(qkv, row(kh*grp+i)...)
				}
			}
			for kh := 0; kh < NK; kh++ { // k
				for i := 0; i < dk; i++ {
					qkv = append(qkv, row(kh*grp+dk+i)...)
				}
			}
			for h := 0; h < NV; h++ { // v and z, in qwen35's head order
				kh, j := pi(h)/rep, pi(h)%rep
				for i := 0; i < dv; i++ {
					qkv = append(qkv, row(kh*grp+2*dk+j*dv+i)...)
					z = append(z, row(kh*grp+2*dk+rep*dv+j*dv+i)...)
				}
			}
			out = append(out, f32(p+"attn_qkv.weight", []uint64{E, uint64(2*NK*dk + NV*dv)}, qkv),
				f32(p+"attn_gate.weight", []uint64{E, uint64(NV * dv)}, z))
		case strings.HasSuffix(name, ".ssm_ba.weight"):
			p := strings.TrimSuffix(name, "ssm_ba.weight")
			var beta, alpha []float32
			for h := 0; h < NV; h++ {
				kh, j := pi(h)/rep, pi(h)%rep
				beta = append(beta, data[(kh*2*rep+j)*int(E):(kh*2*rep+j+1)*int(E)]...)
				alpha = append(alpha, data[(kh*2*rep+rep+j)*int(E):(kh*2*rep+rep+j+1)*int(E)]...)
			}
			out = append(out, f32(p+"ssm_beta.weight", []uint64{E, uint64(NV)}, beta),
				f32(p+"ssm_alpha.weight", []uint64{E, uint64(NV)}, alpha))
		case strings.HasSuffix(name, ".ssm_dt.bias") || strings.HasSuffix(name, ".ssm_a"):
			v := make([]float32, NV)
			for h := range v {
				v[h] = data[pi(h)]
			}
			out = append(out, f32(name, ti.Dims, v))
		case strings.HasSuffix(name, ".ssm_conv1d.weight"):
			K := int(ti.Dims[0])
			v := append([]float32(nil), data[:2*NK*dk*K]...)
			for h := 0; h < NV; h++ {
				o := (2*NK*dk + pi(h)*dv) * K
				v = append(v, data[o:o+dv*K]...)
			}
			out = append(out, f32(name, ti.Dims, v))
		case strings.HasSuffix(name, ".ssm_out.weight"):
			in := int(ti.Dims[0])
			v := make([]float32, 0, len(data))
			for r := 0; r < int(ti.Dims[1]); r++ {
				row := data[r*in : (r+1)*in]
				for h := 0; h < NV; h++ {
					v = append(v, row[pi(h)*dv:(pi(h)+1)*dv]...)
				}
			}
			out = append(out, f32(name, ti.Dims, v))
		default:
			if ti.Type != 0 {
				t.Fatalf("%s is %s, want f32", name, ti.Type)
			}
			out = append(out, f32(name, ti.Dims, data))
		}
	}
	var kvs []gguf.KV
	for _, kv := range f.KVs {
		kv.Key = strings.Replace(kv.Key, "qwen3next.", "qwen35moe.", 1)
		if kv.Key == "general.architecture" {
			kv.Value.V = "qwen35moe"
		}
		kvs = append(kvs, kv)
	}
	dst := filepath.Join(t.TempDir(), "q35.gguf")
	if err := gguf.WriteFile(dst, kvs, out); err != nil {
		t.Fatal(err)
	}
	q35 := loadPath(t, dst)
	if q35.Arch != "qwen35moe" || !q35.SSM.Split || q35.Layers[0].SSMQKV == nil {
		t.Fatalf("loaded %s, split %v", q35.Arch, q35.SSM.Split)
	}

	pool := parallel.New(2)
	defer pool.Close()
	const n = 40
	toks, pos, outs := make([]int, n), make([]int, n), make([]bool, n)
	for i := range toks {
		toks[i], pos[i], outs[i] = (i*613+5)%8000, i, true
	}
	logits := func(m *model.Model) []float32 {
		r := model.NewRunner(m, pool, n)
		lg, err := r.Forward(&model.Batch{Tokens: toks, Pos: pos, Output: outs}, newHybridCache(t, m, 0))
		if err != nil {
			t.Fatal(err)
		}
		return append([]float32(nil), lg...)
	}
	a, b := logits(next), logits(q35)
	worst := 0.0
	for i := range a {
		worst = max(worst, math.Abs(float64(a[i]-b[i])))
	}
	t.Logf("largest logit difference: %.2g", worst)
	if worst > 1e-3 {
		t.Errorf("qwen35moe and the rearranged qwen3next differ by %g", worst)
	}
}

// qwen35 (dense FFN) and qwen35moe: a prompt in one batch gives the
// logits of the same tokens decoded one by one (chunked and recurrent
// forms of the delta rule).
func TestQwen35PrefillEqualsDecode(t *testing.T) {
	for _, preset := range []string{"tiny-qwen35", "tiny-qwen35moe"} {
		t.Run(preset, func(t *testing.T) {
			m := loadPath(t, synthFile(t, preset, "f16"))
			if !m.SSM.Split || (preset == "tiny-qwen35") != (m.Layers[0].Router == nil) {
				t.Fatalf("%s loaded split %v, router %v", preset, m.SSM.Split, m.Layers[0].Router != nil)
			}
			pool := parallel.New(2)
			defer pool.Close()
			const n = 80
			toks, pos, outs := make([]int, n), make([]int, n), make([]bool, n)
			for i := range toks {
				toks[i], pos[i], outs[i] = (i*7919+13)%8000, i, true
			}
			r := model.NewRunner(m, pool, n)
			lg, err := r.Forward(&model.Batch{Tokens: toks, Pos: pos, Output: outs}, newHybridCache(t, m, 2))
			if err != nil {
				t.Fatal(err)
			}
			batch := append([]float32(nil), lg...)
			kv := newHybridCache(t, m, 0)
			b := &model.Batch{Tokens: []int{0}, Pos: []int{0}}
			worst := 0.0
			for i := range toks {
				b.Tokens[0], b.Pos[0] = toks[i], i
				lg, err := r.Forward(b, kv)
				if err != nil {
					t.Fatal(err)
				}
				for j, v := range lg {
					worst = max(worst, math.Abs(float64(v-batch[i*m.NVocab+j])))
				}
			}
			t.Logf("largest logit difference: %.2g", worst)
			if worst > 1e-3 {
				t.Errorf("batch and token-by-token logits differ by %g", worst)
			}
		})
	}
}
