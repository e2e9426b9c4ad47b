package qkernels

import (
	"math/rand/v2"
	"syscall"
	"testing"
	"unsafe"
)

// guarded returns a byte slice of size n that ends exactly at a page
// followed by an inaccessible page, so any access past its end faults.
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

// TestAccumDequantizeNoAccessPastEnd runs AccumRowsMulti and Dequantize
// with rows, coefficients, outputs and sources ending at an unmapped
// page: the kernels read only the bytes of each block.
func TestAccumDequantizeNoAccessPastEnd(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(37, uint64(Level())))
		for _, ty := range legacyTypes {
			for _, dim := range []int{32, 64, 96} {
				for G := 1; G <= 9; G++ {
					for _, n := range []int{1, 3} {
						c := newAccumCase(r, ty, dim, G, n)
						c.stride = ty.RowSize(dim)
						c.lda = n
						rows, f1 := guarded(t, (n-1)*c.stride+c.stride)
						for i := 0; i < n; i++ {
							copy(rows[i*c.stride:], quantRow(ty, randFloats(r, dim, 1)))
						}
						a, f2 := guardedF32(t, G*n)
						y, f3 := guardedF32(t, G*dim)
						copy(a, c.a)
						copy(y, c.y0)
						AccumRowsMulti(ty, y, dim, a, n, n, rows, c.stride)
						dst, f4 := guardedF32(t, dim)
						Dequantize(ty, dst, rows[len(rows)-c.stride:])
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
