package model

// qwen2moe (Qwen1.5-MoE, Qwen2-57B-A14B): the qwen2 block (q/k/v biases,
// NEOX RoPE) with a mixture-of-experts FFN — softmax router, top
// expert_used_count experts whose probabilities are used as they are (not
// renormalised, as llama.cpp's graph does for this architecture) — plus a
// shared expert gated by sigmoid(ffn_gate_inp_shexp·x).
func init() {
	Register(&Arch{Name: "qwen2moe", QKVBias: true, RopeNeox: true, Act: SiLU,
		MoE: true, ExpertGating: GatingSoftmax, ExpertNorm: false,
		Config: func(k *Keys, c *Config) error {
			c.ExpertGating, c.ExpertNorm, c.ExpertScale = GatingSoftmax, false, 0
			return nil
		}})
}
