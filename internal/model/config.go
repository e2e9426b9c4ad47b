// Package model owns the transformer architectures kvserve runs: a
// registry of architectures (one file each, arch_*.go), reading their
// hyperparameters and weights from a GGUF file, and the single forward pass
// that turns a batch of tokens into logits while writing keys and values
// into a KV cache.
//
// The cache is behind the KV interface: the model hands it each token's
// RoPE'd K and V rows ([kv_head][head_dim] layout) and asks it for the
// attention output of each query; how each layer attends (full, sliding
// window, logit cap, sinks) is declared once per layer (Config.Attn) and
// given to the cache when it is made, so the cache alone decides how rows
// are stored (type, pages, rotation) and which it keeps.
package model

import (
	"fmt"
	"math"

	"github.com/kvserve/kvserve/internal/attn"
	"github.com/kvserve/kvserve/internal/gguf"
)

// Config holds an architecture's hyperparameters.
type Config struct {
	Arch      string
	Name      string
	NLayer    int
	NEmbd     int
	NHead     int
	NHeadKV   int
	HeadDim   int // key (and query) head dimension
	HeadDimV  int // value head dimension
	NFF       int
	NVocab    int
	NCtxTrain int
	NormEps   float32

	// Ropes are the RoPE settings layers use: Ropes[0] for full-attention
	// layers, Ropes[1] (when present) for sliding-window layers.
	Ropes []Rope

	AttnScale float32 // queries are multiplied by this (1/sqrt(HeadDim) unless the file says otherwise)
	// Attention temperature by position (Mistral 3 with YaRN): queries at
	// position p are further multiplied by 1 + TempScale·log(floor(p/TempFloor)+1).
	TempScale float32
	TempFloor int

	EmbedScale   float32 // token embeddings are multiplied by this (0: not scaled)
	FinalSoftcap float32 // logits l become c·tanh(l/c) (0: none)

	// Attn is how each layer attends (window, logit cap); sinks come from
	// the layer's weights. Handed to the KV cache.
	Attn []attn.Layer

	// Mixture of experts (Arch.MoE): NExpert experts of NFFExp hidden
	// units, NExpertUsed of them per token; a shared expert of
	// NFFShared units when the file has one.
	NExpert, NExpertUsed int
	NFFExp, NFFShared    int
	ExpertGating         Gating
	ExpertNorm           bool    // selected weights renormalised to sum to 1
	ExpertScale          float32 // selected weights multiplied by this (0: not scaled)

	// Hybrid recurrent models (Arch.Hybrid): Recurrent[l] marks the Gated
	// DeltaNet layers, which keep a fixed-size state instead of KV rows;
	// SSM is their shape. Nil for attention-only models.
	Recurrent []bool
	SSM       SSMConfig
}

// SSMConfig is the shape of Gated DeltaNet layers, from the ssm.* keys as
// llama.cpp reads them: NK key heads (group_count) and NV value heads
// (time_step_rank) of State dimensions each (state_size), Inner = NV·State
// value channels (inner_size), and a causal convolution of ConvKernel taps
// over the q, k and v channels.
type SSMConfig struct {
	ConvKernel, Inner, State, NV, NK int
	// Split is Qwen3.5's layout: separate projections (attn_qkv already in
	// the convolution's channel order, attn_gate for z, ssm_beta and
	// ssm_alpha) instead of qwen3next's ssm_in and ssm_ba grouped by key
	// head, and value head h reads key head h mod NK (the key heads
	// tiled) instead of h / (NV/NK) (each repeated in place).
	Split bool
	// ShortConv is LFM2's gated short convolution instead of a DeltaNet:
	// in_proj gives b, c, x over Channels (= NEmbd) channels; the layer is
	// c·conv(b·x) with a ConvKernel-tap convolution and no recurrent state.
	ShortConv bool
	Channels  int
}

// KeyHead is the key (and query) head value head hv reads.
func (s *SSMConfig) KeyHead(hv int) int {
	if s.Split {
		return hv % s.NK
	}
	return hv / (s.NV / s.NK)
}

