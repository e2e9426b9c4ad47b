package synth

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/rand/v2"

	"github.com/kvserve/kvserve/internal/gguf"
	"github.com/kvserve/kvserve/internal/tensor"
)

// LoraAdapter writes a random LoRA adapter for base in llama.cpp's GGUF
// adapter format (general.type "adapter", adapter.type "lora",
// adapter.lora.alpha; "W.lora_a" of shape {in, rank} and "W.lora_b" of
// shape {rank, out} in f32) for each named 2-D weight W of base, seeded, with
// values that change the model's outputs clearly but not wildly at scale 1.
// For testing LoRA support against llama.cpp.
func LoraAdapter(base *gguf.File, w io.Writer, targets []string, rank int, alpha float32, seed uint64) error {
	if rank < 1 {
		return fmt.Errorf("rank %d must be at least 1", rank)
	}
	kvs := []gguf.KV{
		{Key: "general.architecture", Value: gguf.Value{Type: gguf.TypeString, V: base.Architecture()}},
		{Key: "general.type", Value: gguf.Value{Type: gguf.TypeString, V: "adapter"}},
		{Key: "adapter.type", Value: gguf.Value{Type: gguf.TypeString, V: "lora"}},
		{Key: "adapter.lora.alpha", Value: gguf.Value{Type: gguf.TypeFloat32, V: alpha}},
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d))
	f32 := func(name string, d0, d1 uint64, scale float64) gguf.WriterTensor {
		return gguf.WriterTensor{Name: name, Dims: []uint64{d0, d1}, Type: tensor.F32, Data: func(w io.Writer) error {
			b := make([]byte, 4*d0*d1)
			for i := 0; i < len(b); i += 4 {
				binary.LittleEndian.PutUint32(b[i:], math.Float32bits(float32((rng.Float64()*2-1)*scale)))
			}
			_, err := w.Write(b)
			return err
		}}
	}
	var ts []gguf.WriterTensor
	for _, name := range targets {
		ti, ok := base.Tensor(name)
		if !ok || len(ti.Dims) != 2 {
			return fmt.Errorf("base model has no 2-D tensor %q", name)
		}
		in, out := ti.Dims[0], ti.Dims[1]
		ts = append(ts,
			f32(name+".lora_a", in, uint64(rank), 1/math.Sqrt(float64(in))),
			f32(name+".lora_b", uint64(rank), out, 0.5/math.Sqrt(float64(rank))))
	}
	return gguf.Write(w, kvs, ts)
}

// TestLoraTargets are the weights TestLoraAdapter changes.
var TestLoraTargets = []string{"blk.0.attn_q.weight", "blk.0.attn_v.weight", "blk.0.ffn_down.weight", "blk.1.attn_output.weight", "blk.1.ffn_up.weight"}

// TestLoraAdapter is the adapter of kvserve's LoRA parity test: rank 8,
// alpha 16, seed 1, on TestLoraTargets.
func TestLoraAdapter(base *gguf.File, w io.Writer) error {
	return LoraAdapter(base, w, TestLoraTargets, 8, 16, 1)
}
