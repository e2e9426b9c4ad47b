package kernels

import (
	"fmt"
	"unsafe"
)

// Weighted sums of rows: attention's V accumulation. The accumulation
// order and its bit-identities are in the package comment ("Weighted sums
// of rows"): per output, t ascending, one fma per step on the assembly
// paths.
//
// The assembly keeps the accumulators of a block of columns (up to 128
// columns for one head with AVX-512, 64 with AVX2; fewer per head for
// several heads) in registers across all n rows, broadcasting each
// coefficient once per row and block and converting each row vector once
// for all heads of the block; wider heads take several blocks, each a pass
// over the rows. A block's last vector is masked (AVX-512) or overlaps the
// one before it (AVX2, storing only its new lanes), so every column gets
// the same chain.

// AccumRowsF32 sets y[d] += Σ_{t<len(a)} a[t]·rows[t·stride+d] for
// d < len(y): t ascending, one fma per step on the assembly paths (see
// "Weighted sums of rows" in the package comment). stride (in elements)
// must be at least len(y) and rows must hold the len(a) rows:
// len(rows) ≥ (len(a)-1)·stride + len(y). y must not overlap a or rows.
func AccumRowsF32(y, a, rows []float32, stride int) {
	checkAccum("AccumRowsF32", len(y), len(y), 1, len(a), len(a), len(a), len(rows), stride)
	accumRows(wF32, y, len(y), a, len(a), len(a), wptr(rows), stride)
}

// AccumRowsF16 is AccumRowsF32 with rows in IEEE binary16 bits.
func AccumRowsF16(y, a []float32, rows []uint16, stride int) {
	checkAccum("AccumRowsF16", len(y), len(y), 1, len(a), len(a), len(a), len(rows), stride)
	accumRows(wF16, y, len(y), a, len(a), len(a), wptr(rows), stride)
}

// AccumRowsBF16 is AccumRowsF32 with rows in bfloat16 bits.
func AccumRowsBF16(y, a []float32, rows []uint16, stride int) {
	checkAccum("AccumRowsBF16", len(y), len(y), 1, len(a), len(a), len(a), len(rows), stride)
	accumRows(wBF16, y, len(y), a, len(a), len(a), wptr(rows), stride)
}

// AccumRowsF32Multi accumulates G = len(y)/dim weight vectors over the
// same n rows, reading each row once:
//
//	y[g·dim+d] += Σ_{t<n} a[g·lda+t]·rows[t·stride+d]   (g < G, d < dim)
//
// bit-identical to AccumRowsF32(y[g·dim:(g+1)·dim], a[g·lda:g·lda+n],
// rows, stride) for each g (grouped-query attention: the G query heads
// sharing one KV head). len(y) must be a multiple of dim; lda ≥ n when
// G > 1 and len(a) ≥ (G-1)·lda + n; stride ≥ dim and len(rows) ≥
// (n-1)·stride + dim; y must not overlap a or rows. Up to 8 heads (6 with
// AVX2) share each pass over the rows; more go in equal groups.
func AccumRowsF32Multi(y []float32, dim int, a []float32, lda, n int, rows []float32, stride int) {
	G := checkMulti("AccumRowsF32Multi", len(y), dim, len(a), lda, n, len(rows), stride)
	accumRows(wF32, y[:G*dim], dim, a, lda, n, wptr(rows), stride)
}

// AccumRowsF16Multi is AccumRowsF32Multi with rows in binary16 bits.
func AccumRowsF16Multi(y []float32, dim int, a []float32, lda, n int, rows []uint16, stride int) {
	G := checkMulti("AccumRowsF16Multi", len(y), dim, len(a), lda, n, len(rows), stride)
	accumRows(wF16, y[:G*dim], dim, a, lda, n, wptr(rows), stride)
}

// AccumRowsBF16Multi is AccumRowsF32Multi with rows in bfloat16 bits.
func AccumRowsBF16Multi(y []float32, dim int, a []float32, lda, n int, rows []uint16, stride int) {
	G := checkMulti("AccumRowsBF16Multi", len(y), dim, len(a), lda, n, len(rows), stride)
	accumRows(wBF16, y[:G*dim], dim, a, lda, n, wptr(rows), stride)
}

// checkMulti validates a Multi call and returns G (0 when there is no work).
func checkMulti(op string, ny, dim, na, lda, n, nrows, stride int) int {
	switch {
	case dim < 0 || n < 0:
		panic(fmt.Sprintf("kernels.%s: negative shape dim=%d n=%d", op, dim, n))
	case dim == 0:
		if ny != 0 {
			panic(fmt.Sprintf("kernels.%s: %d outputs for dim=0", op, ny))
		}
		return 0
	case ny%dim != 0:
		panic(fmt.Sprintf("kernels.%s: %d outputs is not a whole number of heads of dim=%d", op, ny, dim))
	}
	G := ny / dim
	checkAccum(op, ny, dim, G, na, lda, n, nrows, stride)
	return G
}

// checkAccum validates G heads of dim outputs, coefficients a (na values,
// head g's n at g·lda) and n rows at stride in nrows elements.
func checkAccum(op string, ny, dim, G, na, lda, n, nrows, stride int) {
	if ny == 0 || n == 0 {
		return
	}
	switch {
	case G > 1 && lda < n:
		panic(fmt.Sprintf("kernels.%s: lda=%d < n=%d", op, lda, n))
	case na < n || (G > 1 && (na-n)/(G-1) < lda):
		panic(fmt.Sprintf("kernels.%s: %d coefficients for %d heads of n=%d at lda=%d", op, na, G, n, lda))
	case stride < dim:
		panic(fmt.Sprintf("kernels.%s: stride %d shorter than a row (%d)", op, stride, dim))
	case nrows < dim || (n > 1 && (nrows-dim)/stride < n-1):
		panic(fmt.Sprintf("kernels.%s: %d elements for %d rows of %d at stride %d", op, nrows, n, dim, stride))
	}
}

// accumRowsGeneric is the generic path: each head in turn, rows t
// ascending, y[d] += a[t]·w (the axpyGeneric expression).
func accumRowsGeneric(t wtype, y []float32, dim int, a []float32, lda, n int, rows unsafe.Pointer, stride int) {
	for g := 0; g < len(y)/dim; g++ {
		yg := y[g*dim : (g+1)*dim]
		ag := a[g*lda : g*lda+n]
		switch t {
		case wF32:
			for i, c := range ag {
				w := unsafe.Slice((*float32)(unsafe.Add(rows, i*stride*4)), dim)
				for d, v := range w {
					yg[d] += c * v
				}
			}
		case wF16:
			tab := f16Table()
			for i, c := range ag {
				w := unsafe.Slice((*uint16)(unsafe.Add(rows, i*stride*2)), dim)
				for d, h := range w {
					yg[d] += c * tab[h]
				}
			}
		default:
			for i, c := range ag {
				w := unsafe.Slice((*uint16)(unsafe.Add(rows, i*stride*2)), dim)
				for d, h := range w {
					yg[d] += c * bf16ToFloat(h)
				}
			}
		}
	}
}
