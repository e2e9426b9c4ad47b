package model

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/kvserve/kvserve/internal/attn"
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

	// A view of rows of a fused tensor (rows): the tensor's name and the
	// view's first row, for LoRA adapters, which name the fused tensor.
	base string
	row0 int
	lora []*loraWeight // LoRA adapters attached (AttachLora)

	// Packed holds the matrix in the kernels' packed layout (Model.Pack),
	// or is nil; products read it instead of Data when set.
	Packed []byte
}

// Row returns the bytes of row r.
func (l *Linear) Row(r int) []byte { return l.Data[r*l.RowBytes : (r+1)*l.RowBytes] }

// rows returns a view of rows [r0, r1) (how fused tensors are split).
func (l *Linear) rows(r0, r1 int, name string) *Linear {
	return &Linear{Name: name, Type: l.Type, In: l.In, Out: r1 - r0, RowBytes: l.RowBytes, Data: l.Data[r0*l.RowBytes : r1*l.RowBytes], base: l.Name, row0: r0}
}

// Layer holds one transformer block's weights. Optional parts are nil
// when the architecture or the file has none.
type Layer struct {
	AttnNorm     []float32
	Wq, Wk, Wv   *Linear
	Bq, Bk, Bv   []float32
	QNorm, KNorm []float32 // per-head RMSNorm of q and k, HeadDim each
	Wo           *Linear
	Bo           []float32
	PostAttnNorm []float32
	Sinks        []float32 // learned attention-sink logits, one per query head

	FFNNorm        []float32
	Gate, Up, Down *Linear
	PostFFNNorm    []float32

	// Mixture of experts (Arch.MoE; the dense Gate, Up, Down are nil).
	Router                        *Linear   // ffn_gate_inp: NExpert rows of NEmbd
	RouterB                       []float32 // its bias (gpt-oss)
	GateExps, UpExps, DownExps    []*Linear // per expert: views of its slab of the 3-D tensors
	GateExpsB, UpExpsB, DownExpsB []float32 // expert biases, [expert][out] (gpt-oss)
	ShGate, ShUp, ShDown          *Linear   // shared expert (nil: none)
	ShRouter                      []float32 // ffn_gate_inp_shexp: the shared expert's sigmoid gate (nil: ungated)

	// Gated DeltaNet (recurrent layers of hybrid models; the attention
	// weights are nil): ssm_in (q, k, v, z grouped by key head), ssm_ba
	// (beta, alpha), the convolution kernel [channel][tap], the decay's
	// dt bias and A (−exp(A_log)), the gated norm and ssm_out.
	SSMIn, SSMBA, SSMOut *Linear
	// Qwen3.5's split projections (SSMConfig.Split; SSMIn and SSMBA nil).
	SSMQKV, SSMZ, SSMBeta, SSMAlpha *Linear
	SSMConv                         []float32
	SSMDt, SSMA, SSMNorm            []float32
}

// Model is a loaded architecture: its configuration and weights.
type Model struct {
	Config
	Architecture *Arch   // the registered declaration (Config.Arch is its name)
	TokEmbd      *Linear // NVocab rows of NEmbd
	OutputNorm   []float32
	Output       *Linear // NVocab rows of NEmbd (TokEmbd when tied)
	Layers       []Layer
	// Per-pair RoPE frequency divisors, when the file has them:
	// rope_freqs.weight (Llama-3 scaling), or LongRoPE's two sets
	// (rope_factors_long/short.weight), chosen by the context a runner
	// serves (Runner.SetContext).
	RopeFreqs, RopeLong, RopeShort []float32

	File *gguf.File

	packed *memRegion // Pack's memory
	loras  []*Lora    // adapters attached (AttachLora), in order
}

// CacheAttn returns how each layer attends, for the KV cache: the
// configuration's windows and caps with each layer's sinks.
func (m *Model) CacheAttn() []attn.Layer {
	out := append([]attn.Layer(nil), m.Attn...)
	for l := range out {
		out[l].Sinks = m.Layers[l].Sinks
	}
	return out
}

