package qkernels

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/kvserve/kvserve/internal/kernels"
	"github.com/kvserve/kvserve/internal/tensor"
)

// BenchmarkAccumRowsMulti is attention's value accumulation over one page
// of one KV head: G = 4 query heads, n = 256 rows of dim 64 or 128.
// Multi is AccumRowsMulti; AxpyRows calls AxpyRows once per head (the loop
// it replaces); f16 is kernels.AccumRowsF16Multi on binary16 rows of the
// same shape (at the kernels package's best path), the speed to aim for.
// Bytes are the rows' bytes once per op (for f16, the f16 rows').
//
//	go test -run '^$' -bench AccumRowsMulti -benchtime 20000x ./internal/qkernels/
func BenchmarkAccumRowsMulti(b *testing.B) {
	const G, n = 4, 256
	for _, dim := range []int{64, 128} {
		r := rand.New(rand.NewPCG(41, uint64(dim)))
		a := make([]float32, G*n)
		for i := range a {
			a[i] = float32(r.Float64()) / n
		}
		y := make([]float32, G*dim)
		b.Run(fmt.Sprintf("f16/d=%d", dim), func(b *testing.B) {
			h := make([]uint16, n*dim)
			for i := range h {
				h[i] = tensor.F32ToF16(float32(r.NormFloat64()))
			}
			b.SetBytes(int64(2 * len(h)))
			for b.Loop() {
				kernels.AccumRowsF16Multi(y, dim, a, n, n, h, dim)
			}
		})
		for _, ty := range legacyTypes {
			rs := ty.RowSize(dim)
			rows := randMatrix(r, ty, n, dim, rs, false, 1)
			b.Run(fmt.Sprintf("%s/d=%d", ty, dim), func(b *testing.B) {
				benchLevels(b, func(b *testing.B) {
					b.Run("Multi", func(b *testing.B) {
						b.SetBytes(int64(len(rows)))
						for b.Loop() {
							AccumRowsMulti(ty, y, dim, a, n, n, rows, rs)
						}
					})
					b.Run("AxpyRows", func(b *testing.B) {
						b.SetBytes(int64(len(rows)))
						for b.Loop() {
							for g := 0; g < G; g++ {
								AxpyRows(ty, dim, rows, rs, n, a[g*n:(g+1)*n], y[g*dim:(g+1)*dim])
							}
						}
					})
				})
			})
		}
	}
}

// BenchmarkDequantize converts one page of a 64-wide head (256 rows,
// 16384 values) to float32: Dequantize against tensor.DequantizeRow
// ("ref"). Bytes are the float32 output.
//
//	go test -run '^$' -bench Dequantize ./internal/qkernels/
func BenchmarkDequantize(b *testing.B) {
	const n = 16384
	r := rand.New(rand.NewPCG(42, 1))
	dst := make([]float32, n)
	for _, ty := range legacyTypes {
		src := quantRow(ty, randFloats(r, n, 1))
		b.Run(ty.String(), func(b *testing.B) {
			b.Run("ref", func(b *testing.B) {
				b.SetBytes(4 * n)
				for b.Loop() {
					tensor.DequantizeRow(ty, src, dst)
				}
			})
			benchLevels(b, func(b *testing.B) {
				b.SetBytes(4 * n)
				for b.Loop() {
					Dequantize(ty, dst, src)
				}
			})
		})
	}
}
