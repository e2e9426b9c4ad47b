package server

import "github.com/kvserve/kvserve/internal/kvcache"

// recurrentState describes a hybrid model's recurrent state as
// /cache/usage and /props report it, apart from the attention KV pages:
// the recurrent layers, the convolution and delta-rule state bytes per
// slot (f32: requantization and policies act on attention layers only),
// the checkpoints, and each slot's live state. Nil for attention-only
// models. Called between scheduler steps.
func recurrentState(c *kvcache.Cache) map[string]any {
	if !c.Hybrid() {
		return nil
	}
	cfg := c.Config()
	var layers []int
	for l := 0; l < cfg.Layers; l++ {
		if c.IsRecurrent(l) {
			layers = append(layers, l)
		}
	}
	per := c.StateBytesPerSeq()
	var slots []map[string]any
	for seq := 0; seq < cfg.Seqs; seq++ {
		cps := c.SeqCheckpoints(seq)
		if cps == nil {
			cps = []int{}
		}
		slots = append(slots, map[string]any{"id": seq, "tokens": c.StatePos(seq),
			"bytes": per * int64(1+len(cps)), "checkpoints": cps})
	}
	return map[string]any{
		"type":                    "f32",
		"layers":                  layers,
		"conv_bytes_per_slot":     c.ConvStateBytesPerSeq(),
		"ssm_bytes_per_slot":      c.SSMStateBytesPerSeq(),
		"bytes_per_slot":          per,
		"checkpoints_per_slot":    cfg.Checkpoints,
		"checkpoint_every_tokens": c.CheckpointEvery(),
		"bytes":                   c.StateBytes(),
		"capacity_bytes":          c.StateCapacity(),
		"slots":                   slots,
	}
}
