package model

import "math"

// gemma2: the llama block with RMSNorm of the attention and FFN outputs
// (post-norms), GeGLU, embeddings scaled by sqrt(n_embd), NEOX RoPE,
// attention-logit and final-logit soft caps, and sliding-window attention
// on every other layer (layers 0, 2, 4, ...; window 4096 unless the file
// says). Norm weights are stored with Gemma's +1 already added by the
// converter, so they are used as is.
func init() {
	Register(&Arch{Name: "gemma2", RopeNeox: true, PostNorms: true, Act: GELU, EmbedScale: true,
		Config: func(k *Keys, c *Config) error {
			c.SlidingWindowPattern(k.OptInt("attention.sliding_window", 4096), 2)
			softcap := float32(k.OptFloat("attn_logit_softcapping", 50))
			for l := range c.Attn {
				c.Attn[l].Softcap = softcap
			}
			c.FinalSoftcap = float32(k.OptFloat("final_logit_softcapping", 30))
			gemmaQueryScale(c, 46)
			return nil
		}})
}

// gemmaQueryScale sets Gemma's query scale: 1/sqrt(head_dim), except for
// the 27B models (recognised, as llama.cpp does, by their layer count),
// whose query_pre_attn_scalar is n_embd/n_head.
func gemmaQueryScale(c *Config, layers27B int) {
	if c.NLayer == layers27B {
		c.AttnScale = float32(1 / math.Sqrt(float64(c.NEmbd/c.NHead)))
	}
}
