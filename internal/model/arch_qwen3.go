package model

// qwen3: the llama block with per-head RMSNorm of q and k before RoPE and
// NEOX RoPE (and no biases).
func init() { Register(&Arch{Name: "qwen3", QKNorm: true, RopeNeox: true, Act: SiLU}) }
