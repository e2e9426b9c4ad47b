package qkernels

import (
	"fmt"

	"github.com/kvserve/kvserve/internal/tensor"
)

// Packed weights. Decoding streams every weight matrix once per token; the
// matrix-vector kernels work on 16 rows at a time, chunk by chunk (a chunk
// is 16 blocks of a legacy type, 16 super-blocks of a K-quant), so in the
// row-major layout of the file they read 16 separate streams, one short
// run per row and chunk. Pack rewrites a matrix so that those 16 runs are
// consecutive — for each batch of 16 rows, for each chunk, the 16 rows'
// bytes of that chunk one after the other:
//
//	batch b (rows 16b..16b+15), chunk c, row r: offset
//	    16b·rowB + 16c·cb + r·cb       (cb = one row's bytes of a chunk)
//
// so a kernel pass is one sequential stream. Blocks keep their bytes; only
// their places change, and every kernel computes exactly what it computes
// on the row-major matrix: GemmPacked is bit-identical to Gemm on every
// path. Rows are padded to a multiple of 16 with zero rows. Pack applies to
// rows of at most 16 blocks (one chunk; more than 4 for the legacy types,
// whose shorter rows take another kernel) or of a multiple of 16 blocks
// (CanPack); other shapes stay row-major, as padding chunks would cost
// memory.
//
// The matrix-vector kernels (decode: fewer than 3 tokens) read packed
// matrices directly; the GEMM (prefill) copies each batch of 16 rows back to
// row-major before unpacking it into its panel as it does for row-major
// weights (a copy of 16 rows per panel, amortised over the batch). Only the
// AVX-512 path, and the AVX2 path for the row-lane types (lanes.go: its
// lane kernels serve prefill too, 4 tokens per pass over a tile of rows),
// read packed matrices in place; the others copy them back to row-major
// first (PackFastFor reports whether packing pays).

// packGeom returns the bytes of a row and of one row's chunk for packed
// matrices of type t with rows of k values.
func packGeom(t tensor.Type, k int) (rowB, cb int) {
	if laneTypes[t] {
		rowB = laneRowB(t, k)
		return rowB, rowB
	}
	bs := t.BlockSize()
	nb := k / bs
	rowB = t.RowSize(k)
	if nb <= 16 {
		return rowB, rowB
	}
	return rowB, 16 * t.RowSize(bs)
}

// CanPack reports whether Pack accepts matrices of type t with rows of k
// values: a type whose packed kernels exist (packTypes), k a multiple of
// its block, and more than 4 blocks (legacy types) and at most 16 or a
// multiple of 16 of them.
func CanPack(t tensor.Type, k int) bool {
	if !packTypes[t] || !Supported(t) || k <= 0 || k%t.BlockSize() != 0 {
		return false
	}
	nb := k / t.BlockSize()
	if laneTypes[t] {
		return true // row-lane layout (lanes.go): any row length
	}
	if isLegacyType(t) && nb <= 4 {
		return false
	}
	return nb <= 16 || nb%16 == 0
}

// packTypes are the types the packed kernels read (GemmPacked's fast
// path): the legacy 32-blocks with a raw-row kernel and the K-quants
// Q4_K, Q5_K, Q6_K. Others (MXFP4, Q2_K, Q3_K, the IQ super-blocks) stay
// row-major.
var packTypes = map[tensor.Type]bool{
	tensor.Q8_0: true, tensor.Q4_0: true, tensor.Q4_1: true, tensor.Q5_0: true, tensor.Q5_1: true, tensor.IQ4_NL: true,
	tensor.Q4_K: true, tensor.Q5_K: true, tensor.Q6_K: true,
}

func isLegacyType(t tensor.Type) bool { return t.BlockSize() == 32 }

// PackedSize is the size in bytes of an m×k matrix of type t packed.
func PackedSize(t tensor.Type, m, k int) int {
	rowB, _ := packGeom(t, k)
	return (m + 15) / 16 * 16 * rowB
}

