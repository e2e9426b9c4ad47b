package model

// qwen2 (Qwen2, Qwen2.5): the llama block with q, k, v biases and NEOX RoPE.
func init() { Register(&Arch{Name: "qwen2", QKVBias: true, RopeNeox: true, Act: SiLU}) }
