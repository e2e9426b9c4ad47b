package model

// qwen3moe: the qwen3 block (per-head RMSNorm of q and k, NEOX RoPE) with
// a mixture-of-experts FFN: softmax router, the top expert_used_count of
// expert_count experts, their weights renormalised to sum to 1 (as
// llama.cpp's graph does for this architecture whatever the file says), no
// shared expert.
func init() {
	Register(&Arch{Name: "qwen3moe", QKNorm: true, RopeNeox: true, Act: SiLU,
		MoE: true, ExpertGating: GatingSoftmax, ExpertNorm: true,
		Config: func(k *Keys, c *Config) error {
			c.ExpertGating, c.ExpertNorm, c.ExpertScale = GatingSoftmax, true, 0
			return nil
		}})
}
