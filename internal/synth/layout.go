package synth

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/kvserve/kvserve/internal/gguf"
)

// role says how a tensor's values are made (see weights.go).
type role int

const (
	roleEmbd      role = iota // token_embd
	roleOutput                // output (untied)
	roleIn                    // a projection from the normalized residual (q, k, v, qkv, gate, up)
	roleAttnOut               // attn_output
	roleDown                  // ffn_down
	roleNorm                  // an RMSNorm weight near 1
	rolePostNorm              // gemma's post-attention / post-FFN norm weights
	roleBias                  // q, k, v biases
	roleRopeFreqs             // rope_freqs (Llama 3)
	roleRopeLong              // rope_factors_long (phi3)
	roleRopeShort             // rope_factors_short (phi3)
	roleRouter                // ffn_gate_inp (MoE router)
	roleSink                  // attn_sinks (gpt-oss)
	roleConv                  // ssm_conv1d (qwen3next)
	roleSSMDt                 // ssm_dt.bias
	roleSSMA                  // ssm_a (−exp(A_log))
)

// spec describes one tensor of a layout.
type spec struct {
	name  string
	dims  []uint64 // ggml order: dims[0] is the row length
	hf    string   // the Hugging Face tensor it comes from (the converter's order); "" for generated tensors
	role  role
	layer int    // -1 outside the blocks
	gate  string // ffn_up: the ffn_gate tensor whose DC rows it repeats ("" for fused gate/up)
}

func (s *spec) elements() uint64 {
	n := uint64(1)
	for _, d := range s.dims {
		n *= d
	}
	return n
}

func (s *spec) rows() int { return int(s.elements() / s.dims[0]) }

