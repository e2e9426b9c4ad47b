package kernels

import (
	"testing"
	"unsafe"

	"github.com/kvserve/kvserve/internal/cpu"
	"github.com/kvserve/kvserve/internal/cpu/cputest"
)

// TestNoAccessPastEnd runs every kernel on operands that end at an
// unmapped page: masked tails must neither read nor write past the end.
func TestNoAccessPastEnd(t *testing.T) {
	forLevels(t, func(t *testing.T, lv cpu.Level) {
		for n := 1; n <= 40; n++ {
			a, f1 := cputest.GuardedF32(t, n)
			b, f2 := cputest.GuardedF32(t, n)
			h, f3 := cputest.GuardedU16(t, n)
			for i := range a {
				a[i], b[i], h[i] = float32(i), 1, 0x3c00
			}
			DotF32(a, b)
			DotF16(h, a)
			DotBF16(h, a)
			F16ToF32(a, h)
			F32ToF16(h, b)
			Axpy(1, a, b)
			AxpyF16(1, h, b)
			Scale(1, a)
			Add(a, a, b)
			Mul(a, a, b)
			SumSquares(a)
			Max(a)
			ExpSub(a, 1)
			SiLUMul(a, a, b)
			f1()
			f2()
			f3()
			// Matrix products: the last weight row, the last token and the
			// last output all end at the guard page.
			for _, s := range []shape{{9, 3, n}, {4, 2, n}, {17, 5, n}} {
				w, f4 := cputest.GuardedF32(t, s.m*s.k)
				wh, f5 := cputest.GuardedU16(t, s.m*s.k)
				x, f6 := cputest.GuardedF32(t, s.n*s.k)
				y, f7 := cputest.GuardedF32(t, s.n*s.m)
				GemmF32(s.m, s.n, s.k, w, x, y, s.m)
				GemmF16(s.m, s.n, s.k, wh, x, y, s.m)
				GemmBF16(s.m, s.n, s.k, wh, x, y, s.m)
				DotF16Rows(y[len(y)-s.m:], wh, x[len(x)-s.k:])
				DotF32Rows(y[len(y)-s.m:], w, x[len(x)-s.k:])
				f4()
				f5()
				f6()
				f7()
			}
		}
	})
}

// TestAccumRowsNoAccessOutside runs the AccumRows kernels with y, a and
// the rows each starting right after and ending right before an unmapped
// page: masked and overlapping tail vectors stay inside their rows.
func TestAccumRowsNoAccessOutside(t *testing.T) {
	dims := []int{1, 2, 7, 8, 9, 15, 16, 17, 23, 24, 31, 33, 40, 63, 65, 129, 136}
	forLevels(t, func(t *testing.T, lv cpu.Level) {
		for _, front := range []bool{false, true} {
			alloc := cputest.Guarded
			if front {
				alloc = cputest.GuardedFront
			}
			f32 := func(n int) ([]float32, func()) {
				b, free := alloc(t, 4*n)
				return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(b))), n), free
			}
			u16 := func(n int) ([]uint16, func()) {
				b, free := alloc(t, 2*n)
				return unsafe.Slice((*uint16)(unsafe.Pointer(unsafe.SliceData(b))), n), free
			}
			for _, dim := range dims {
				for _, G := range []int{1, 3, 8} {
					for _, n := range []int{1, 3} {
						stride := dim + n - 1 // 0 or 2 elements of padding
						y, f1 := f32(G * dim)
						a, f2 := f32((G-1)*n + n)
						w, f3 := f32((n-1)*stride + dim)
						h, f4 := u16((n-1)*stride + dim)
						for i := range w {
							w[i], h[i] = 1, 0x3c00
						}
						AccumRowsF32Multi(y, dim, a, n, n, w, stride)
						AccumRowsF16Multi(y, dim, a, n, n, h, stride)
						AccumRowsBF16Multi(y, dim, a, n, n, h, stride)
						AccumRowsF32(y[len(y)-dim:], a[len(a)-n:], w, stride)
						AccumRowsF16(y[:dim], a[:n], h, stride)
						AccumRowsBF16(y[len(y)-dim:], a[:n], h, stride)
						f1()
						f2()
						f3()
						f4()
					}
				}
			}
		}
	})
}

// TestFWHTNoAccessOutside runs FWHT on rows that end right before (and
// start right after) an unmapped page.
func TestFWHTNoAccessOutside(t *testing.T) {
	forLevels(t, func(t *testing.T, lv cpu.Level) {
		for _, front := range []bool{false, true} {
			alloc := cputest.Guarded
			if front {
				alloc = cputest.GuardedFront
			}
			for n := 1; n <= 2048; n *= 2 {
				for _, rows := range []int{1, 3} {
					b, free := alloc(t, 4*n*rows)
					x := unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(b))), n*rows)
					for i := range x {
						x[i] = float32(i % 7)
					}
					FWHT(x, n)
					free()
				}
			}
		}
	})
}