// ConvChannels is the number of channels the convolution runs over (q, k
// and v of every head).
func (s *SSMConfig) ConvChannels() int {
	if s.ShortConv {
		return s.Channels
	}
	return 2*s.NK*s.State + s.Inner
}

// HeadV is a value head's dimension.
func (s *SSMConfig) HeadV() int {
	if s.NV == 0 {
		return 0
	}
	return s.Inner / s.NV
}

// ConvStateFloats is the size of one layer's convolution state per
// sequence: the last ConvKernel-1 inputs of every channel.
func (s *SSMConfig) ConvStateFloats() int { return (s.ConvKernel - 1) * s.ConvChannels() }

// StateFloats is the size of one layer's recurrent state per sequence:
// a State × HeadV matrix per value head.
func (s *SSMConfig) StateFloats() int { return s.State * s.Inner } // 0 for a short convolution

// IsRecurrent reports whether layer l is a recurrent (Gated DeltaNet)
// layer, which has no KV rows.
func (c *Config) IsRecurrent(l int) bool { return c.Recurrent != nil && c.Recurrent[l] }

// maxExperts is llama.cpp's LLAMA_MAX_EXPERTS.
const maxExperts = 512

// Rope describes one rotary position embedding.
type Rope struct {
	Base    float64
	Dim     int  // dimensions rotated per head (the first Dim)
	Neox    bool // rotate pairs (i, i+Dim/2) instead of (2i, 2i+1)
	Scaling RopeScaling
}

// RopeScaling describes context-extension scaling of RoPE frequencies.
type RopeScaling struct {
	Type      string  // "none", "linear" or "yarn"
	Factor    float64 // context scaling factor (positions are divided by it for linear)
	OrigCtx   int     // yarn: original training context
	ExtFactor float64 // yarn: extrapolation mix factor (-1 = derive)
	AttnFact  float64 // yarn_attn_factor from the file (used when YaRN extrapolation is off)
	RopeAttn  float64 // rope.scaling.attn_factor: a further magnitude factor (1)
	LogMul    float64 // yarn_log_multiplier (mscale_all_dim), 0: none
	BetaFast  float64
	BetaSlow  float64
}

// ext is the YaRN extrapolation mix in effect (1 for YaRN unless the file
// says otherwise, 0 for other scalings).
func (s *RopeScaling) ext() float64 {
	if s.ExtFactor >= 0 {
		return s.ExtFactor
	}
	if s.Type == "yarn" {
		return 1
	}
	return 0
}

// magnitude is the factor cos and sin are multiplied by, as llama.cpp
// derives it. With YaRN: its mscale 1+0.1·ln(factor) (divided by the same
// with the log multiplier when the file has one) — llama.cpp divides its
// factor by 1+0.1·ln(factor) and ggml's rope multiplies it back, so that
// is the net. Otherwise the file's attention factor.
func (s *RopeScaling) magnitude() float64 {
	attn := s.AttnFact
	if s.ext() != 0 {
		mscale := func(scale, m float64) float64 {
			if scale <= 1 {
				return 1
			}
			return 0.1*m*math.Log(scale) + 1
		}
		if s.LogMul != 0 {
			attn = mscale(s.Factor, 1) / mscale(s.Factor, s.LogMul)
		} else {
			attn = mscale(s.Factor, 1)
		}
	}
	return attn * s.RopeAttn
}

// Keys reads an architecture's metadata (keys are relative to
// "<arch>."), recording the first problem: a required key that is
// missing, or a value out of range. Each reader returns a zero value once
// an error is recorded, so a hook can read everything and check Err once.
type Keys struct {
	f      *gguf.File
	prefix string
	err    error
}

// Err returns the first problem met.
func (k *Keys) Err() error { return k.err }

func (k *Keys) fail(format string, a ...any) {
	if k.err == nil {
		k.err = fmt.Errorf(format, a...)
	}
}