// layout returns p's tensors in the order llama.cpp's converter writes them:
// generated tensors (RoPE factors) first, then the checkpoint's tensors
// sorted by their Hugging Face names (a single safetensors file's order).
func layout(p *Preset) []spec {
	d, ff, V := uint64(p.NEmbd), uint64(p.NFF), uint64(p.NVocab)
	qDim, kvDim := uint64(p.NHead*p.HeadDim), uint64(p.NHeadKV*p.HeadDim)
	var extra, ts []spec
	add := func(name string, hf string, r role, layer int, dims ...uint64) {
		ts = append(ts, spec{name: name, dims: dims, hf: hf, role: r, layer: layer})
	}
	switch {
	case p.Llama3Rope != nil:
		extra = append(extra, spec{name: "rope_freqs.weight", dims: []uint64{uint64(p.ropeDim() / 2)}, role: roleRopeFreqs, layer: -1})
	case p.LongRope != nil:
		extra = append(extra,
			spec{name: "rope_factors_long.weight", dims: []uint64{uint64(p.ropeDim() / 2)}, role: roleRopeLong, layer: -1},
			spec{name: "rope_factors_short.weight", dims: []uint64{uint64(p.ropeDim() / 2)}, role: roleRopeShort, layer: -1})
	}
	add("token_embd.weight", "model.embed_tokens.weight", roleEmbd, -1, d, V)
	if p.Arch == "lfm2" {
		// The reference llama.cpp looks LFM2's final norm up as
		// "output_norm", without ".weight" (the converter writes
		// token_embd_norm.weight, which that build cannot load).
		add("output_norm", "model.embedding_norm.weight", roleNorm, -1, d)
	} else {
		add("output_norm.weight", "model.norm.weight", roleNorm, -1, d)
	}
	if !p.Tied {
		add("output.weight", "lm_head.weight", roleOutput, -1, d, V)
	}
	gemma := p.Arch == "gemma2" || p.Arch == "gemma3"
	for i := 0; i < p.NLayer; i++ {
		b := fmt.Sprintf("blk.%d.", i)
		h := fmt.Sprintf("model.layers.%d.", i)
		add(b+"attn_norm.weight", h+"input_layernorm.weight", roleNorm, i, d)
		if p.Arch == "lfm2" {
			lfm2Layer(p, i, add, func(g string) { ts[len(ts)-1].gate = g })
			continue
		}
		if p.Arch == "qwen3next" || p.Arch == "qwen35" || p.Arch == "qwen35moe" {
			qwen3NextLayer(p, i, add, func(g string) { ts[len(ts)-1].gate = g })
			continue
		}
		if p.Arch == "phi3" {
			add(b+"attn_qkv.weight", h+"self_attn.qkv_proj.weight", roleIn, i, d, qDim+2*kvDim)
		} else {
			add(b+"attn_q.weight", h+"self_attn.q_proj.weight", roleIn, i, d, qDim)
			add(b+"attn_k.weight", h+"self_attn.k_proj.weight", roleIn, i, d, kvDim)
			add(b+"attn_v.weight", h+"self_attn.v_proj.weight", roleIn, i, d, kvDim)
		}
		add(b+"attn_output.weight", h+"self_attn.o_proj.weight", roleAttnOut, i, qDim, d)
		if p.Arch == "gpt-oss" {
			add(b+"attn_q.bias", h+"self_attn.q_proj.bias", roleBias, i, qDim)
			add(b+"attn_k.bias", h+"self_attn.k_proj.bias", roleBias, i, kvDim)
			add(b+"attn_v.bias", h+"self_attn.v_proj.bias", roleBias, i, kvDim)
			add(b+"attn_output.bias", h+"self_attn.o_proj.bias", roleBias, i, d)
			add(b+"attn_sinks.weight", h+"self_attn.sinks", roleSink, i, uint64(p.NHead))
			add(b+"post_attention_norm.weight", h+"post_attention_layernorm.weight", roleNorm, i, d)
			ne, fe := uint64(p.NExpert), uint64(p.NFFExp)
			// The converter splits gate_up_proj (blocks and scales, MXFP4)
			// into the gate and up experts and keeps their biases in f32.
			add(b+"ffn_down_exps.weight", h+"mlp.experts.down_proj_blocks", roleDown, i, fe, d, ne)
			add(b+"ffn_down_exps.bias", h+"mlp.experts.down_proj_bias", roleBias, i, d, ne)
			add(b+"ffn_gate_exps.weight", h+"mlp.experts.gate_up_proj_blocks.0", roleIn, i, d, fe, ne)
			add(b+"ffn_gate_exps.bias", h+"mlp.experts.gate_up_proj_bias.0", roleBias, i, fe, ne)
			add(b+"ffn_up_exps.weight", h+"mlp.experts.gate_up_proj_blocks.1", roleIn, i, d, fe, ne)
			ts[len(ts)-1].gate = b + "ffn_gate_exps.weight"
			add(b+"ffn_up_exps.bias", h+"mlp.experts.gate_up_proj_bias.1", roleBias, i, fe, ne)
			add(b+"ffn_gate_inp.weight", h+"mlp.router.weight", roleRouter, i, d, ne)
			add(b+"ffn_gate_inp.bias", h+"mlp.router.bias", roleBias, i, ne)
			continue
		}
		if p.QKVBias {
			add(b+"attn_q.bias", h+"self_attn.q_proj.bias", roleBias, i, qDim)
			add(b+"attn_k.bias", h+"self_attn.k_proj.bias", roleBias, i, kvDim)
			add(b+"attn_v.bias", h+"self_attn.v_proj.bias", roleBias, i, kvDim)
		}
		if p.Arch == "qwen3" || p.Arch == "qwen3moe" || p.Arch == "gemma3" {
			add(b+"attn_q_norm.weight", h+"self_attn.q_norm.weight", roleNorm, i, uint64(p.HeadDim))
			add(b+"attn_k_norm.weight", h+"self_attn.k_norm.weight", roleNorm, i, uint64(p.HeadDim))
		}
		if gemma {
			add(b+"post_attention_norm.weight", h+"post_attention_layernorm.weight", rolePostNorm, i, d)
			add(b+"ffn_norm.weight", h+"pre_feedforward_layernorm.weight", roleNorm, i, d)
			add(b+"post_ffw_norm.weight", h+"post_feedforward_layernorm.weight", rolePostNorm, i, d)
		} else {
			add(b+"ffn_norm.weight", h+"post_attention_layernorm.weight", roleNorm, i, d)
		}
		if p.NExpert > 0 {
			// The converter merges the experts' tensors into one 3-D tensor
			// each (down, gate, up) once it has read the block's last one;
			// the router (mlp.gate) keeps its name.
			ne, fe := uint64(p.NExpert), uint64(p.NFFExp)
			add(b+"ffn_down_exps.weight", h+"mlp.experts.down_proj", roleDown, i, fe, d, ne)
			add(b+"ffn_gate_exps.weight", h+"mlp.experts.gate_proj", roleIn, i, d, fe, ne)
			add(b+"ffn_up_exps.weight", h+"mlp.experts.up_proj", roleIn, i, d, fe, ne)
			ts[len(ts)-1].gate = b + "ffn_gate_exps.weight"
			add(b+"ffn_gate_inp.weight", h+"mlp.gate.weight", roleRouter, i, d, ne)
			if p.NFFShared > 0 {
				fs := uint64(p.NFFShared)
				add(b+"ffn_down_shexp.weight", h+"mlp.shared_expert.down_proj.weight", roleDown, i, fs, d)
				add(b+"ffn_gate_shexp.weight", h+"mlp.shared_expert.gate_proj.weight", roleIn, i, d, fs)
				add(b+"ffn_up_shexp.weight", h+"mlp.shared_expert.up_proj.weight", roleIn, i, d, fs)
				add(b+"ffn_gate_inp_shexp.weight", h+"mlp.shared_expert_gate.weight", roleRouter, i, d)
			}
			continue
		}
		if p.Arch == "phi3" {
			add(b+"ffn_up.weight", h+"mlp.gate_up_proj.weight", roleIn, i, d, 2*ff)
		} else {
			add(b+"ffn_gate.weight", h+"mlp.gate_proj.weight", roleIn, i, d, ff)
			add(b+"ffn_up.weight", h+"mlp.up_proj.weight", roleIn, i, d, ff)
			ts[len(ts)-1].gate = b + "ffn_gate.weight"
		}
		add(b+"ffn_down.weight", h+"mlp.down_proj.weight", roleDown, i, ff, d)
	}
	sort.SliceStable(ts, func(a, b int) bool { return ts[a].hf < ts[b].hf })
	return append(extra, ts...)
}

