// Package synth writes synthetic models: GGUF files with random weights in
// the exact tensor layout and metadata of real models (Llama 3, Qwen 2.5
// and 3, Gemma 2 and 3, Phi-4-mini, Mistral and Ministral), as llama.cpp's
// converter writes them and llama-quantize quantizes them, plus tiny
// presets of every family for tests. A real vocabulary (Llama 3's, or the
// test models') padded to the model's size, the family's special tokens
// and chat template make them usable end to end; the weights are seeded
// and scaled so that a forward pass is numerically sane at every depth and
// its logits are peaked (see weights.go).
//
// Files are streamed: each tensor's rows are generated (and quantized)
// inside the GGUF writer's callback, so an 8B model is written in a few MiB
// of memory.
package synth

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"

	"github.com/kvserve/kvserve/internal/gguf"
	"github.com/kvserve/kvserve/internal/quantize"
	"github.com/kvserve/kvserve/internal/tensor"
)

// FileType is an output type: a float type (every 2-D weight in it, as the
// converter's --outtype writes it) or one of package quantize's file types
// (llama-quantize's per-tensor mix).
type FileType struct {
	Name  string
	ID    uint32      // general.file_type (llama_ftype)
	Float tensor.Type // F32, F16 or BF16 for a float type
	Quant *quantize.FileType
}

var floatTypes = []FileType{
	{Name: "F32", ID: 0, Float: tensor.F32},
	{Name: "F16", ID: 1, Float: tensor.F16},
	{Name: "BF16", ID: 32, Float: tensor.BF16},
}

// FileTypes lists the supported output types: F32, F16, BF16, then every
// file type package quantize plans (new mixes there appear here).
func FileTypes() []FileType {
	out := append([]FileType(nil), floatTypes...)
	for i := range quantize.FileTypes {
		ft := quantize.FileTypes[i]
		if ft.Base.BlockSize() == 1 {
			continue // F16: the float path above
		}
		out = append(out, FileType{Name: ft.Name, ID: ft.ID, Quant: &ft})
	}
	return out
}

// ParseFileType looks an output type up by name, case-insensitively.
func ParseFileType(name string) (FileType, error) {
	var names []string
	for _, ft := range FileTypes() {
		if strings.EqualFold(ft.Name, name) {
			return ft, nil
		}
		names = append(names, strings.ToLower(ft.Name))
	}
	return FileType{}, fmt.Errorf("synth: unknown type %q (types: %s)", name, strings.Join(names, ", "))
}

// Options say what to write.
type Options struct {
	Preset  *Preset // with its real layer count, or WithLayers' copy
	Type    FileType
	Seed    uint64
	Threads int // ≤ 0: one per CPU
	Vocab   VocabSource
}

// planned is one tensor to write, in file order.
type planned struct {
	spec *spec
	typ  tensor.Type
}

// model is everything but the tensor data.
type model struct {
	kvs     []gguf.KV
	tensors []planned
	w       *weights
}

func build(o *Options) (*model, error) {
	p := o.Preset
	if p == nil {
		return nil, errors.New("synth: no preset")
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	v, err := buildVocab(p, o.Vocab)
	if err != nil {
		return nil, err
	}
	specs := layout(p)
	m := &model{w: newWeights(p, v, o.Seed)}
	ft := o.Type
	float := ft.Quant == nil
	m.kvs = append(metadata(p, o.Seed, ft.ID, float), v.kvs()...)
	if float {
		for i := range specs {
			s := &specs[i]
			t := ft.Float
			switch {
			case len(s.dims) < 2 || s.role == roleRouter || s.role == roleBias || s.role == roleConv:
				t = tensor.F32 // the converter keeps 1-D tensors (norms, biases, factors), biases, MoE routers and ssm_conv1d in F32
			case p.Arch == "gpt-oss" && strings.HasSuffix(s.name, "_exps.weight"):
				t = tensor.MXFP4 // gpt-oss ships its experts in MXFP4; the converter keeps them
			}
			m.tensors = append(m.tensors, planned{s, t})
		}
		return m, nil
	}
	// Quantized: the plan llama-quantize would make from the float file.
	infos := make([]gguf.TensorInfo, len(specs))
	bySpec := make(map[*gguf.TensorInfo]*spec, len(specs))
	for i := range specs {
		infos[i] = gguf.TensorInfo{Name: specs[i].name, Dims: specs[i].dims, Type: tensor.F32}
		bySpec[&infos[i]] = &specs[i]
	}
	plans, err := quantize.PlanTensors(p.Arch, kvMeta(m.kvs), infos, *ft.Quant)
	if err != nil {
		return nil, fmt.Errorf("synth: %w", err)
	}
	for _, pl := range plans {
		if !tensor.Quantizable(pl.To) {
			return nil, fmt.Errorf("synth: tensor %s: no quantizer for %s", pl.Info.Name, pl.To)
		}
		if err := tensor.CheckRow(pl.To, int(pl.Info.Dims[0])); err != nil {
			return nil, fmt.Errorf("synth: tensor %s: %w", pl.Info.Name, err)
		}
		m.tensors = append(m.tensors, planned{bySpec[pl.Info], pl.To})
	}
	// llama-quantize drops general.file_type and appends the quantization
	// version and the file type.
	m.kvs = append(m.kvs,
		gguf.KV{Key: "general.quantization_version", Value: gguf.Value{Type: gguf.TypeUint32, V: uint32(quantize.QuantizationVersion)}},
		gguf.KV{Key: "general.file_type", Value: gguf.Value{Type: gguf.TypeUint32, V: ft.ID}})
	return m, nil
}

// kvMeta answers integer keys from a metadata list.
type kvMeta []gguf.KV

func (k kvMeta) Uint(key string) (uint64, bool) {
	for _, kv := range k {
		if kv.Key == key {
			if x, ok := kv.Value.V.(uint32); ok {
				return uint64(x), true
			}
			return 0, false
		}
	}
	return 0, false
}

// Metadata returns the file's metadata (general.*, the architecture's keys,
// the tokenizer and chat template) without building any tensor.
func Metadata(o *Options) ([]gguf.KV, error) {
	m, err := build(o)
	if err != nil {
		return nil, err
	}
	return m.kvs, nil
}

// TensorNames lists p's tensors in the converter's order.
func TensorNames(p *Preset) []string {
	var names []string
	for _, s := range layout(p) {
		names = append(names, s.name)
	}
	return names
}

// Size returns the size in bytes of the file Write would write, and its
// tensor count, without generating any weights.
func Size(o *Options) (bytes uint64, tensors int, err error) {
	m, err := build(o)
	if err != nil {
		return 0, 0, err
	}
	var cw countingWriter
	wt := m.writerTensors(o.Threads, true)
	if err := gguf.Write(&cw, m.kvs, wt); err != nil {
		return 0, 0, err
	}
	return cw.n, len(wt), nil
}

type countingWriter struct{ n uint64 }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += uint64(len(p)); return len(p), nil }