// Int reads a required integer key (a per-layer array whose entries all
// agree is accepted too).
func (k *Keys) Int(key string) int {
	v, ok := k.opt(key)
	if !ok && k.err == nil {
		k.fail("%s architecture: missing or invalid %s%s", k.prefix[:len(k.prefix)-1], k.prefix, key)
	}
	return v
}

// OptInt reads an optional integer key.
func (k *Keys) OptInt(key string, def int) int {
	if v, ok := k.opt(key); ok {
		return v
	}
	return def
}

func (k *Keys) opt(key string) (int, bool) {
	if k.err != nil {
		return 0, false
	}
	v, ok := uintOrFirst(k.f, k.prefix+key)
	if !ok {
		return 0, false
	}
	if v > 1<<24 {
		k.fail("%s%s = %d is implausible", k.prefix, key, v)
		return 0, false
	}
	return int(v), true
}

// Float reads a required float key.
func (k *Keys) Float(key string) float64 {
	if k.err != nil {
		return 0
	}
	v, ok := k.f.Float(k.prefix + key)
	if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
		k.fail("missing or invalid %s%s", k.prefix, key)
		return 0
	}
	return v
}

// OptFloat reads an optional float key.
func (k *Keys) OptFloat(key string, def float64) float64 {
	if k.err != nil {
		return def
	}
	v, ok := k.f.Float(k.prefix + key)
	if !ok {
		return def
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		k.fail("%s%s = %g is invalid", k.prefix, key, v)
		return def
	}
	return v
}

// OptString reads an optional string key.
func (k *Keys) OptString(key, def string) string {
	if v, ok := k.f.String(k.prefix + key); ok {
		return v
	}
	return def
}

// OptBool reads an optional boolean key.
func (k *Keys) OptBool(key string, def bool) bool {
	if k.err != nil {
		return def
	}
	v, ok := k.f.Get(k.prefix + key)
	if !ok {
		return def
	}
	b, ok := v.V.(bool)
	if !ok {
		k.fail("%s%s is not a boolean", k.prefix, key)
		return def
	}
	return b
}

// Has reports whether a key is present.
func (k *Keys) Has(key string) bool { _, ok := k.f.Get(k.prefix + key); return ok }

// ConfigFromGGUF reads an architecture's hyperparameters from metadata:
// the keys every architecture shares, then the architecture's own (its
// Arch.Config hook).
func ConfigFromGGUF(f *gguf.File) (Config, *Arch, error) {
	name := f.Architecture()
	arch, err := Lookup(name)
	if err != nil {
		return Config{Arch: name}, nil, err
	}
	c := Config{Arch: arch.Name}
	c.Name, _ = f.String("general.name")
	k := &Keys{f: f, prefix: name + "."}
	c.NEmbd = k.Int("embedding_length")
	c.NLayer = k.Int("block_count")
	c.NFF = k.Int("feed_forward_length")
	c.NHead = k.Int("attention.head_count")
	c.NCtxTrain = k.Int("context_length")
	c.NHeadKV = k.OptInt("attention.head_count_kv", c.NHead)
	eps := k.Float("attention.layer_norm_rms_epsilon")
	if err := k.Err(); err != nil {
		return c, arch, err
	}
	c.NormEps = float32(eps)
	if c.NLayer <= 0 || c.NEmbd <= 0 || c.NFF <= 0 {
		return c, arch, fmt.Errorf("%s: %d layers, embedding %d, feed-forward %d are invalid", name, c.NLayer, c.NEmbd, c.NFF)
	}
	if c.NHead <= 0 || c.NHeadKV <= 0 || c.NHead%c.NHeadKV != 0 {
		return c, arch, fmt.Errorf("head counts %d / %d (kv) are invalid", c.NHead, c.NHeadKV)
	}
	c.HeadDim = k.OptInt("attention.key_length", c.NEmbd/c.NHead)
	c.HeadDimV = k.OptInt("attention.value_length", c.HeadDim)
	if c.HeadDim <= 0 || c.HeadDim > 1024 || c.HeadDimV <= 0 || c.HeadDimV > 1024 || c.HeadDim%2 != 0 {
		return c, arch, fmt.Errorf("head dimensions %d / %d are invalid", c.HeadDim, c.HeadDimV)
	}
	rope, err := readRope(k, c.HeadDim, c.NCtxTrain)
	if err != nil {
		return c, arch, err
	}
	rope.Neox = arch.RopeNeox
	c.Ropes = []Rope{rope}
	c.AttnScale = float32(1 / math.Sqrt(float64(c.HeadDim)))
	c.Attn = make([]attn.Layer, c.NLayer)
	if arch.EmbedScale {
		c.EmbedScale = float32(math.Sqrt(float64(c.NEmbd)))
	}
	if arch.MoE {
		if err := readExperts(k, arch, &c); err != nil {
			return c, arch, err
		}
	}
	if arch.Config != nil {
		if err := arch.Config(k, &c); err != nil {
			return c, arch, err
		}
		if err := k.Err(); err != nil {
			return c, arch, err
		}
	}
	return c, arch, c.check()
}