// lfm2Layer adds one LFM2 block after attn_norm (operator_norm): a gated
// short convolution or attention with q/k norms, then ffn_norm and a dense
// SwiGLU FFN.
func lfm2Layer(p *Preset, i int, add func(name, hf string, r role, layer int, dims ...uint64), upRepeats func(gate string)) {
	d, ff := uint64(p.NEmbd), uint64(p.NFF)
	b := fmt.Sprintf("blk.%d.", i)
	h := fmt.Sprintf("model.layers.%d.", i)
	if p.isAttnLayer(i) {
		qDim, kvDim := uint64(p.NHead*p.HeadDim), uint64(p.NHeadKV*p.HeadDim)
		add(b+"attn_k_norm.weight", h+"self_attn.k_layernorm.weight", roleNorm, i, uint64(p.HeadDim))
		add(b+"attn_k.weight", h+"self_attn.k_proj.weight", roleIn, i, d, kvDim)
		add(b+"attn_output.weight", h+"self_attn.out_proj.weight", roleAttnOut, i, qDim, d)
		add(b+"attn_q_norm.weight", h+"self_attn.q_layernorm.weight", roleNorm, i, uint64(p.HeadDim))
		add(b+"attn_q.weight", h+"self_attn.q_proj.weight", roleIn, i, d, qDim)
		add(b+"attn_v.weight", h+"self_attn.v_proj.weight", roleIn, i, d, kvDim)
	} else {
		add(b+"shortconv.conv.weight", h+"conv.conv.weight", roleConv, i, uint64(p.ShortConv), d)
		add(b+"shortconv.in_proj.weight", h+"conv.in_proj.weight", roleIn, i, d, 3*d)
		add(b+"shortconv.out_proj.weight", h+"conv.out_proj.weight", roleAttnOut, i, d, d)
	}
	add(b+"ffn_down.weight", h+"feed_forward.w2.weight", roleDown, i, ff, d)
	add(b+"ffn_gate.weight", h+"feed_forward.w1.weight", roleIn, i, d, ff)
	add(b+"ffn_up.weight", h+"feed_forward.w3.weight", roleIn, i, d, ff)
	upRepeats(b + "ffn_gate.weight")
	add(b+"ffn_norm.weight", h+"ffn_norm.weight", roleNorm, i, d)
}

// isAttnLayer reports whether layer i of an LFM2 preset is an attention layer.
func (p *Preset) isAttnLayer(i int) bool {
	for _, l := range p.AttnLayers {
		if l == i {
			return true
		}
	}
	return false
}

