package kernels

import (
	"syscall"
	"testing"
	"unsafe"
)

// guarded returns a byte slice of size n that ends exactly at a page
// followed by an inaccessible page, so any read or write past its end
// faults. free releases it.
func guarded(t *testing.T, n int) (b []byte, free func()) {
	t.Helper()
	page := syscall.Getpagesize()
	size := (n+page-1)/page*page + page
	mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Skipf("mmap: %v", err)
	}
	if err := syscall.Mprotect(mem[size-page:], syscall.PROT_NONE); err != nil {
		t.Skipf("mprotect: %v", err)
	}
	end := size - page
	return mem[end-n : end : end], func() { syscall.Munmap(mem) }
}

func guardedF32(t *testing.T, n int) ([]float32, func()) {
	b, free := guarded(t, 4*n)
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(b))), n), free
}

func guardedU16(t *testing.T, n int) ([]uint16, func()) {
	b, free := guarded(t, 2*n)
	return unsafe.Slice((*uint16)(unsafe.Pointer(unsafe.SliceData(b))), n), free
}

// TestNoAccessPastEnd runs every kernel on operands that end at an
// unmapped page: masked tails must neither read nor write past the end.
func TestNoAccessPastEnd(t *testing.T) {
	forLevels(t, func(t *testing.T, lv ISA) {
		for n := 1; n <= 40; n++ {
			a, f1 := guardedF32(t, n)
			b, f2 := guardedF32(t, n)
			h, f3 := guardedU16(t, n)
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
				w, f4 := guardedF32(t, s.m*s.k)
				wh, f5 := guardedU16(t, s.m*s.k)
				x, f6 := guardedF32(t, s.n*s.k)
				y, f7 := guardedF32(t, s.n*s.m)
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

// guardedFront is guarded with the inaccessible page just before the
// slice, which starts a page boundary.
func guardedFront(t *testing.T, n int) (b []byte, free func()) {
	t.Helper()
	page := syscall.Getpagesize()
	size := page + (n+page-1)/page*page
	mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Skipf("mmap: %v", err)
	}
	if err := syscall.Mprotect(mem[:page], syscall.PROT_NONE); err != nil {
		t.Skipf("mprotect: %v", err)
	}
	return mem[page : page+n : page+n], func() { syscall.Munmap(mem) }
}

// TestAccumRowsNoAccessOutside runs the AccumRows kernels with y, a and
// the rows each starting right after and ending right before an unmapped
// page: masked and overlapping tail vectors stay inside their rows.
func TestAccumRowsNoAccessOutside(t *testing.T) {
	dims := []int{1, 2, 7, 8, 9, 15, 16, 17, 23, 24, 31, 33, 40, 63, 65, 129, 136}
	forLevels(t, func(t *testing.T, lv ISA) {
		for _, front := range []bool{false, true} {
			alloc := guarded
			if front {
				alloc = guardedFront
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
	forLevels(t, func(t *testing.T, lv ISA) {
		for _, front := range []bool{false, true} {
			alloc := guarded
			if front {
				alloc = guardedFront
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
