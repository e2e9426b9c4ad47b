package model

// llama: the reference block (Llama 2/3, Mistral 7B and other files
// converted as "llama"). Llama-3 RoPE scaling arrives as the
// rope_freqs.weight tensor, linear or YaRN scaling as keys.
func init() { Register(&Arch{Name: "llama", Aliases: []string{"mistral"}, Act: SiLU}) }