// qwen3NextLayer adds the tensors of one qwen3next block after attn_norm:
// a Gated DeltaNet (every layer but each fourth) or gated attention (attn_q
// holds each head's query and gate), then the post-attention norm and the
// experts with a gated shared expert.
func qwen3NextLayer(p *Preset, i int, add func(name, hf string, r role, layer int, dims ...uint64), upRepeats func(gate string)) {
	d := uint64(p.NEmbd)
	b := fmt.Sprintf("blk.%d.", i)
	h := fmt.Sprintf("model.layers.%d.", i)
	if (i+1)%4 != 0 {
		nk, nv, st := uint64(p.SSMNK), uint64(p.SSMNV), uint64(p.SSMState)
		inner := nv * st
		add(b+"ssm_a", h+"linear_attn.A_log", roleSSMA, i, nv)
		add(b+"ssm_conv1d.weight", h+"linear_attn.conv1d.weight", roleConv, i, uint64(p.SSMConv), 2*nk*st+inner)
		add(b+"ssm_dt.bias", h+"linear_attn.dt_bias", roleSSMDt, i, nv)
		if p.Arch == "qwen3next" {
			add(b+"ssm_ba.weight", h+"linear_attn.in_proj_ba.weight", roleIn, i, d, 2*nv)
			add(b+"ssm_in.weight", h+"linear_attn.in_proj_qkvz.weight", roleIn, i, d, 2*nk*st+2*inner)
		} else { // Qwen3.5: separate projections
			add(b+"ssm_alpha.weight", h+"linear_attn.in_proj_a.weight", roleIn, i, d, nv)
			add(b+"ssm_beta.weight", h+"linear_attn.in_proj_b.weight", roleIn, i, d, nv)
			add(b+"attn_qkv.weight", h+"linear_attn.in_proj_qkv.weight", roleIn, i, d, 2*nk*st+inner)
			add(b+"attn_gate.weight", h+"linear_attn.in_proj_z.weight", roleIn, i, d, inner)
		}
		add(b+"ssm_norm.weight", h+"linear_attn.norm.weight", roleNorm, i, st)
		add(b+"ssm_out.weight", h+"linear_attn.out_proj.weight", roleAttnOut, i, inner, d)
	} else {
		qDim, kvDim := uint64(p.NHead*p.HeadDim), uint64(p.NHeadKV*p.HeadDim)
		add(b+"attn_q.weight", h+"self_attn.q_proj.weight", roleIn, i, d, 2*qDim)
		add(b+"attn_k.weight", h+"self_attn.k_proj.weight", roleIn, i, d, kvDim)
		add(b+"attn_v.weight", h+"self_attn.v_proj.weight", roleIn, i, d, kvDim)
		add(b+"attn_output.weight", h+"self_attn.o_proj.weight", roleAttnOut, i, qDim, d)
		add(b+"attn_q_norm.weight", h+"self_attn.q_norm.weight", roleNorm, i, uint64(p.HeadDim))
		add(b+"attn_k_norm.weight", h+"self_attn.k_norm.weight", roleNorm, i, uint64(p.HeadDim))
	}
	add(b+"post_attention_norm.weight", h+"post_attention_layernorm.weight", roleNorm, i, d)
	if p.NExpert == 0 { // qwen35: a dense FFN
		ff := uint64(p.NFF)
		add(b+"ffn_down.weight", h+"mlp.down_proj.weight", roleDown, i, ff, d)
		add(b+"ffn_gate.weight", h+"mlp.gate_proj.weight", roleIn, i, d, ff)
		add(b+"ffn_up.weight", h+"mlp.up_proj.weight", roleIn, i, d, ff)
		upRepeats(b + "ffn_gate.weight")
		return
	}
	ne, fe, fs := uint64(p.NExpert), uint64(p.NFFExp), uint64(p.NFFShared)
	add(b+"ffn_down_exps.weight", h+"mlp.experts.down_proj", roleDown, i, fe, d, ne)
	add(b+"ffn_gate_exps.weight", h+"mlp.experts.gate_proj", roleIn, i, d, fe, ne)
	add(b+"ffn_up_exps.weight", h+"mlp.experts.up_proj", roleIn, i, d, fe, ne)
	upRepeats(b + "ffn_gate_exps.weight")
	add(b+"ffn_gate_inp.weight", h+"mlp.gate.weight", roleRouter, i, d, ne)
	add(b+"ffn_down_shexp.weight", h+"mlp.shared_expert.down_proj.weight", roleDown, i, fs, d)
	add(b+"ffn_gate_shexp.weight", h+"mlp.shared_expert.gate_proj.weight", roleIn, i, d, fs)
	add(b+"ffn_up_shexp.weight", h+"mlp.shared_expert.up_proj.weight", roleIn, i, d, fs)
	add(b+"ffn_gate_inp_shexp.weight", h+"mlp.shared_expert_gate.weight", roleRouter, i, d)
}

