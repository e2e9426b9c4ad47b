package model

// mistral3 (Ministral 3, Mistral Small 3.x as llama.cpp converts them): the
// llama block with optional biases, YaRN RoPE with a log multiplier, and
// optional attention temperature scaling by position (the queries of
// position p multiplied by 1 + s·log(floor(p/orig_ctx) + 1)).
func init() {
	Register(&Arch{Name: "mistral3", Act: SiLU,
		Config: func(k *Keys, c *Config) error {
			r := &c.Ropes[0].Scaling
			r.LogMul = k.OptFloat("rope.scaling.yarn_log_multiplier", 0)
			if s := k.OptFloat("attention.temperature_scale", 0); s != 0 {
				c.TempScale = float32(s)
				c.TempFloor = r.OrigCtx
				if c.TempFloor == 0 {
					c.TempFloor = k.OptInt("rope.scaling.original_context_length", c.NCtxTrain)
				}
			}
			return nil
		}})
}
