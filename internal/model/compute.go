package model

import (
	"github.com/kvserve/kvserve/internal/ops"
	"github.com/kvserve/kvserve/internal/tensor"
)

// mulRows computes rows [r0, r1) of job j for all nTok tokens: each output
// is one dot product of a weight row with a token's activations (converted
// to the weight type's vec-dot type), computed in an order that does not
// depend on how many tokens share the batch (the kernels' batch
// invariance), so a request's output never depends on its neighbours.
func mulRows(j *mmJob, r0, r1, nTok int) {
	w := j.w
	rs := w.Type.VecDotType().RowSize(w.In)
	if w.Packed != nil && r0%16 == 0 {
		ops.GemmPacked(w.Type, r0, r1-r0, nTok, w.In, w.Packed, j.xq[:nTok*rs], rs, j.y[r0:], j.ldy)
		return
	}
	ops.Gemm(w.Type, r1-r0, nTok, w.In, w.Data[r0*w.RowBytes:r1*w.RowBytes], w.RowBytes, j.xq[:nTok*rs], rs, j.y[r0:], j.ldy)
}

// dequantRow converts row r of w to f32.
func dequantRow(w *Linear, r int, dst []float32) {
	tensor.DequantizeRow(w.Type, w.Row(r), dst)
}

func vecDotType(t tensor.Type) tensor.Type { return t.VecDotType() }
