package model

import (
	"fmt"
	"slices"
	"strings"
)

// Arch declares one architecture: the GGUF name it loads, the parts its
// transformer block has beyond the llama block, and a hook that reads its
// own hyperparameters. Each architecture is one file (arch_<name>.go) that
// registers its Arch; the loader and the single forward pass read the
// declaration, so adding an architecture touches only its file (and a
// kernel where its math is new).
//
// The llama block, which every declaration starts from: RMSNorm before
// attention and before the FFN; q, k, v projections (or one fused attn_qkv
// tensor, split by rows) with optional biases; RoPE; causal attention over
// the KV cache; an output projection (optional bias); a gated FFN
// act(gate)·up then down; residual additions; a final RMSNorm and the
// output projection (tied to the embedding when the file has no
// output.weight).
type Arch struct {
	Name    string   // general.architecture
	Aliases []string // other names loaded the same way

	RopeNeox    bool       // RoPE rotates pairs (i, i+d/2) instead of (2i, 2i+1)
	QKVBias     bool       // q, k, v biases are required (they are optional otherwise)
	QKNorm      bool       // per-head RMSNorm of q and k before RoPE (attn_q_norm, attn_k_norm)
	PostNorms   bool       // RMSNorm of the attention and FFN outputs before each residual add (attn_post_norm, ffn_post_norm)
	FusedGateUp bool       // ffn_up holds the gate rows then the up rows; there is no ffn_gate
	Act         Activation // the FFN gate's activation
	EmbedScale  bool       // token embeddings are multiplied by sqrt(n_embd)
	// FFNNorm names the RMSNorm before the FFN ("" = "ffn_norm"; gpt-oss
	// calls it post_attention_norm).
	FFNNorm string
	// OutputNorm lists the names the final RMSNorm may have, the first
	// found is used (nil: "output_norm.weight").
	OutputNorm []string

	// MoE: the FFN is a mixture of experts (see moe.go): a router
	// (ffn_gate_inp) scores NExpert experts per token, the NExpertUsed
	// best run (ffn_gate_exps, ffn_up_exps, ffn_down_exps: 3-D tensors,
	// one slab per expert) and their outputs are summed, weighted by the
	// router's probabilities; a shared expert (ffn_*_shexp, optionally
	// gated by ffn_gate_inp_shexp) is added when the file has one.
	MoE bool
	// ExpertGating is how router logits become probabilities, and
	// ExpertNorm whether the selected experts' weights are renormalised
	// to sum to 1 — the architecture's defaults, which the file's
	// expert_gating_func and expert_weights_norm keys override.
	ExpertGating Gating
	ExpertNorm   bool

	// AttnGate: attn_q holds, per head, the query then as many gate rows;
	// the attention output is multiplied by sigmoid(gate) before
	// attn_output (qwen3next's gated attention).
	AttnGate bool
	// Hybrid: some layers are Gated DeltaNet layers instead of attention
	// (hybrid.go); the Config hook marks them in Config.Recurrent and
	// reads their shape (Config.SSM).
	Hybrid bool

	// Config reads the architecture's own keys after the common ones
	// (context, sizes, heads, norm epsilon, RoPE) and sets what differs:
	// per-layer attention, query scale, soft caps, a second RoPE for
	// sliding-window layers. Nil: nothing beyond the common keys.
	Config func(k *Keys, c *Config) error
}

// Activation is an FFN gate activation.
type Activation int

const (
	SiLU Activation = iota // x·sigmoid(x) (SwiGLU)
	GELU                   // GELU, tanh approximation (GeGLU), as ggml's f16 table computes it
	// SwiGLUOAI is gpt-oss's clamped SwiGLU: x = min(gate, 7), y =
	// clamp(up, ±7), x·sigmoid(1.702x)·(y+1) (ggml's swiglu_oai).
	SwiGLUOAI
)

// Gating is a router's gating function (llama.cpp's
// llama_expert_gating_func_type numbering).
type Gating int

const (
	GatingSoftmax       Gating = 1 // softmax over all experts, then top-k
	GatingSigmoid       Gating = 2 // sigmoid of each logit, then top-k
	GatingSoftmaxWeight Gating = 3 // top-k of the logits, softmax over the selected
)

var registry = map[string]*Arch{}

// Register adds an architecture (called from each arch file's init).
func Register(a *Arch) {
	for _, n := range append([]string{a.Name}, a.Aliases...) {
		if _, dup := registry[n]; dup {
			panic("model: architecture registered twice: " + n)
		}
		registry[n] = a
	}
}

// Lookup returns the architecture a GGUF general.architecture names.
func Lookup(name string) (*Arch, error) {
	if name == "" {
		return nil, fmt.Errorf("model has no general.architecture")
	}
	if a, ok := registry[name]; ok {
		return a, nil
	}
	return nil, fmt.Errorf("unsupported architecture %q (supported: %s)", name, strings.Join(Supported(), ", "))
}

// Supported lists the architecture names kvserve loads, sorted.
func Supported() []string {
	var names []string
	for n := range registry {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
