package qkernels

import (
	"math/rand/v2"
	"testing"

	"github.com/kvserve/kvserve/internal/cpu"
	"github.com/kvserve/kvserve/internal/cpu/cputest"
)

// TestAccumDequantizeNoAccessPastEnd runs AccumRowsMulti and Dequantize
// with rows, coefficients, outputs and sources ending at an unmapped
// page: the kernels read only the bytes of each block.
func TestAccumDequantizeNoAccessPastEnd(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(37, uint64(cpu.Block.Level())))
		for _, ty := range legacyTypes {
			t.Run(ty.String(), func(t *testing.T) {
				for _, dim := range []int{32, 64, 96} {
					for G := 1; G <= 9; G++ {
						for _, n := range []int{1, 3} {
							c := newAccumCase(r, ty, dim, G, n)
							c.stride = ty.RowSize(dim)
							c.lda = n
							rows, f1 := cputest.Guarded(t, (n-1)*c.stride+c.stride)
							for i := 0; i < n; i++ {
								copy(rows[i*c.stride:], quantRow(ty, randFloats(r, dim, 1)))
							}
							a, f2 := cputest.GuardedF32(t, G*n)
							y, f3 := cputest.GuardedF32(t, G*dim)
							copy(a, c.a)
							copy(y, c.y0)
							AccumRowsMulti(ty, y, dim, a, n, n, rows, c.stride)
							dst, f4 := cputest.GuardedF32(t, dim)
							Dequantize(ty, dst, rows[len(rows)-c.stride:])
							f1()
							f2()
							f3()
							f4()
						}
					}
				}
			})
		}
	})
}
