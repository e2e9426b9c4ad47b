package model

// phi3 (Phi-3, Phi-3.5, Phi-4-mini): the llama block with q, k, v fused in
// one attn_qkv tensor (the loader splits it by rows), the gate and up
// projections fused in ffn_up (gate rows first), NEOX RoPE (possibly on
// part of each head) and LongRoPE frequency factors chosen by the context
// served. llama.cpp leaves Phi's sliding window off; so does kvserve.
func init() { Register(&Arch{Name: "phi3", RopeNeox: true, FusedGateUp: true, Act: SiLU}) }
