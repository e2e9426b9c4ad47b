package ops_test

import (
	"math/rand/v2"
	"testing"

	"github.com/kvserve/kvserve/internal/kernels"
	"github.com/kvserve/kvserve/internal/ops"
	"github.com/kvserve/kvserve/internal/qkernels"
	"github.com/kvserve/kvserve/internal/tensor"
)

// BenchmarkFrontOverhead runs attention's two page calls (scores of 4
// queries against 256 keys, and the V sums of 4 heads over 256 rows; head
// dimension 64) through the front and straight into the kernel package,
// in the same binary: the difference is the cost of the front's dispatch.
func BenchmarkFrontOverhead(b *testing.B) {
	const P, R, D = 256, 4, 64
	r := rand.New(rand.NewPCG(5, 5))
	for _, typ := range []tensor.Type{tensor.F16, tensor.Q4_0} {
		rs := typ.RowSize(D)
		page := encodeRef(typ, randFloats(r, P*D))
		vt := typ.VecDotType()
		q := ops.Activations(vt, make([]byte, vt.RowSize(R*D)), randFloats(r, R*D))
		scores := make([]float32, R*P)
		acc := make([]float32, R*D)
		b.Run(typ.String()+"/scores/ops", func(b *testing.B) {
			for b.Loop() {
				ops.Gemm(typ, P, R, D, page, rs, q, vt.RowSize(D), scores, P)
			}
		})
		b.Run(typ.String()+"/scores/direct", func(b *testing.B) {
			for b.Loop() {
				if typ == tensor.F16 {
					kernels.GemmF16(P, R, D, u16s(page), f32s(q), scores, P)
				} else {
					qkernels.Gemm(typ, P, R, D, page, rs, q, vt.RowSize(D), scores, P)
				}
			}
		})
		b.Run(typ.String()+"/accum/ops", func(b *testing.B) {
			for b.Loop() {
				ops.AccumRows(typ, acc, D, scores, P, P, page, rs)
			}
		})
		b.Run(typ.String()+"/accum/direct", func(b *testing.B) {
			for b.Loop() {
				if typ == tensor.F16 {
					kernels.AccumRowsF16Multi(acc, D, scores, P, P, u16s(page), D)
				} else {
					qkernels.AccumRowsMulti(typ, acc, D, scores, P, P, page, rs)
				}
			}
		})
	}
}