// readExperts reads the mixture-of-experts keys.
func readExperts(k *Keys, arch *Arch, c *Config) error {
	c.NExpert = k.Int("expert_count")
	c.NExpertUsed = k.Int("expert_used_count")
	c.NFFExp = k.OptInt("expert_feed_forward_length", c.NFF)
	c.NFFShared = k.OptInt("expert_shared_feed_forward_length", c.NFFExp)
	c.ExpertGating = Gating(k.OptInt("expert_gating_func", int(arch.ExpertGating)))
	c.ExpertNorm = k.OptBool("expert_weights_norm", arch.ExpertNorm)
	c.ExpertScale = float32(k.OptFloat("expert_weights_scale", 0))
	if err := k.Err(); err != nil {
		return err
	}
	switch {
	case c.NExpert < 1 || c.NExpert > maxExperts:
		return fmt.Errorf("%s.expert_count = %d is invalid (1 to %d)", arch.Name, c.NExpert, maxExperts)
	case c.NExpertUsed < 1 || c.NExpertUsed > c.NExpert:
		return fmt.Errorf("%s.expert_used_count = %d is invalid (1 to expert_count = %d)", arch.Name, c.NExpertUsed, c.NExpert)
	case c.NFFExp <= 0 || c.NFFShared <= 0:
		return fmt.Errorf("%s: expert feed-forward length %d / shared %d invalid", arch.Name, c.NFFExp, c.NFFShared)
	case c.ExpertScale < 0:
		return fmt.Errorf("%s.expert_weights_scale = %g is invalid", arch.Name, c.ExpertScale)
	}
	switch c.ExpertGating {
	case GatingSoftmax, GatingSigmoid, GatingSoftmaxWeight:
	default:
		return fmt.Errorf("%s.expert_gating_func = %d is not supported (1 softmax, 2 sigmoid, 3 softmax of the selected)", arch.Name, c.ExpertGating)
	}
	return nil
}

