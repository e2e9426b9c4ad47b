package model

import "fmt"

// qwen3next (Qwen3-Next), llama.cpp's qwen3next graph: a hybrid where three
// layers in four (every layer but each fourth, full_attention_interval) are
// Gated DeltaNet layers (hybrid.go) and the rest gated full attention: the
// qwen3 attention (per-head RMSNorm of q and k, NEOX RoPE, here over the
// first rope.dimension_count dimensions only: partial RoPE) whose attn_q
// also yields a per-head output gate, sigmoid(gate)·attention before
// attn_output. The FFN is a mixture of experts after post_attention_norm:
// softmax router, top expert_used_count, weights renormalised, plus a
// shared expert gated by sigmoid(ffn_gate_inp_shexp·x).
func init() {
	Register(&Arch{Name: "qwen3next", QKNorm: true, RopeNeox: true, Act: SiLU, AttnGate: true, Hybrid: true,
		FFNNorm: "post_attention_norm",
		MoE:     true, ExpertGating: GatingSoftmax, ExpertNorm: true,
		Config: func(k *Keys, c *Config) error {
			c.ExpertGating, c.ExpertNorm, c.ExpertScale = GatingSoftmax, true, 0
			return readSSM(k, c, k.OptInt("full_attention_interval", 4))
		}})
}

// readSSM reads the Gated DeltaNet shape (ssm.* keys) and marks every
// layer but each interval-th as recurrent.
func readSSM(k *Keys, c *Config, interval int) error {
	s := &c.SSM
	s.ConvKernel = k.Int("ssm.conv_kernel")
	s.Inner = k.Int("ssm.inner_size")
	s.State = k.Int("ssm.state_size")
	s.NV = k.Int("ssm.time_step_rank")
	s.NK = k.Int("ssm.group_count")
	if err := k.Err(); err != nil {
		return err
	}
	switch {
	case s.ConvKernel < 1 || s.ConvKernel > 16:
		return fmt.Errorf("%s.ssm.conv_kernel = %d is invalid (1 to 16)", c.Arch, s.ConvKernel)
	case s.State <= 0 || s.NV <= 0 || s.NK <= 0 || s.NV%s.NK != 0:
		return fmt.Errorf("%s: ssm.state_size %d, time_step_rank (value heads) %d, group_count (key heads) %d are invalid (value heads must be a multiple of key heads)",
			c.Arch, s.State, s.NV, s.NK)
	case s.Inner != s.NV*s.State:
		return fmt.Errorf("%s.ssm.inner_size = %d, want time_step_rank × state_size = %d", c.Arch, s.Inner, s.NV*s.State)
	case interval < 1:
		return fmt.Errorf("%s.full_attention_interval = %d is invalid", c.Arch, interval)
	}
	c.Recurrent = make([]bool, c.NLayer)
	for l := range c.Recurrent {
		c.Recurrent[l] = (l+1)%interval != 0
	}
	return nil
}