// ParamCount returns the number of parameters of p's tensors (without
// writing anything; RoPE factor tensors are not parameters and are left
// out, as the published counts do).
func (p *Preset) ParamCount() uint64 {
	var n uint64
	for _, s := range layout(p) {
		switch s.role {
		case roleRopeFreqs, roleRopeLong, roleRopeShort:
			continue
		}
		n += s.elements()
	}
	return n
}

// metadata returns general.* and the architecture's keys, in the order the
// converter writes them (general.file_type among them for float files).
func metadata(p *Preset, seed uint64, fileType uint32, float bool) []gguf.KV {
	a := p.Arch + "."
	var kv []gguf.KV
	str := func(k, s string) { kv = append(kv, gguf.KV{Key: k, Value: gguf.Value{Type: gguf.TypeString, V: s}}) }
	u32 := func(k string, x int) {
		kv = append(kv, gguf.KV{Key: k, Value: gguf.Value{Type: gguf.TypeUint32, V: uint32(x)}})
	}
	f32 := func(k string, x float64) {
		kv = append(kv, gguf.KV{Key: k, Value: gguf.Value{Type: gguf.TypeFloat32, V: float32(x)}})
	}
	str("general.architecture", p.Arch)
	str("general.type", "model")
	str("general.name", displayName(p))
	str("general.description", fmt.Sprintf("kvserve synth: random weights (seed %d) in the shape of %s, preset %s", seed, p.Model, p.Name))
	u32(a+"block_count", p.NLayer)
	u32(a+"context_length", p.NCtx)
	u32(a+"embedding_length", p.NEmbd)
	u32(a+"feed_forward_length", p.NFF)
	u32(a+"attention.head_count", p.NHead)
	u32(a+"attention.head_count_kv", p.NHeadKV)
	switch p.Arch {
	case "gemma2":
		f32(a+"attention.layer_norm_rms_epsilon", float64(p.NormEps))
		u32(a+"attention.key_length", p.HeadDim)
		u32(a+"attention.value_length", p.HeadDim)
		if float {
			u32("general.file_type", int(fileType))
		}
		f32(a+"attn_logit_softcapping", float64(p.AttnSoftcap))
		f32(a+"final_logit_softcapping", float64(p.FinalSoftcap))
		u32(a+"attention.sliding_window", p.SlidingWindow)
		return kv
	case "phi3":
		kv = kv[:4] // the phi3 converter writes its own list
		u32(a+"context_length", p.NCtx)
		u32(a+"rope.scaling.original_context_length", p.LongRope.OrigCtx)
		u32(a+"embedding_length", p.NEmbd)
		u32(a+"feed_forward_length", p.NFF)
		u32(a+"block_count", p.NLayer)
		u32(a+"attention.head_count", p.NHead)
		u32(a+"attention.head_count_kv", p.NHeadKV)
		f32(a+"attention.layer_norm_rms_epsilon", float64(p.NormEps))
		u32(a+"rope.dimension_count", p.ropeDim())
		f32(a+"rope.freq_base", p.RopeBase)
		if float {
			u32("general.file_type", int(fileType))
		}
		u32(a+"attention.sliding_window", p.SlidingWindow)
		// generate_extra_tensors writes the LongRoPE magnitude correction.
		scale := float64(p.NCtx) / float64(p.LongRope.OrigCtx)
		attn := 1.0
		if scale > 1 {
			attn = math.Sqrt(1 + math.Log(scale)/math.Log(float64(p.LongRope.OrigCtx)))
		}
		f32(a+"rope.scaling.attn_factor", attn)
		return kv
	}
	// The generic converter (TextModel.set_gguf_parameters) and its
	// subclasses.
	switch {
	case p.Yarn != nil:
		str(a+"rope.scaling.type", "yarn")
		f32(a+"rope.scaling.factor", p.Yarn.Factor)
		u32(a+"rope.scaling.original_context_length", p.Yarn.OrigCtx)
		f32(a+"rope.scaling.yarn_beta_fast", p.Yarn.BetaFast)
		f32(a+"rope.scaling.yarn_beta_slow", p.Yarn.BetaSlow)
		if p.Yarn.LogMul != 0 {
			f32(a+"rope.scaling.yarn_log_multiplier", p.Yarn.LogMul)
		}
	case p.LinearRope != 0:
		str(a+"rope.scaling.type", "linear")
		f32(a+"rope.scaling.factor", p.LinearRope)
	}
	f32(a+"rope.freq_base", p.RopeBase)
	if p.RopeBaseSWA != 0 {
		f32(a+"rope.freq_base_swa", p.RopeBaseSWA)
	}
	f32(a+"attention.layer_norm_rms_epsilon", float64(p.NormEps))
	if p.HeadDimKey {
		u32(a+"attention.key_length", p.HeadDim)
		u32(a+"attention.value_length", p.HeadDim)
	}
	if float {
		u32("general.file_type", int(fileType))
	}
	switch p.Arch {
	case "llama", "mistral3":
		u32(a+"vocab_size", p.NVocab)
		u32(a+"rope.dimension_count", p.ropeDim())
		if p.TempScale != 0 {
			f32(a+"attention.temperature_scale", float64(p.TempScale))
		}
	case "gpt-oss":
		u32(a+"expert_count", p.NExpert)
		u32(a+"expert_used_count", p.NExpertUsed)
		u32(a+"expert_feed_forward_length", p.NFFExp)
		u32(a+"attention.sliding_window", p.SlidingWindow)
	case "lfm2":
		kvs := make([]uint32, p.NLayer)
		for l := range kvs {
			if p.isAttnLayer(l) {
				kvs[l] = uint32(p.NHeadKV)
			}
		}
		for i := range kv {
			if kv[i].Key == a+"attention.head_count_kv" {
				kv[i].Value = gguf.Value{Type: gguf.TypeArray, V: &gguf.Array{Elem: gguf.TypeUint32, Values: kvs}}
			}
		}
		u32(a+"shortconv.l_cache", p.ShortConv)
		u32(a+"vocab_size", p.NVocab)
	case "qwen3next", "qwen35", "qwen35moe":
		if p.NExpert > 0 {
			u32(a+"expert_count", p.NExpert)
			u32(a+"expert_used_count", p.NExpertUsed)
			u32(a+"expert_feed_forward_length", p.NFFExp)
			u32(a+"expert_shared_feed_forward_length", p.NFFShared)
		}
		u32(a+"ssm.conv_kernel", p.SSMConv)
		u32(a+"ssm.state_size", p.SSMState)
		u32(a+"ssm.group_count", p.SSMNK)
		u32(a+"ssm.time_step_rank", p.SSMNV)
		u32(a+"ssm.inner_size", p.SSMNV*p.SSMState)
		u32(a+"rope.dimension_count", p.ropeDim())
	case "qwen3moe", "qwen2moe":
		u32(a+"expert_count", p.NExpert)
		u32(a+"expert_used_count", p.NExpertUsed)
		u32(a+"expert_feed_forward_length", p.NFFExp)
		if p.NFFShared > 0 {
			u32(a+"expert_shared_feed_forward_length", p.NFFShared)
		}
	case "gemma3":
		if p.SlidingWindow > 0 {
			u32(a+"attention.sliding_window", p.SlidingWindow)
		}
		if p.FinalSoftcap != 0 {
			f32(a+"final_logit_softcapping", float64(p.FinalSoftcap))
		}
	}
	return kv
}