// Load builds a Model over an open GGUF file. Weights are not copied: they
// stay in the file's mapping, which must outlive the Model. An unknown
// architecture, a missing key or tensor, or a tensor of the wrong shape or
// an unsupported type is an error naming it.
func Load(f *gguf.File) (*Model, error) {
	c, arch, err := ConfigFromGGUF(f)
	if err != nil {
		return nil, err
	}
	m := &Model{Config: c, Architecture: arch, File: f}
	l := &loader{f: f}
	m.TokEmbd = l.linear("token_embd.weight", c.NEmbd, -1)
	if l.err != nil {
		return nil, l.err
	}
	m.NVocab = m.TokEmbd.Out
	onorm := "output_norm.weight"
	if len(arch.OutputNorm) > 0 {
		onorm = arch.OutputNorm[0]
		for _, name := range arch.OutputNorm {
			if l.has(name) {
				onorm = name
				break
			}
		}
	}
	m.OutputNorm = l.vec(onorm, c.NEmbd)
	if l.has("output.weight") {
		m.Output = l.linear("output.weight", c.NEmbd, m.NVocab)
	} else {
		m.Output = m.TokEmbd
	}
	half := c.Ropes[0].Dim / 2
	m.RopeFreqs = l.optVec("rope_freqs.weight", half, false)
	m.RopeLong = l.optVec("rope_factors_long.weight", half, false)
	m.RopeShort = l.optVec("rope_factors_short.weight", half, false)
	qDim, kvDim, vDim := c.NHead*c.HeadDim, c.NHeadKV*c.HeadDim, c.NHeadKV*c.HeadDimV
	m.Layers = make([]Layer, c.NLayer)
	for i := range m.Layers {
		p := fmt.Sprintf("blk.%d.", i)
		L := &m.Layers[i]
		L.AttnNorm = l.vec(p+"attn_norm.weight", c.NEmbd)
		if c.IsRecurrent(i) {
			l.loadSSM(L, p, &c)
		} else if arch.AttnGate {
			L.Wq = l.linear(p+"attn_q.weight", c.NEmbd, 2*qDim)
			L.Wk = l.linear(p+"attn_k.weight", c.NEmbd, kvDim)
			L.Wv = l.linear(p+"attn_v.weight", c.NEmbd, vDim)
		} else if l.has(p + "attn_qkv.weight") {
			qkv := l.linear(p+"attn_qkv.weight", c.NEmbd, qDim+kvDim+vDim)
			if qkv != nil {
				L.Wq = qkv.rows(0, qDim, qkv.Name+"[q]")
				L.Wk = qkv.rows(qDim, qDim+kvDim, qkv.Name+"[k]")
				L.Wv = qkv.rows(qDim+kvDim, qDim+kvDim+vDim, qkv.Name+"[v]")
			}
		} else {
			L.Wq = l.linear(p+"attn_q.weight", c.NEmbd, qDim)
			L.Wk = l.linear(p+"attn_k.weight", c.NEmbd, kvDim)
			L.Wv = l.linear(p+"attn_v.weight", c.NEmbd, vDim)
		}
		if !c.IsRecurrent(i) {
			L.Bq = l.optVec(p+"attn_q.bias", qDim, arch.QKVBias)
			L.Bk = l.optVec(p+"attn_k.bias", kvDim, arch.QKVBias)
			L.Bv = l.optVec(p+"attn_v.bias", vDim, arch.QKVBias)
			if arch.QKNorm {
				L.QNorm = l.vec(p+"attn_q_norm.weight", c.HeadDim)
				L.KNorm = l.vec(p+"attn_k_norm.weight", c.HeadDim)
			}
			L.Wo = l.linear(p+"attn_output.weight", c.NHead*c.HeadDimV, c.NEmbd)
			L.Bo = l.optVec(p+"attn_output.bias", c.NEmbd, false)
			L.Sinks = l.optVec(p+"attn_sinks.weight", c.NHead, false)
		}
		if arch.PostNorms {
			L.PostAttnNorm = l.vec(p+"post_attention_norm.weight", c.NEmbd)
		}
		ffnNorm := "ffn_norm"
		if arch.FFNNorm != "" {
			ffnNorm = arch.FFNNorm
		}
		L.FFNNorm = l.vec(p+ffnNorm+".weight", c.NEmbd)
		if arch.MoE {
			l.loadExperts(L, p, &c)
		} else if arch.FusedGateUp {
			if gu := l.linear(p+"ffn_up.weight", c.NEmbd, 2*c.NFF); gu != nil {
				L.Gate = gu.rows(0, c.NFF, gu.Name+"[gate]")
				L.Up = gu.rows(c.NFF, 2*c.NFF, gu.Name+"[up]")
			}
		} else {
			L.Gate = l.linear(p+"ffn_gate.weight", c.NEmbd, c.NFF)
			L.Up = l.linear(p+"ffn_up.weight", c.NEmbd, c.NFF)
		}
		if !arch.MoE {
			L.Down = l.linear(p+"ffn_down.weight", c.NFF, c.NEmbd)
		}
		if arch.PostNorms {
			L.PostFFNNorm = l.vec(p+"post_ffw_norm.weight", c.NEmbd)
		}
		if l.err != nil {
			return nil, l.err
		}
	}
	return m, nil
}

type loader struct {
	f   *gguf.File
	err error
}

func (l *loader) has(name string) bool { _, ok := l.f.Tensor(name); return ok }

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

