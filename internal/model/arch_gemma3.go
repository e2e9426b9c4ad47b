package model

// gemma3: the gemma2 block without attention soft-capping, with per-head
// RMSNorm of q and k, five sliding-window layers to each global one (the
// window from attention.sliding_window; none when it is absent or 0), and a
// RoPE of its own for the sliding-window layers (base 10000, no scaling)
// while global layers use the file's base and scaling.
func init() {
	Register(&Arch{Name: "gemma3", RopeNeox: true, QKNorm: true, PostNorms: true, Act: GELU, EmbedScale: true,
		Config: func(k *Keys, c *Config) error {
			if w := k.OptInt("attention.sliding_window", 0); w > 0 {
				c.SlidingWindowPattern(w, 6)
				local := c.Ropes[0]
				local.Base = 10000
				local.Scaling.Factor = 1
				if local.Scaling.Type == "linear" {
					local.Scaling.Type = "none"
				}
				c.Ropes = append(c.Ropes, local)
			}
			c.FinalSoftcap = float32(k.OptFloat("final_logit_softcapping", 0))
			gemmaQueryScale(c, 62)
			return nil
		}})
}