// displayName is general.name: the copied model's name. (llama.cpp keys
// Phi-3 tokenizer quirks on names containing "phi3", which a tiny preset
// must not trigger.)
func displayName(p *Preset) string {
	if p.Tiny {
		return "synthetic " + p.Model
	}
	m := p.Model
	if i := strings.LastIndexByte(m, '/'); i >= 0 {
		m = m[i+1:]
	}
	return m + " synthetic"
}

// llama3RopeFactors computes rope_freqs as the converter does for a
// rope_scaling of type llama3 (LlamaModel.generate_extra_tensors).
func llama3RopeFactors(p *Preset) []float32 {
	r := p.Llama3Rope
	dim := p.ropeDim()
	lowWavelen := float64(r.OrigCtx) / r.LowFreqFactor
	highWavelen := float64(r.OrigCtx) / r.HighFreqFactor
	out := make([]float32, dim/2)
	for i := range out {
		freq := float64(float32(1 / math.Pow(p.RopeBase, float64(2*i)/float64(dim))))
		wavelen := 2 * math.Pi / freq
		switch {
		case wavelen < highWavelen:
			out[i] = 1
		case wavelen > lowWavelen:
			out[i] = float32(r.Factor)
		default:
			smooth := (float64(r.OrigCtx)/wavelen - r.LowFreqFactor) / (r.HighFreqFactor - r.LowFreqFactor)
			out[i] = float32(1 / ((1-smooth)/r.Factor + smooth))
		}
	}
	return out
}
