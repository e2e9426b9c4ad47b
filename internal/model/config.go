// Package model owns the transformer architectures kvserve runs (llama and
// Mistral-style files under it, qwen2, qwen3): reading their hyperparameters
// and weights from a GGUF file, and the forward pass that turns a batch of
// tokens into logits while writing keys and values into a KV cache.
//
// The cache is behind the KV interface: the model hands it each token's
// RoPE'd K and V rows ([kv_head][head_dim] layout) and asks it for the
// attention output of each query, so the cache alone decides how rows are
// stored (type, pages, rotation).
package model

import (
	"fmt"
	"math"

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

	RopeBase float64
	RopeDim  int  // dimensions rotated per head (the first RopeDim)
	RopeNeox bool // rotate pairs (i, i+RopeDim/2) instead of (2i, 2i+1)
	Rope     RopeScaling

	QKNorm  bool // per-head RMSNorm of q and k before RoPE (qwen3)
	QKVBias bool // biases on the q, k, v projections (qwen2)
}

// RopeScaling describes context-extension scaling of RoPE frequencies.
type RopeScaling struct {
	Type      string  // "none", "linear" or "yarn"
	Factor    float64 // context scaling factor (positions are divided by it for linear)
	OrigCtx   int     // yarn: original training context
	ExtFactor float64 // yarn: extrapolation mix factor (-1 = derive)
	AttnFact  float64 // yarn: attention magnitude factor
	BetaFast  float64
	BetaSlow  float64
}

// Supported lists the architectures kvserve can run.
var Supported = []string{"llama", "qwen2", "qwen3"}

// ConfigFromGGUF reads an architecture's hyperparameters from metadata.
func ConfigFromGGUF(f *gguf.File) (Config, error) {
	arch := f.Architecture()
	c := Config{Arch: arch}
	c.Name, _ = f.String("general.name")
	switch arch {
	case "llama", "mistral":
		c.Arch = "llama"
	case "qwen2":
		c.QKVBias = true
		c.RopeNeox = true
	case "qwen3":
		c.QKNorm = true
		c.RopeNeox = true
	case "":
		return c, fmt.Errorf("model has no general.architecture")
	default:
		return c, fmt.Errorf("unsupported architecture %q (supported: %v)", arch, Supported)
	}
	p := arch + "."
	var err error
	req := func(key string) int {
		if err != nil {
			return 0
		}
		v, ok := uintOrFirst(f, p+key)
		if !ok {
			err = fmt.Errorf("%s architecture: missing or invalid %s%s", arch, p, key)
			return 0
		}
		if v > 1<<24 {
			err = fmt.Errorf("%s%s = %d is implausible", p, key, v)
			return 0
		}
		return int(v)
	}
	c.NEmbd = req("embedding_length")
	c.NLayer = req("block_count")
	c.NFF = req("feed_forward_length")
	c.NHead = req("attention.head_count")
	c.NCtxTrain = req("context_length")
	if err != nil {
		return c, err
	}
	c.NHeadKV = c.NHead
	if v, ok := uintOrFirst(f, p+"attention.head_count_kv"); ok {
		c.NHeadKV = int(v)
	}
	if c.NHead <= 0 || c.NHeadKV <= 0 || c.NHead%c.NHeadKV != 0 {
		return c, fmt.Errorf("head counts %d / %d (kv) are invalid", c.NHead, c.NHeadKV)
	}
	c.HeadDim = c.NEmbd / c.NHead
	if v, ok := f.Uint(p + "attention.key_length"); ok {
		c.HeadDim = int(v)
	}
	c.HeadDimV = c.HeadDim
	if v, ok := f.Uint(p + "attention.value_length"); ok {
		c.HeadDimV = int(v)
	}
	if c.HeadDim <= 0 || c.HeadDim > 1024 || c.HeadDimV <= 0 || c.HeadDimV > 1024 || c.HeadDim%2 != 0 {
		return c, fmt.Errorf("head dimensions %d / %d are invalid", c.HeadDim, c.HeadDimV)
	}
	eps, ok := f.Float(p + "attention.layer_norm_rms_epsilon")
	if !ok {
		return c, fmt.Errorf("missing %sattention.layer_norm_rms_epsilon", p)
	}
	c.NormEps = float32(eps)
	c.RopeBase = 10000
	if v, ok := f.Float(p + "rope.freq_base"); ok {
		c.RopeBase = v
	}
	c.RopeDim = c.HeadDim
	if v, ok := f.Uint(p + "rope.dimension_count"); ok {
		c.RopeDim = int(v)
	}
	if c.RopeDim <= 0 || c.RopeDim > c.HeadDim || c.RopeDim%2 != 0 || c.RopeBase <= 0 || math.IsNaN(c.RopeBase) {
		return c, fmt.Errorf("rope dimension %d / base %g invalid for head dim %d", c.RopeDim, c.RopeBase, c.HeadDim)
	}
	c.Rope = RopeScaling{Type: "none", Factor: 1, ExtFactor: -1, AttnFact: 1, BetaFast: 32, BetaSlow: 1}
	if t, ok := f.String(p + "rope.scaling.type"); ok {
		c.Rope.Type = t
	}
	if v, ok := f.Float(p + "rope.scaling.factor"); ok && v != 0 {
		c.Rope.Factor = v
	} else if v, ok := f.Float(p + "rope.scale_linear"); ok && v != 0 {
		c.Rope.Factor = v
		if c.Rope.Type == "none" {
			c.Rope.Type = "linear"
		}
	}
	if v, ok := f.Uint(p + "rope.scaling.original_context_length"); ok {
		c.Rope.OrigCtx = int(v)
	}
	if v, ok := f.Float(p + "rope.scaling.yarn_ext_factor"); ok {
		c.Rope.ExtFactor = v
	}
	if v, ok := f.Float(p + "rope.scaling.yarn_attn_factor"); ok {
		c.Rope.AttnFact = v
	}
	if v, ok := f.Float(p + "rope.scaling.yarn_beta_fast"); ok {
		c.Rope.BetaFast = v
	}
	if v, ok := f.Float(p + "rope.scaling.yarn_beta_slow"); ok {
		c.Rope.BetaSlow = v
	}
	switch c.Rope.Type {
	case "none", "linear", "yarn":
	default:
		return c, fmt.Errorf("unsupported rope scaling type %q (supported: none, linear, yarn)", c.Rope.Type)
	}
	if c.Rope.Type == "none" {
		c.Rope.Factor = 1
	}
	if c.Rope.Factor <= 0 || math.IsNaN(c.Rope.Factor) || math.IsInf(c.Rope.Factor, 0) {
		return c, fmt.Errorf("rope scaling factor %g is invalid", c.Rope.Factor)
	}
	if c.Rope.Type == "yarn" && c.Rope.OrigCtx == 0 {
		c.Rope.OrigCtx = c.NCtxTrain
	}
	return c, nil
}

// uintOrFirst reads an integer key that some converters store as a
// per-layer array (taking the first element, as all layers agree in the
// architectures supported).
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
