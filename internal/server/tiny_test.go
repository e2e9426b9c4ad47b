package server

import (
	"encoding/binary"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/gguf"
	"github.com/kvserve/kvserve/internal/tensor"
	"github.com/kvserve/kvserve/models"
)

// tinyEngine is a model with the embedded model's tokenizer and chat
// template but random weights of a tiny llama (1 layer, width 64, head
// dimension 32, context 512): its forward pass costs microseconds, for
// fuzzing the handlers end to end.
var (
	tinyOnce sync.Once
	tinyVal  *engine.Engine
	tinyErr  error
)

func tinyEngine(t testing.TB) *engine.Engine {
	t.Helper()
	tinyOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kvserve-tiny-")
		if err != nil {
			tinyErr = err
			return
		}
		path := filepath.Join(dir, "tiny.gguf")
		if tinyErr = writeTinyModel(path); tinyErr == nil {
			tinyVal, tinyErr = engine.Load(path, 1)
		}
		os.RemoveAll(dir) // the model is read into memory (or stays mapped)
	})
	if tinyErr != nil {
		t.Fatal(tinyErr)
	}
	return tinyVal
}

func writeTinyModel(path string) error {
	src, err := gguf.Parse(models.Default())
	if err != nil {
		return err
	}
	const (
		embd, layers, heads, kvHeads, headDim, ff, ctx = 64, 1, 2, 1, 32, 128, 512
	)
	u32 := func(v uint32) gguf.Value { return gguf.Value{Type: gguf.TypeUint32, V: v} }
	set := map[string]gguf.Value{
		"general.name":                           {Type: gguf.TypeString, V: "kvserve-tiny-test"},
		"llama.context_length":                   u32(ctx),
		"llama.embedding_length":                 u32(embd),
		"llama.block_count":                      u32(layers),
		"llama.feed_forward_length":              u32(ff),
		"llama.attention.head_count":             u32(heads),
		"llama.attention.head_count_kv":          u32(kvHeads),
		"llama.attention.key_length":             u32(headDim),
		"llama.attention.value_length":           u32(headDim),
		"llama.rope.dimension_count":             u32(headDim),
		"general.file_type":                      u32(0),
		"general.quantization_version":           u32(2),
		"llama.attention.layer_norm_rms_epsilon": {Type: gguf.TypeFloat32, V: float32(1e-5)},
	}
	var kvs []gguf.KV
	vocab := 0
	for _, kv := range src.KVs {
		if v, ok := set[kv.Key]; ok {
			kv.Value = v
		}
		if kv.Key == "llama.vocab_size" {
			vocab = int(kv.Value.V.(uint32))
		}
		kvs = append(kvs, kv)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	f32 := func(name string, scale float64, dims ...uint64) gguf.WriterTensor {
		n := uint64(1)
		for _, d := range dims {
			n *= d
		}
		return gguf.WriterTensor{Name: name, Dims: dims, Type: tensor.F32, Data: func(w io.Writer) error {
			b := make([]byte, 4*n)
			for i := range n {
				v := float32(scale)
				if scale != 1 {
					v = float32((rng.Float64()*2 - 1) * scale)
				}
				binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
			}
			_, err := w.Write(b)
			return err
		}}
	}
	ts := []gguf.WriterTensor{
		f32("token_embd.weight", 0.5, embd, uint64(vocab)),
		f32("output_norm.weight", 1, embd),
	}
	for l := 0; l < layers; l++ {
		p := "blk." + string(rune('0'+l)) + "."
		ts = append(ts,
			f32(p+"attn_norm.weight", 1, embd),
			f32(p+"attn_q.weight", 0.2, embd, heads*headDim),
			f32(p+"attn_k.weight", 0.2, embd, kvHeads*headDim),
			f32(p+"attn_v.weight", 0.2, embd, kvHeads*headDim),
			f32(p+"attn_output.weight", 0.2, heads*headDim, embd),
			f32(p+"ffn_norm.weight", 1, embd),
			f32(p+"ffn_gate.weight", 0.2, embd, ff),
			f32(p+"ffn_up.weight", 0.2, embd, ff),
			f32(p+"ffn_down.weight", 0.2, ff, embd),
		)
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := gguf.Write(out, kvs, ts); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// newTinyServer starts a loaded server over the tiny model.
func newTinyServer(t testing.TB, o Options) *Server {
	t.Helper()
	o.Engine = tinyEngine(t)
	if o.Logger == nil {
		o.Logger = quietLog
	}
	s := New(o)
	if err := s.Load(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestTinyModel(t *testing.T) {
	s := newTinyServer(t, Options{Slots: 2})
	ts := newHTTPTest(t, s)
	m := postOK(t, ts.URL+"/completion", map[string]any{"prompt": "Hello", "n_predict": 8, "ignore_eos": true})
	if num(m["tokens_predicted"]) != 8 {
		t.Errorf("tiny model: %v", m)
	}
}
