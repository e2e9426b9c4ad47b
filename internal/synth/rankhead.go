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

// WithRankHead writes src as a reranker: the same metadata and tensors,
// plus a rank head as llama.cpp's converter writes Qwen3 rerankers — a
// cls.output.weight of one random f32 row per label (seeded, scaled so the
// scores spread), "{arch}.classifier.output_labels" and
// "{arch}.pooling_type" = 4 (rank). For testing rank pooling and /rerank
// against llama.cpp on the shared test models.
func WithRankHead(src *gguf.File, w io.Writer, labels []string, seed uint64) error {
	arch := src.Architecture()
	n, ok := src.Uint(arch + ".embedding_length")
	if !ok || n == 0 {
		return fmt.Errorf("%s.embedding_length is missing", arch)
	}
	if len(labels) == 0 {
		return fmt.Errorf("a rank head needs at least one label")
	}
	var kvs []gguf.KV
	for _, kv := range src.KVs {
		if kv.Key != arch+".pooling_type" && kv.Key != arch+".classifier.output_labels" {
			kvs = append(kvs, kv)
		}
	}
	kvs = append(kvs,
		gguf.KV{Key: arch + ".pooling_type", Value: gguf.Value{Type: gguf.TypeUint32, V: uint32(4)}},
		gguf.KV{Key: arch + ".classifier.output_labels", Value: gguf.Value{Type: gguf.TypeArray, V: &gguf.Array{Elem: gguf.TypeString, Values: labels}}})
	var ts []gguf.WriterTensor
	for i := range src.Tensors {
		ti := &src.Tensors[i]
		ts = append(ts, gguf.WriterTensor{Name: ti.Name, Dims: ti.Dims, Type: ti.Type, Data: func(w io.Writer) error {
			_, err := w.Write(src.TensorData(ti))
			return err
		}})
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	scale := 4 / math.Sqrt(float64(n))
	ts = append(ts, gguf.WriterTensor{Name: "cls.output.weight", Dims: []uint64{n, uint64(len(labels))}, Type: tensor.F32,
		Data: func(w io.Writer) error {
			b := make([]byte, 4*int(n)*len(labels))
			for i := 0; i < len(b); i += 4 {
				binary.LittleEndian.PutUint32(b[i:], math.Float32bits(float32((rng.Float64()*2-1)*scale)))
			}
			_, err := w.Write(b)
			return err
		}})
	return gguf.Write(w, kvs, ts)
}