// readRope reads the common RoPE keys.
func readRope(k *Keys, headDim, ctxTrain int) (Rope, error) {
	r := Rope{Base: k.OptFloat("rope.freq_base", 10000), Dim: k.OptInt("rope.dimension_count", headDim)}
	if r.Dim <= 0 || r.Dim > headDim || r.Dim%2 != 0 || r.Base <= 0 {
		return r, fmt.Errorf("rope dimension %d / base %g invalid for head dim %d", r.Dim, r.Base, headDim)
	}
	s := RopeScaling{Type: k.OptString("rope.scaling.type", "none"), Factor: 1, ExtFactor: -1, AttnFact: 1, RopeAttn: 1, BetaFast: 32, BetaSlow: 1}
	if v := k.OptFloat("rope.scaling.factor", 0); v != 0 {
		s.Factor = v
	} else if v := k.OptFloat("rope.scale_linear", 0); v != 0 {
		s.Factor = v
		if s.Type == "none" {
			s.Type = "linear"
		}
	}
	s.OrigCtx = k.OptInt("rope.scaling.original_context_length", 0)
	s.ExtFactor = k.OptFloat("rope.scaling.yarn_ext_factor", s.ExtFactor)
	s.AttnFact = k.OptFloat("rope.scaling.yarn_attn_factor", s.AttnFact)
	s.RopeAttn = k.OptFloat("rope.scaling.attn_factor", s.RopeAttn)
	s.BetaFast = k.OptFloat("rope.scaling.yarn_beta_fast", s.BetaFast)
	s.BetaSlow = k.OptFloat("rope.scaling.yarn_beta_slow", s.BetaSlow)
	if err := k.Err(); err != nil {
		return r, err
	}
	switch s.Type {
	case "none", "linear", "yarn":
	default:
		return r, fmt.Errorf("unsupported rope scaling type %q (supported: none, linear, yarn)", s.Type)
	}
	if s.Type == "none" {
		s.Factor = 1
	}
	if s.Factor <= 0 {
		return r, fmt.Errorf("rope scaling factor %g is invalid", s.Factor)
	}
	if s.Type == "yarn" && s.OrigCtx == 0 {
		s.OrigCtx = ctxTrain
	}
	r.Scaling = s
	return r, nil
}

// check validates what the architecture hook set.
func (c *Config) check() error {
	if len(c.Attn) != c.NLayer {
		return fmt.Errorf("%d layer attention specs for %d layers", len(c.Attn), c.NLayer)
	}
	for l, a := range c.Attn {
		if a.Window < 0 || a.Softcap < 0 {
			return fmt.Errorf("layer %d: sliding window %d / softcap %g invalid", l, a.Window, a.Softcap)
		}
	}
	for _, r := range c.Ropes {
		if r.Dim <= 0 || r.Dim > c.HeadDim || r.Dim%2 != 0 || r.Base <= 0 || math.IsNaN(r.Base) {
			return fmt.Errorf("rope dimension %d / base %g invalid for head dim %d", r.Dim, r.Base, c.HeadDim)
		}
	}
	if c.AttnScale <= 0 || c.FinalSoftcap < 0 || c.EmbedScale < 0 || c.TempScale < 0 || c.TempFloor < 0 ||
		(c.TempScale != 0 && c.TempFloor == 0) {
		return fmt.Errorf("attention scale %g / final softcap %g / embedding scale %g / temperature %g,%d invalid",
			c.AttnScale, c.FinalSoftcap, c.EmbedScale, c.TempScale, c.TempFloor)
	}
	return nil
}

// ropeOf returns the index into Ropes of layer l's RoPE.
func (c *Config) ropeOf(l int) int {
	if len(c.Ropes) > 1 && c.Attn[l].Window > 0 {
		return 1
	}
	return 0
}

// SlidingWindowPattern marks layers as sliding-window ones the way
// llama.cpp's set_swa_pattern does: with a pattern of n, every layer but
// the last of each group of n uses the window (n = 2: layers 0, 2, 4, ...).
func (c *Config) SlidingWindowPattern(window, n int) {
	for l := range c.Attn {
		if n == 0 || l%n < n-1 {
			c.Attn[l].Window = window
		}
	}
}

// uintOrFirst reads an integer key that some converters store as a
// per-layer array (taking the first element when all layers agree).
func uintOrFirst(f *gguf.File, key string) (uint64, bool) {
	if v, ok := f.Uint(key); ok {
		return v, true
	}
	a, ok := f.Array(key)
	if !ok || a.Len() == 0 {
		return 0, false
	}
	switch v := a.Values.(type) {
	case []uint32:
		for _, x := range v[1:] {
			if x != v[0] {
				return 0, false
			}
		}
		return uint64(v[0]), true
	case []int32:
		for _, x := range v[1:] {
			if x != v[0] {
				return 0, false
			}
		}
		return uint64(v[0]), v[0] >= 0
	}
	return 0, false
}