// Write writes the model to w.
func Write(w io.Writer, o *Options) error {
	m, err := build(o)
	if err != nil {
		return err
	}
	return gguf.Write(w, m.kvs, m.writerTensors(o.Threads, false))
}

// WriteFile writes the model to path atomically (a temporary file renamed
// into place).
func WriteFile(path string, o *Options) error {
	m, err := build(o)
	if err != nil {
		return err
	}
	if err := gguf.WriteFile(path, m.kvs, m.writerTensors(o.Threads, false)); err != nil {
		return fmt.Errorf("synth: writing %s: %w", path, err)
	}
	return nil
}

// chunkBytes bounds the output buffered per tensor chunk.
const chunkBytes = 4 << 20

// writerTensors returns the tensors for gguf.Write; with zeros, their data
// is zero bytes (for sizing).
func (m *model) writerTensors(threads int, zeros bool) []gguf.WriterTensor {
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	out := make([]gguf.WriterTensor, len(m.tensors))
	for i := range m.tensors {
		pt := m.tensors[i]
		out[i] = gguf.WriterTensor{Name: pt.spec.name, Dims: pt.spec.dims, Type: pt.typ,
			Data: func(w io.Writer) error {
				if zeros {
					for n := pt.typ.RowSize(int(pt.spec.dims[0])) * pt.spec.rows(); n > 0; {
						k, err := w.Write(zeroBuf[:min(n, len(zeroBuf))])
						if err != nil {
							return err
						}
						n -= k
					}
					return nil
				}
				return m.writeTensor(w, pt, threads)
			}}
	}
	return out
}

var zeroBuf = make([]byte, 1<<20)

// writeTensor generates a tensor's rows in chunks, in parallel, converts
// them to its type and writes them in order.
func (m *model) writeTensor(w io.Writer, pt planned, threads int) error {
	n := int(pt.spec.dims[0])
	rows := pt.spec.rows()
	rowBytes := pt.typ.RowSize(n)
	chunk := max(1, min(rows, chunkBytes/max(1, rowBytes)))
	buf := make([]byte, chunk*rowBytes)
	scratch := make([][]float32, threads)
	for i := range scratch {
		scratch[i] = make([]float32, n)
	}
	for r0 := 0; r0 < rows; r0 += chunk {
		nr := min(chunk, rows-r0)
		workers := min(threads, nr)
		var wg sync.WaitGroup
		for t := 0; t < workers; t++ {
			lo, hi := r0+nr*t/workers, r0+nr*(t+1)/workers
			wg.Add(1)
			go func(t, lo, hi int) {
				defer wg.Done()
				f := scratch[t]
				for r := lo; r < hi; r++ {
					m.w.fill(pt.spec, r, f)
					o := (r - r0) * rowBytes
					tensor.QuantizeRow(pt.typ, f, buf[o:o+rowBytes])
				}
			}(t, lo, hi)
		}
		wg.Wait()
		if _, err := w.Write(buf[:nr*rowBytes]); err != nil {
			return err
		}
	}
	return nil
}

// Info describes a preset for listings: its parameter count and, per
// output type, the size of the file.
func Info(p *Preset, ft FileType, src VocabSource) (params uint64, bytes uint64, err error) {
	bytes, _, err = Size(&Options{Preset: p, Type: ft, Vocab: src})
	return p.ParamCount(), bytes, err
}
