package model

// gpt-oss (llama.cpp's openai-moe graph): q, k, v and output biases, NEOX
// RoPE (YaRN from the file's keys), a learned attention-sink logit per
// head, sliding-window attention (attention.sliding_window, 128) on every
// other layer starting with layer 0, the pre-FFN RMSNorm stored as
// post_attention_norm, and a mixture-of-experts FFN: a biased router whose
// top expert_used_count logits are softmaxed into the weights (no
// renormalisation), biased experts (stored in MXFP4 by the converter) and
// the clamped SwiGLU (alpha 1.702, limit 7).
func init() {
	Register(&Arch{Name: "gpt-oss", RopeNeox: true, QKVBias: true, Act: SwiGLUOAI, FFNNorm: "post_attention_norm",
		MoE: true, ExpertGating: GatingSoftmaxWeight, ExpertNorm: false,
		Config: func(k *Keys, c *Config) error {
			c.ExpertGating, c.ExpertNorm, c.ExpertScale = GatingSoftmaxWeight, false, 0
			c.SlidingWindowPattern(k.Int("attention.sliding_window"), 2)
			return nil
		}})
}
