//go:build amd64

package kernels

import (
	"fmt"
	"unsafe"

	"github.com/kvserve/kvserve/internal/cpu"
)

// accumMaxVec512[G] and accumMaxVec256[G] are the most vectors (16 and 8
// lanes) of one column block per pass over the rows for G heads: the
// (G, b ≤ cap) variants the AccumRows kernels hold in registers. They
// must equal accumCaps512 / accumCaps256 in gen/main.go.
var (
	accumMaxVec512 = [9]int{0, 8, 4, 4, 4, 4, 4, 3, 3}
	accumMaxVec256 = [9]int{0, 8, 4, 4, 3, 2, 2, 0, 0}
)

// accumHeads512 and accumHeadsAVX2 are the most heads sharing one pass
// over the rows; more heads are split into equal groups. With 16 ymm
// registers, 7 or 8 heads would leave one vector per block and reload
// all the coefficients for every 8 columns: two groups of ≤ 4 heads
// measured 25-30% faster (f16, dim 64 and 128, 256 rows). With AVX-512,
// groups of 4 were slower than one group of 7 or 8.
const (
	accumHeads512  = 8
	accumHeadsAVX2 = 6
)

// accumRows adds the weighted rows for G = len(y)/dim heads (see
// accum.go). Heads go in equal groups of at most accumHeads*; each group's
// columns are split into as few equal blocks as the register caps allow,
// each block one kernel call (one pass over the n rows).
func accumRows(t wtype, y []float32, dim int, a []float32, lda, n int, rows unsafe.Pointer, stride int) {
	if len(y) == 0 || n == 0 {
		return
	}
	lv := level()
	if lv == cpu.Generic {
		accumRowsGeneric(t, y, dim, a, lda, n, rows, stride)
		return
	}
	G := len(y) / dim
	L, caps, hmax := 16, &accumMaxVec512, accumHeads512
	if lv == cpu.AVX2 {
		L, caps, hmax = 8, &accumMaxVec256, accumHeadsAVX2
	}
	groups := (G + hmax - 1) / hmax
	hg := (G + groups - 1) / groups
	for g0 := 0; g0 < G; g0 += hg {
		gc := min(hg, G-g0)
		ap := &a[g0*lda]
		if lv == cpu.AVX2 && dim < 8 {
			accumSmallAVX2(t, &y[g0*dim], dim, ap, lda, rows, stride, n, gc, dim)
			continue
		}
		nv := (dim + L - 1) / L
		passes := (nv + caps[gc] - 1) / caps[gc]
		bv := (nv + passes - 1) / passes
		for c0 := 0; c0 < dim; c0 += bv * L {
			cols := min(bv*L, dim-c0)
			if !accumKernel(lv, t, &y[g0*dim+c0], dim, ap, lda, unsafe.Add(rows, c0*t.size()), stride, n, gc, cols) {
				panic(fmt.Sprintf("kernels: no %v AccumRows kernel for %d heads × %d columns", lv, gc, cols))
			}
		}
	}
}

func accumKernel(lv cpu.Level, t wtype, y *float32, ldy int, a *float32, lda int, rows unsafe.Pointer, stride, n, g, cols int) bool {
	if lv == cpu.AVX512 {
		switch t {
		case wF32:
			return accumRowsF32AVX512(y, ldy, a, lda, (*float32)(rows), stride, n, g, cols)
		case wF16:
			return accumRowsF16AVX512(y, ldy, a, lda, (*uint16)(rows), stride, n, g, cols)
		default:
			return accumRowsBF16AVX512(y, ldy, a, lda, (*uint16)(rows), stride, n, g, cols)
		}
	}
	switch t {
	case wF32:
		return accumRowsF32AVX2(y, ldy, a, lda, (*float32)(rows), stride, n, g, cols)
	case wF16:
		return accumRowsF16AVX2(y, ldy, a, lda, (*uint16)(rows), stride, n, g, cols)
	default:
		return accumRowsBF16AVX2(y, ldy, a, lda, (*uint16)(rows), stride, n, g, cols)
	}
}

func accumSmallAVX2(t wtype, y *float32, ldy int, a *float32, lda int, rows unsafe.Pointer, stride, n, g, cols int) {
	switch t {
	case wF32:
		accumRowsSmallF32AVX2(y, ldy, a, lda, (*float32)(rows), stride, n, g, cols)
	case wF16:
		accumRowsSmallF16AVX2(y, ldy, a, lda, (*uint16)(rows), stride, n, g, cols)
	default:
		accumRowsSmallBF16AVX2(y, ldy, a, lda, (*uint16)(rows), stride, n, g, cols)
	}
}
