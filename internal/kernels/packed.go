package kernels

import (
	"fmt"
	"sync"

	"github.com/kvserve/kvserve/internal/tensor"
)

// Packed float weights. Decoding streams every weight matrix once per
// token; the row-major matrix-vector kernel reads four rows at a time,
// four separate streams. Pack rewrites a matrix so that a pass reads one
// stream: for each batch of 16 rows, for each chunk of 16 columns, the 16
// rows' 16 values one after the other,
//
//	batch b (rows 16b..16b+15), chunk c, row r: element
//	    16b·kP + 256c + 16r        (kP = k rounded up to 16)
//
// with zero columns up to kP and zero rows up to a multiple of 16. The
// packed kernel (dot16P) keeps, per row, the canonical single 16-lane
// accumulator of dot1 with columns ascending and the same reduction tree,
// so GemmPacked is bit-identical to Gemm on every path. The matrix-vector
// product (one token) and small batches (up to packedSmallBatch tokens,
// dot4xTP: a quarter of a group's rows for up to 4 tokens per call) read
// packed matrices in place on the AVX-512 path; larger batches, and the
// other paths, copy rows back to row-major (64 at a time) and run Gemm on
// them.

// packedK is k rounded up to a chunk.
func packedK(k int) int { return (k + 15) &^ 15 }

// CanPack reports whether Pack accepts type t (F32, F16, BF16) with rows
// of k > 0 values.
func CanPack(t tensor.Type, k int) bool {
	return (t == tensor.F32 || t == tensor.F16 || t == tensor.BF16) && k > 0
}

// PackFast reports whether packed float weights are read in place here
// (the AVX-512 path).
func PackFast() bool { return packFast() }

// PackedSize is the size in bytes of an m×k matrix of type t packed.
func PackedSize(t tensor.Type, m, k int) int {
	return (m + 15) / 16 * 16 * packedK(k) * wtypeOf("PackedSize", t).size()
}

// Pack writes the m×k matrix w of type t (contiguous rows) packed into dst
// (PackedSize bytes).
func Pack(t tensor.Type, dst, w []byte, m, k int) {
	es := wtypeOf("Pack", t).size()
	if !CanPack(t, k) || len(dst) < PackedSize(t, m, k) || len(w) < m*k*es {
		panic(fmt.Sprintf("kernels.Pack: %d/%d bytes for %d %s rows of %d", len(dst), len(w), m, t, k))
	}
	kP := packedK(k)
	for b := 0; b < m; b += 16 {
		base := b * kP * es
		for c := 0; c < kP; c += 16 {
			for r := 0; r < 16; r++ {
				d := dst[base+(c*16+r*16)*es : base+(c*16+r*16+16)*es]
				n := 0
				if b+r < m && c < k {
					n = copy(d, w[((b+r)*k+c)*es:((b+r)*k+min(c+16, k))*es])
				}
				clear(d[n:])
			}
		}
	}
}

// unpackRows copies rows [r0, r0+m) of packed p (r0 a multiple of 16) to
// dst as contiguous rows of k values.
func unpackRows(es, k int, p []byte, r0, m int, dst []byte) {
	kP := packedK(k)
	for i := 0; i < m; i++ {
		r := r0 + i
		base := (r / 16) * 16 * kP * es
		rr := r % 16
		for c := 0; c < k; c += 16 {
			n := min(16, k-c)
			copy(dst[(i*k+c)*es:(i*k+c+n)*es], p[base+(c*16+rr*16)*es:])
		}
	}
}

var unpackPool = sync.Pool{New: func() any { return new([]byte) }}

// packedSmallBatch is the most tokens for which GemmPacked reads the packed
// rows in place on the AVX-512 path (gemmPackedSmall: each weight
// converted once for 4 tokens) rather than copying them back to row-major
// for the GEMM: a small batch, as a speculative verification pass, then
// streams the weights once (the copy cost more than the products;
// BENCHMARKS.md, "Speculative decoding").
var packedSmallBatch = 64

// PackedInPlace reports whether GemmPacked for nTok tokens reads the packed
// rows in place (one token, or a small batch on the AVX-512 path): such
// calls stream the weights, so they want long runs of rows, where the
// copy-back GEMM wants short tiles.
func PackedInPlace(nTok int) bool { return packFast() && nTok <= packedSmallBatch }

// GemmPacked is Gemm for rows [r0, r0+m) (r0 a multiple of 16) of a
// matrix packed by Pack: y[j·ldy+i] is the dot product of row r0+i with
// token j (x: nTok rows of k float32 values as bytes), bit-identical to
// Gemm on the row-major matrix.
func GemmPacked(t tensor.Type, r0, m, nTok, k int, p []byte, x []byte, y []float32, ldy int) {
	wt := wtypeOf("GemmPacked", t)
	es := wt.size()
	xf := f32View(x)
	switch {
	case r0 < 0 || r0%16 != 0 || m < 0 || nTok < 0 || k <= 0:
		panic(fmt.Sprintf("kernels.GemmPacked: bad shape r0=%d m=%d nTok=%d k=%d", r0, m, nTok, k))
	case m == 0 || nTok == 0:
		return
	case len(p) < (r0+m+15)/16*16*packedK(k)*es:
		panic(fmt.Sprintf("kernels.GemmPacked: %d packed bytes for rows up to %d", len(p), r0+m))
	case len(xf) < nTok*k:
		panic(fmt.Sprintf("kernels.GemmPacked: %d activations for nTok=%d k=%d", len(xf), nTok, k))
	case ldy < m || len(y) < (nTok-1)*ldy+m:
		panic(fmt.Sprintf("kernels.GemmPacked: %d outputs for nTok=%d ldy=%d m=%d", len(y), nTok, ldy, m))
	}
	if nTok == 1 && packFast() {
		dotRowsPacked(wt, p[r0*packedK(k)*es:], k, xf[:k], y[:m])
		return
	}
	if nTok <= packedSmallBatch && packFast() {
		gemmPackedSmall(wt, p[r0*packedK(k)*es:], k, m, nTok, xf[:nTok*k], y, ldy)
		return
	}
	bp := unpackPool.Get().(*[]byte)
	const tile = 64
	if need := tile * k * es; len(*bp) < need {
		*bp = make([]byte, need)
	}
	for i0 := 0; i0 < m; i0 += tile {
		mm := min(tile, m-i0)
		unpackRows(es, k, p, r0+i0, mm, *bp)
		gemm(wt, mm, nTok, k, bytesPtr(*bp), xf[:nTok*k], y[i0:], ldy)
	}
	unpackPool.Put(bp)
}