// Pack writes the m×k matrix w of type t (rows ldw bytes apart) packed into
// dst (PackedSize bytes). It panics if !CanPack(t, k).
func Pack(t tensor.Type, dst, w []byte, ldw, m, k int) {
	if !CanPack(t, k) {
		panic(fmt.Sprintf("qkernels.Pack: cannot pack %s rows of %d", t, k))
	}
	rowB, cb := packGeom(t, k)
	if len(dst) < PackedSize(t, m, k) || (m > 0 && len(w) < (m-1)*ldw+t.RowSize(k)) {
		panic(fmt.Sprintf("qkernels.Pack: %d/%d bytes for %d %s rows of %d", len(dst), len(w), m, t, k))
	}
	if laneTypes[t] {
		packLanes(t, dst, w, ldw, m, k)
		return
	}
	nc := rowB / cb
	off := 0
	for b := 0; b < m; b += 16 {
		for c := 0; c < nc; c++ {
			for r := b; r < b+16; r++ {
				if r < m {
					copy(dst[off:off+cb], w[r*ldw+c*cb:])
				} else {
					clear(dst[off : off+cb])
				}
				off += cb
			}
		}
	}
}

// unpackPacked copies rows [r0, r0+m) of the packed matrix p (r0 a
// multiple of 16) to dst, row-major with rows rowB bytes apart.
func unpackPacked(t tensor.Type, k int, p []byte, r0, m int, dst []byte) {
	if laneTypes[t] {
		unpackLanes(t, k, p, r0, m, dst)
		return
	}
	rowB, cb := packGeom(t, k)
	nc := rowB / cb
	for i := 0; i < m; i++ {
		r := r0 + i
		base := (r/16)*16*rowB + (r%16)*cb
		for c := 0; c < nc; c++ {
			copy(dst[i*rowB+c*cb:i*rowB+(c+1)*cb], p[base+c*16*cb:])
		}
	}
}

// GemmPacked is Gemm for rows [r0, r0+m) of a matrix packed by Pack (r0 a
// multiple of 16): y[j·ldy+i] is the dot product of row r0+i with
// activation row j. Every output is bit-identical to Gemm's on the
// row-major matrix.
func GemmPacked(t tensor.Type, r0, m, nTok, k int, p []byte, x []byte, ldx int, y []float32, ldy int) {
	if !CanPack(t, k) {
		panic(fmt.Sprintf("qkernels.GemmPacked: %s rows of %d are never packed", t, k))
	}
	rowB, _ := packGeom(t, k)
	rx := t.VecDotType().RowSize(k)
	switch {
	case r0 < 0 || r0%16 != 0 || m < 0 || nTok < 0:
		panic(fmt.Sprintf("qkernels.GemmPacked: bad rows r0=%d m=%d nTok=%d", r0, m, nTok))
	case m == 0 || nTok == 0:
		return
	case len(p) < (r0+m+15)/16*16*rowB:
		panic(fmt.Sprintf("qkernels.GemmPacked: %d packed bytes for rows up to %d", len(p), r0+m))
	case ldx < rx || len(x) < (nTok-1)*ldx+rx:
		panic(fmt.Sprintf("qkernels.GemmPacked: %d activation bytes (ldx=%d) for nTok=%d", len(x), ldx, nTok))
	case ldy < m || len(y) < (nTok-1)*ldy+m:
		panic(fmt.Sprintf("qkernels.GemmPacked: %d outputs for nTok=%d ldy=%d m=%d", len(y), nTok, ldy, m))
	}
	if gemmPackedFast(t, r0, m, nTok, k, p, x, ldx, y, ldy) {
		return
	}
	// Other paths: back to row-major, then Gemm.
	rs := t.RowSize(k)
	s := getScratch()
	w := s.bytes(m * rs)
	unpackPacked(t, k, p, r0, m, w)
	gemm(t, m, nTok, k, w, rs, x, ldx, y, ldy)
	putScratch(s)
}
