package model

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/kvserve/kvserve/internal/gguf"
	"github.com/kvserve/kvserve/internal/tensor"
)

// Linear is a weight matrix of Out rows of In elements each, stored in its
// GGUF type (rows are contiguous: row r is Data[r*RowBytes:(r+1)*RowBytes]).
// It is a view into the model file's mapping, never copied.
type Linear struct {
	Name     string
	Type     tensor.Type
	In, Out  int
	RowBytes int
	Data     []byte
}

// Row returns the bytes of row r.
func (l *Linear) Row(r int) []byte { return l.Data[r*l.RowBytes : (r+1)*l.RowBytes] }

// Layer holds one transformer block's weights.
type Layer struct {
	AttnNorm       []float32
	Wq, Wk, Wv, Wo *Linear
	Bq, Bk, Bv     []float32 // qwen2
	QNorm, KNorm   []float32 // qwen3, HeadDim each
	FFNNorm        []float32
	Gate, Up, Down *Linear
}

// Model is a loaded architecture: its configuration and weights.
type Model struct {
	Config
	TokEmbd    *Linear // NVocab rows of NEmbd
	OutputNorm []float32
	Output     *Linear // NVocab rows of NEmbd (TokEmbd when tied)
	Layers     []Layer
	RopeFreqs  []float32 // optional per-dimension frequency divisors

	File *gguf.File
}

// Load builds a Model over an open GGUF file. Weights are not copied: they
// stay in the file's mapping, which must outlive the Model.
func Load(f *gguf.File) (*Model, error) {
	c, err := ConfigFromGGUF(f)
	if err != nil {
		return nil, err
	}
	m := &Model{Config: c, File: f}
	l := &loader{f: f}
	m.TokEmbd = l.linear("token_embd.weight", c.NEmbd, -1)
	if l.err != nil {
		return nil, l.err
	}
	m.NVocab = m.TokEmbd.Out
	m.OutputNorm = l.vec("output_norm.weight", c.NEmbd)
	if _, ok := f.Tensor("output.weight"); ok {
		m.Output = l.linear("output.weight", c.NEmbd, m.NVocab)
	} else {
		m.Output = m.TokEmbd
	}
	if _, ok := f.Tensor("rope_freqs.weight"); ok {
		m.RopeFreqs = l.vec("rope_freqs.weight", c.RopeDim/2)
	}
	qDim, kvDim, vDim := c.NHead*c.HeadDim, c.NHeadKV*c.HeadDim, c.NHeadKV*c.HeadDimV
	m.Layers = make([]Layer, c.NLayer)
	for i := range m.Layers {
		p := fmt.Sprintf("blk.%d.", i)
		L := &m.Layers[i]
		L.AttnNorm = l.vec(p+"attn_norm.weight", c.NEmbd)
		L.Wq = l.linear(p+"attn_q.weight", c.NEmbd, qDim)
		L.Wk = l.linear(p+"attn_k.weight", c.NEmbd, kvDim)
		L.Wv = l.linear(p+"attn_v.weight", c.NEmbd, vDim)
		L.Wo = l.linear(p+"attn_output.weight", c.NHead*c.HeadDimV, c.NEmbd)
		if c.QKVBias {
			L.Bq = l.vec(p+"attn_q.bias", qDim)
			L.Bk = l.vec(p+"attn_k.bias", kvDim)
			L.Bv = l.vec(p+"attn_v.bias", vDim)
		}
		if c.QKNorm {
			L.QNorm = l.vec(p+"attn_q_norm.weight", c.HeadDim)
			L.KNorm = l.vec(p+"attn_k_norm.weight", c.HeadDim)
		}
		L.FFNNorm = l.vec(p+"ffn_norm.weight", c.NEmbd)
		L.Gate = l.linear(p+"ffn_gate.weight", c.NEmbd, c.NFF)
		L.Up = l.linear(p+"ffn_up.weight", c.NEmbd, c.NFF)
		L.Down = l.linear(p+"ffn_down.weight", c.NFF, c.NEmbd)
	}
	if l.err != nil {
		return nil, l.err
	}
	return m, nil
}

type loader struct {
	f   *gguf.File
	err error
}

// linear loads a 2-D weight with rows of `in` elements and `out` rows
// (out < 0: any number of rows).
func (l *loader) linear(name string, in, out int) *Linear {
	if l.err != nil {
		return nil
	}
	ti, ok := l.f.Tensor(name)
	if !ok {
		l.err = fmt.Errorf("model file has no tensor %q", name)
		return nil
	}
	if len(ti.Dims) != 2 || ti.Dims[0] != uint64(in) || (out >= 0 && ti.Dims[1] != uint64(out)) {
		l.err = fmt.Errorf("tensor %q has shape %v, want [%d %d]", name, ti.Dims, in, out)
		return nil
	}
	if !supportedWeight(ti.Type) {
		l.err = fmt.Errorf("tensor %q has type %s, which kvserve cannot compute with (supported: %v)", name, ti.Type, weightTypes)
		return nil
	}
	if ti.Dims[1] > math.MaxInt32 {
		l.err = fmt.Errorf("tensor %q has too many rows", name)
		return nil
	}
	return &Linear{
		Name:     name,
		Type:     ti.Type,
		In:       in,
		Out:      int(ti.Dims[1]),
		RowBytes: ti.Type.RowSize(in),
		Data:     l.f.TensorData(ti),
	}
}

// vec loads a 1-D f32 (or f16) tensor of n elements, converting to f32.
func (l *loader) vec(name string, n int) []float32 {
	if l.err != nil {
		return nil
	}
	ti, ok := l.f.Tensor(name)
	if !ok {
		l.err = fmt.Errorf("model file has no tensor %q", name)
		return nil
	}
	if ti.Elements() != uint64(n) {
		l.err = fmt.Errorf("tensor %q has shape %v, want %d elements", name, ti.Dims, n)
		return nil
	}
	data := l.f.TensorData(ti)
	out := make([]float32, n)
	switch ti.Type {
	case tensor.F32:
		copy(out, unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(data))), n))
	case tensor.F16:
		for i := range out {
			out[i] = tensor.F16ToF32(uint16(data[2*i]) | uint16(data[2*i+1])<<8)
		}
	default:
		l.err = fmt.Errorf("tensor %q has type %s, want f32", name, ti.Type)
		return nil
	}
	return out
}
