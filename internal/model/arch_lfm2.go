package model

import "fmt"

// lfm2 (LiquidAI LFM2), llama.cpp's lfm2 graph: layers whose
// attention.head_count_kv entry is 0 are gated short-convolution layers,
// the others attention with per-head q/k RMSNorm and NEOX RoPE; every
// layer then has a dense SwiGLU FFN after ffn_norm. A short-convolution
// layer: shortconv.in_proj gives b, c and x (NEmbd each), y = c ·
// conv(b·x) with a shortconv.l_cache-tap causal convolution (no
// activation; its last l_cache−1 inputs are the layer's state, kept by the
// cache like a DeltaNet's), then shortconv.out_proj.
//
// The final norm is token_embd_norm.weight in converted files; the
// reference llama.cpp looks it up as "output_norm" (no ".weight": its
// tensor list for lfm2 lacks OUTPUT_NORM), so both are accepted, and
// kvserve synth writes the reference's name.
func init() {
	Register(&Arch{Name: "lfm2", QKNorm: true, RopeNeox: true, Act: SiLU, Hybrid: true,
		OutputNorm: []string{"token_embd_norm.weight", "output_norm", "output_norm.weight"},
		Config: func(k *Keys, c *Config) error {
			L := k.Int("shortconv.l_cache")
			if err := k.Err(); err != nil {
				return err
			}
			if L < 2 || L > 16 {
				return fmt.Errorf("lfm2.shortconv.l_cache = %d is invalid (2 to 16)", L)
			}
			kv, err := perLayer(k, "attention.head_count_kv", c.NLayer)
			if err != nil {
				return err
			}
			c.Recurrent = make([]bool, c.NLayer)
			c.NHeadKV = 0
			for l, n := range kv {
				switch {
				case n == 0:
					c.Recurrent[l] = true
				case c.NHeadKV == 0:
					c.NHeadKV = n
				case n != c.NHeadKV:
					return fmt.Errorf("lfm2: attention layers with %d and %d KV heads (one count supported)", c.NHeadKV, n)
				}
			}
			if c.NHeadKV == 0 || c.NHead%c.NHeadKV != 0 {
				return fmt.Errorf("lfm2: %d heads, %d KV heads are invalid", c.NHead, c.NHeadKV)
			}
			c.SSM = SSMConfig{ConvKernel: L, ShortConv: true, Channels: c.NEmbd}
			return nil
		}})
}

// perLayer reads an integer key that is either one value for every layer
// or an array with one entry per layer.
func perLayer(k *Keys, key string, n int) ([]int, error) {
	out := make([]int, n)
	if v, ok := k.f.Uint(k.prefix + key); ok {
		for i := range out {
			out[i] = int(v)
		}
		return out, nil
	}
	a, ok := k.f.Array(k.prefix + key)
	if !ok || a.Len() != n {
		return nil, fmt.Errorf("%s%s: want one value or %d (one per layer)", k.prefix, key, n)
	}
	switch v := a.Values.(type) {
	case []uint32:
		for i, x := range v {
			out[i] = int(x)
		}
	case []int32:
		for i, x := range v {
			if x < 0 {
				return nil, fmt.Errorf("%s%s[%d] = %d is invalid", k.prefix, key, i, x)
			}
			out[i] = int(x)
		}
	default:
		return nil, fmt.Errorf("%s%s is not an integer array", k.prefix, key)
	}
	return out, nil
}
