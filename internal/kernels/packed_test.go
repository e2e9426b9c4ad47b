package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kvserve/kvserve/internal/cpu"
	"github.com/kvserve/kvserve/internal/cpu/cputest"
	"github.com/kvserve/kvserve/internal/tensor"
)

// TestGemmPacked checks, on every path, that GemmPacked over a packed
// matrix equals Gemm over the row-major one bit for bit (and so the single
// dot products): row ranges starting at 0 and 16 with partial batches,
// one token (the packed matrix-vector kernel), small batches (read in
// place, 4 tokens per kernel call, tiles of rows for more than 4) and a
// larger one (the GEMM on rows copied back), row lengths with and without
// a partial chunk.
func TestGemmPacked(t *testing.T) {
	cputest.ForLevels(t, cpu.Float, func(t *testing.T, _ cpu.Level) {
		r := rand.New(rand.NewPCG(3, 4))
		for _, ty := range []tensor.Type{tensor.F32, tensor.F16, tensor.BF16} {
			t.Run(ty.String(), func(t *testing.T) {
				for _, k := range []int{7, 16, 100, 512, 2048} {
					const M = 53
					vals := make([]float32, M*k)
					for i := range vals {
						vals[i] = float32(r.NormFloat64())
					}
					w := make([]byte, ty.RowSize(k)*M)
					for i := 0; i < M; i++ {
						tensor.QuantizeRow(ty, vals[i*k:(i+1)*k], w[i*ty.RowSize(k):(i+1)*ty.RowSize(k)])
					}
					p := make([]byte, PackedSize(ty, M, k))
					for i := range p {
						p[i] = 0x5A
					}
					Pack(ty, p, w, M, k)
					for _, nTok := range []int{1, 2, 3, 4, 5, 8, 9, 18, 64, 65} {
						xv := make([]float32, nTok*k)
						for i := range xv {
							xv[i] = float32(r.NormFloat64())
						}
						xb := make([]byte, 4*len(xv))
						copy(f32View(xb), xv)
						for _, rr := range [][2]int{{0, M}, {16, 37}, {48, 5}, {0, 16}, {32, 17}} {
							r0, m := rr[0], rr[1]
							rs := ty.RowSize(k)
							want := make([]float32, nTok*m)
							Gemm(ty, m, nTok, k, w[r0*rs:(r0+m)*rs], rs, xb, 4*k, want, m)
							got := make([]float32, nTok*m)
							GemmPacked(ty, r0, m, nTok, k, p, xb, got, m)
							for i := range got {
								if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
									t.Fatalf("%s k=%d nTok=%d rows %d+%d: output %d = %g, Gemm %g", ty, k, nTok, r0, m, i, got[i], want[i])
								}
							}
						}
					}
				}
			})
		}
	})
}
