package model

// qwen35 and qwen35moe (Qwen3.5), from llama.cpp's qwen35 / qwen35moe
// graphs (later than the reference build, which has no Qwen3.5): the
// qwen3next hybrid — Gated DeltaNet layers and gated full attention with
// partial RoPE, post_attention_norm before the FFN — with these
// differences, each pinned by a test (hybrid_test.go):
//
//   - the DeltaNet input projections are separate tensors: attn_qkv (q, k,
//     v already in the convolution's channel order), attn_gate (z),
//     ssm_beta and ssm_alpha, where qwen3next has ssm_in and ssm_ba with
//     each key head's q, k, v, z (and β, α) grouped together;
//   - with more value heads than key heads, value head h reads key head
//     h mod NK (the key heads tiled, ggml_repeat) where qwen3next reads
//     h / (NV/NK) (each repeated in place);
//   - qwen35's FFN is dense (ffn_gate, ffn_up, ffn_down); qwen35moe's is
//     qwen3next's mixture of experts with a gated shared expert;
//   - RoPE is multi-section (rope.dimension_sections, for images); for text
//     every section has the same position, which is the NEOX rotation of
//     the first rope.dimension_count dimensions.
func init() {
	cfg := func(k *Keys, c *Config) error {
		if err := readSSM(k, c, k.OptInt("full_attention_interval", 4)); err != nil {
			return err
		}
		c.SSM.Split = true
		return nil
	}
	Register(&Arch{Name: "qwen35", QKNorm: true, RopeNeox: true, Act: SiLU, AttnGate: true, Hybrid: true,
		FFNNorm: "post_attention_norm", Config: cfg})
	Register(&Arch{Name: "qwen35moe", QKNorm: true, RopeNeox: true, Act: SiLU, AttnGate: true, Hybrid: true,
		FFNNorm: "post_attention_norm",
		MoE:     true, ExpertGating: GatingSoftmax, ExpertNorm: true,
		Config: func(k *Keys, c *Config) error {
			c.ExpertGating, c.ExpertNorm, c.ExpertScale = GatingSoftmax, true, 0
			return cfg(k, c)
		}})
}