// loadExperts loads a mixture-of-experts FFN: the router, the three 3-D
// expert tensors (split into one view per expert, no copy) and the shared
// expert when the file has one.
func (l *loader) loadExperts(L *Layer, p string, c *Config) {
	// The expert tensors first: a disagreeing expert count is named there.
	L.GateExps = l.experts(p+"ffn_gate_exps.weight", c.NEmbd, c.NFFExp, c)
	L.UpExps = l.experts(p+"ffn_up_exps.weight", c.NEmbd, c.NFFExp, c)
	L.DownExps = l.experts(p+"ffn_down_exps.weight", c.NFFExp, c.NEmbd, c)
	L.Router = l.linear(p+"ffn_gate_inp.weight", c.NEmbd, c.NExpert)
	L.RouterB = l.optVec(p+"ffn_gate_inp.bias", c.NExpert, false)
	if l.has(p + "ffn_gate_exps.bias") {
		L.GateExpsB = l.vec(p+"ffn_gate_exps.bias", c.NFFExp*c.NExpert)
		L.UpExpsB = l.vec(p+"ffn_up_exps.bias", c.NFFExp*c.NExpert)
		L.DownExpsB = l.vec(p+"ffn_down_exps.bias", c.NEmbd*c.NExpert)
	}
	if l.has(p + "ffn_up_shexp.weight") {
		L.ShGate = l.linear(p+"ffn_gate_shexp.weight", c.NEmbd, c.NFFShared)
		L.ShUp = l.linear(p+"ffn_up_shexp.weight", c.NEmbd, c.NFFShared)
		L.ShDown = l.linear(p+"ffn_down_shexp.weight", c.NFFShared, c.NEmbd)
		L.ShRouter = l.optVec(p+"ffn_gate_inp_shexp.weight", c.NEmbd, false)
	}
}

// loadSSM loads a Gated DeltaNet layer's tensors (llama.cpp's names and
// shapes; ssm_a has no ".weight" suffix). A missing one is an error naming
// it.
func (l *loader) loadSSM(L *Layer, p string, c *Config) {
	s := &c.SSM
	if s.ShortConv { // LFM2
		L.SSMIn = l.linear(p+"shortconv.in_proj.weight", c.NEmbd, 3*c.NEmbd)
		L.SSMConv = l.vec(p+"shortconv.conv.weight", s.ConvKernel*c.NEmbd)
		L.SSMOut = l.linear(p+"shortconv.out_proj.weight", c.NEmbd, c.NEmbd)
		return
	}
	if s.Split {
		L.SSMQKV = l.linear(p+"attn_qkv.weight", c.NEmbd, s.ConvChannels())
		L.SSMZ = l.linear(p+"attn_gate.weight", c.NEmbd, s.Inner)
		L.SSMBeta = l.linear(p+"ssm_beta.weight", c.NEmbd, s.NV)
		L.SSMAlpha = l.linear(p+"ssm_alpha.weight", c.NEmbd, s.NV)
	} else {
		L.SSMIn = l.linear(p+"ssm_in.weight", c.NEmbd, 2*s.NK*s.State+2*s.Inner)
		L.SSMBA = l.linear(p+"ssm_ba.weight", c.NEmbd, 2*s.NV)
	}
	L.SSMConv = l.vec(p+"ssm_conv1d.weight", s.ConvKernel*s.ConvChannels())
	L.SSMDt = l.vec(p+"ssm_dt.bias", s.NV)
	L.SSMA = l.vec(p+"ssm_a", s.NV)
	L.SSMNorm = l.vec(p+"ssm_norm.weight", s.HeadV())
	L.SSMOut = l.linear(p+"ssm_out.weight", s.Inner, c.NEmbd)
}

// experts loads a 3-D expert tensor [in, out, NExpert] as one Linear per
// expert (views of consecutive slabs of the mapping). An expert count that
// disagrees with the metadata is an error naming both.
func (l *loader) experts(name string, in, out int, c *Config) []*Linear {
	if l.err != nil {
		return nil
	}
	ti, ok := l.f.Tensor(name)
	if !ok {
		l.err = fmt.Errorf("model file has no tensor %q", name)
		return nil
	}
	if len(ti.Dims) == 3 && ti.Dims[0] == uint64(in) && ti.Dims[1] == uint64(out) && ti.Dims[2] != uint64(c.NExpert) {
		l.err = fmt.Errorf("tensor %q holds %d experts, but %s.expert_count is %d", name, ti.Dims[2], c.Arch, c.NExpert)
		return nil
	}
	if len(ti.Dims) != 3 || ti.Dims[0] != uint64(in) || ti.Dims[1] != uint64(out) {
		l.err = fmt.Errorf("tensor %q has shape %v, want [%d %d %d]", name, ti.Dims, in, out, c.NExpert)
		return nil
	}
	if !supportedWeight(ti.Type) {
		l.err = fmt.Errorf("tensor %q has type %s, which kvserve cannot compute with (supported: %v)", name, ti.Type, weightTypes)
		return nil
	}
	all := &Linear{Name: name, Type: ti.Type, In: in, Out: out * c.NExpert, RowBytes: ti.Type.RowSize(in), Data: l.f.TensorData(ti)}
	exps := make([]*Linear, c.NExpert)
	for e := range exps {
		exps[e] = all.rows(e*out, (e+1)*out, fmt.Sprintf("%s[%d]", name, e))
	}
	return exps
}

// optVec loads a vector that may be absent (unless required).
func (l *loader) optVec(name string, n int, required bool) []float32 {
	if !required && !l.has(name) {
		return nil
	}
	return l.vec(name, n)
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
