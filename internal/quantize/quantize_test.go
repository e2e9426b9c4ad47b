package quantize_test

import (
	"bytes"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvserve/kvserve/internal/gguf"
	"github.com/kvserve/kvserve/internal/quantize"
	"github.com/kvserve/kvserve/internal/tensor"
	"github.com/kvserve/kvserve/internal/testassets"
)

const (
	f16Model = "models/kvtest-27m-f16.gguf"
	llamaDir = "models/llamacpp-quantized/"
)

func open(t *testing.T, rel string) *gguf.File {
	t.Helper()
	f, err := gguf.Open(testassets.Path(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// The per-tensor types, and their order, are those llama.cpp chose.
func TestPlanMatchesLlamaCpp(t *testing.T) {
	src := open(t, f16Model)
	for _, name := range []string{"Q8_0", "Q5_K_M", "Q4_K_M"} {
		t.Run(name, func(t *testing.T) {
			ref := open(t, llamaDir+"kvtest-27m-"+name+".gguf")
			ft, err := quantize.ParseFileType(strings.ToLower(name))
			if err != nil {
				t.Fatal(err)
			}
			plans, err := quantize.Plan(src, ft)
			if err != nil {
				t.Fatal(err)
			}
			if len(plans) != len(ref.Tensors) {
				t.Fatalf("%d tensors planned, llama.cpp wrote %d", len(plans), len(ref.Tensors))
			}
			counts := map[tensor.Type]int{}
			for i, p := range plans {
				r := &ref.Tensors[i]
				if p.Info.Name != r.Name || p.To != r.Type {
					t.Errorf("tensor %d: planned %s as %s, llama.cpp has %s as %s", i, p.Info.Name, p.To, r.Name, r.Type)
				}
				counts[p.To]++
			}
			t.Logf("%s: %v", name, counts)
		})
	}
}

// Quantizing kvtest-27m-f16 reproduces llama.cpp's files: every tensor's
// data, and in fact the whole file, byte for byte (Q4_K_M, Q5_K_M, Q8_0).
func TestRunMatchesLlamaCpp(t *testing.T) {
	in := testassets.Path(t, f16Model)
	for _, c := range []struct {
		name string
		id   uint64
	}{{"Q4_K_M", 15}, {"Q5_K_M", 17}, {"Q8_0", 7}} {
		t.Run(c.name, func(t *testing.T) {
			ref := open(t, llamaDir+"kvtest-27m-"+c.name+".gguf")
			out := filepath.Join(t.TempDir(), c.name+".gguf")
			var log bytes.Buffer
			if err := quantize.Run(in, out, strings.ToLower(c.name), 2, &log); err != nil {
				t.Fatal(err)
			}
			got, err := gguf.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer got.Close()
			if len(got.Tensors) != len(ref.Tensors) {
				t.Fatalf("%d tensors, llama.cpp %d", len(got.Tensors), len(ref.Tensors))
			}
			for i := range got.Tensors {
				g, r := &got.Tensors[i], &ref.Tensors[i]
				if g.Name != r.Name || g.Type != r.Type {
					t.Fatalf("tensor %d: %s %s, llama.cpp %s %s", i, g.Name, g.Type, r.Name, r.Type)
				}
				if !bytes.Equal(got.TensorData(g), ref.TensorData(r)) {
					t.Errorf("tensor %s (%s): data differs from llama.cpp's", g.Name, g.Type)
				}
			}
			if fv, _ := got.Uint("general.file_type"); fv != c.id {
				t.Errorf("general.file_type = %d, want %d", fv, c.id)
			}
			if qv, _ := got.Uint("general.quantization_version"); qv != 2 {
				t.Errorf("general.quantization_version = %d, want 2", qv)
			}
			if !bytes.Equal(got.Bytes(), ref.Bytes()) {
				t.Errorf("output file is not byte-identical to llama.cpp's (%d vs %d bytes)", len(got.Bytes()), len(ref.Bytes()))
			}
			if !strings.Contains(log.String(), "blk.0.ffn_down.weight") || !strings.Contains(log.String(), "converting to") {
				t.Errorf("progress log lacks per-tensor lines:\n%s", log.String())
			}
		})
	}
}

// Other file types: the output is readable, every metadata key of the input
// is kept, quantized tensors dequantize close to the input, and the thread
// count does not change a single byte.
func TestRunOtherTypes(t *testing.T) {
	in := testassets.Path(t, "models/kvtest-qwen3-14m-f16.gguf")
	src := open(t, "models/kvtest-qwen3-14m-f16.gguf")
	dir := t.TempDir()
	for _, ft := range []string{"Q8_0", "Q4_0", "Q6_K", "F16", "Q5_K_M"} {
		out := filepath.Join(dir, ft+".gguf")
		if err := quantize.Run(in, out, ft, 2, nil); err != nil {
			t.Fatalf("%s: %v", ft, err)
		}
		f, err := gguf.Open(out)
		if err != nil {
			t.Fatalf("%s: %v", ft, err)
		}
		for _, kv := range src.KVs {
			if kv.Key == "general.file_type" {
				continue
			}
			if _, ok := f.Get(kv.Key); !ok {
				t.Errorf("%s: metadata key %s lost", ft, kv.Key)
			}
		}
		for i := range f.Tensors {
			ti := &f.Tensors[i]
			si, _ := src.Tensor(ti.Name)
			n := int(ti.Dims[0])
			if strings.HasSuffix(ti.Name, "_norm.weight") && ti.Type != tensor.F32 {
				t.Errorf("%s: norm %s stored as %s", ft, ti.Name, ti.Type)
			}
			// Compare the first row.
			a, b := make([]float32, n), make([]float32, n)
			tensor.DequantizeRow(si.Type, src.TensorData(si)[:si.Type.RowSize(n)], a)
			tensor.DequantizeRow(ti.Type, f.TensorData(ti)[:ti.Type.RowSize(n)], b)
			var se, sx float64
			for j := range a {
				d := float64(a[j] - b[j])
				se += d * d
				sx += float64(a[j]) * float64(a[j])
			}
			if sx > 0 && se > 0.01*sx {
				t.Errorf("%s: %s (%s) first row relative squared error %g", ft, ti.Name, ti.Type, se/sx)
			}
		}
		f.Close()
	}
	// Thread count independence.
	one := filepath.Join(dir, "t1.gguf")
	if err := quantize.Run(in, one, "q5_k_m", 1, nil); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(one)
	b, _ := os.ReadFile(filepath.Join(dir, "Q5_K_M.gguf"))
	if !bytes.Equal(a, b) {
		t.Error("output depends on the number of threads")
	}
}

func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	if err := quantize.Run(filepath.Join(dir, "missing.gguf"), filepath.Join(dir, "o.gguf"), "q8_0", 1, nil); err == nil {
		t.Error("missing input: no error")
	}
	bad := filepath.Join(dir, "bad.gguf")
	os.WriteFile(bad, []byte("not a gguf file at all"), 0o644)
	if err := quantize.Run(bad, filepath.Join(dir, "o.gguf"), "q8_0", 1, nil); err == nil {
		t.Error("malformed input: no error")
	}
	if err := quantize.Run(bad, filepath.Join(dir, "o.gguf"), "q3_k_xl", 1, nil); err == nil || !strings.Contains(err.Error(), "unsupported file type") {
		t.Errorf("unknown file type: %v", err)
	}
	if err := quantize.Run(bad, bad, "q8_0", 1, nil); err == nil {
		t.Error("output = input: no error")
	}
	if _, err := os.Stat(filepath.Join(dir, "o.gguf")); err == nil {
		t.Error("a failed run left an output file")
	}
	// An architecture without implemented rules, and an already quantized
	// input, are refused clearly.
	other := filepath.Join(dir, "other.gguf")
	writeTiny(t, other, "gpt2", tensor.F16)
	if err := quantize.Run(other, filepath.Join(dir, "o.gguf"), "q8_0", 1, nil); err == nil || !strings.Contains(err.Error(), "architecture") {
		t.Errorf("unsupported architecture: %v", err)
	}
	quant := filepath.Join(dir, "quant.gguf")
	writeTiny(t, quant, "llama", tensor.Q8_0)
	if err := quantize.Run(quant, filepath.Join(dir, "o.gguf"), "q4_k_m", 1, nil); err == nil || !strings.Contains(err.Error(), "already quantized") {
		t.Errorf("quantized input: %v", err)
	}
	// Non-finite weights are an error, not a silently broken file.
	nan := filepath.Join(dir, "nan.gguf")
	writeTiny(t, nan, "llama", tensor.F32)
	if err := quantize.Run(nan, filepath.Join(dir, "o.gguf"), "q8_0", 1, nil); err == nil || !strings.Contains(err.Error(), "NaN") {
		t.Errorf("NaN weights: %v", err)
	}
}

// writeTiny writes a one-layer model whose only 2-D tensor has type typ
// (F32 data contains a NaN).
func writeTiny(t *testing.T, path, arch string, typ tensor.Type) {
	t.Helper()
	const n, rows = 256, 4
	data := make([]byte, typ.RowSize(n)*rows)
	if typ == tensor.F32 {
		x := make([]float32, n*rows)
		x[5] = float32(math.NaN())
		tensor.QuantizeRow(tensor.F32, x, data)
	}
	kvs := []gguf.KV{
		{Key: "general.architecture", Value: gguf.Value{Type: gguf.TypeString, V: arch}},
		{Key: arch + ".block_count", Value: gguf.Value{Type: gguf.TypeUint32, V: uint32(1)}},
	}
	wt := []gguf.WriterTensor{{Name: "blk.0.attn_q.weight", Dims: []uint64{n, rows}, Type: typ}}
	wt[0].Data = func(w io.Writer) error { _, err := w.Write(data); return err }
	if err := gguf.WriteFile(path, kvs, wt); err != nil {
		t.Fatal(err)
	}
}
