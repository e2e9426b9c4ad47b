// Package cbkernels computes with kvserve's codebook cache types (cb4, cb3,
// cb2; internal/tensor's codebook.go): the score GEMM of attention (rows of
// keys against float32 queries), the weighted sums of value rows, and
// conversion to and from float32.
//
// Scores of a few queries (decode: up to 8 query rows, the query heads of
// one KV head) are computed by fused AVX2 kernels (score_amd64.s): each key
// row is decoded a block at a time into registers and multiplied into the
// queries there, in internal/kernels' canonical order for the CPU level.
// Otherwise (prompt runs, values, CPUs without AVX2) a page's rows are
// decoded a tile at a time (32 rows) into a small float32 buffer — each
// block's levels scaled once, then one table lookup per value — and the
// tile goes through internal/kernels' float32 kernels (GemmF32,
// AccumRowsF32Multi). The page itself is never copied whole. Results are
// bit-identical to decoding the rows with tensor.DequantizeRow and calling
// those float32 kernels (tested), so they inherit their batch invariance.
//
// Encoding (Encode) runs the SIMD encoder of encode.go (AVX-512, AVX2),
// which writes exactly tensor.QuantizeRow's bytes.
package cbkernels

import (
	"fmt"
	"sync"

	"github.com/kvserve/kvserve/internal/kernels"
	"github.com/kvserve/kvserve/internal/tensor"
)

// tileRows is the number of rows decoded at a time.
const tileRows = 32

// smallBatch is the most activation rows scored by matrix-vector products
// rather than GemmF32 (both give each output as kernels.DotF32).
const smallBatch = 8

var bufPool = sync.Pool{New: func() any { return new([]float32) }}

func getBuf(n int) *[]float32 {
	p := bufPool.Get().(*[]float32)
	if cap(*p) < n {
		*p = make([]float32, n)
	}
	*p = (*p)[:n]
	return p
}

func check(op string, t tensor.Type) {
	if !t.IsCodebook() {
		panic(fmt.Sprintf("cbkernels.%s: %s is not a codebook type", op, t))
	}
}

// Gemm sets y[j·ldy+i] to the dot product of row i (k values of type t at
// w[i·ldw:]) with activation row j (k float32 values at x[j·ldx:], ldx =
// 4k), for i < m and j < nTok: kernels.GemmF32 over the decoded rows.
func Gemm(t tensor.Type, m, nTok, k int, w []byte, ldw int, x []byte, ldx int, y []float32, ldy int) {
	check("Gemm", t)
	if m == 0 || nTok == 0 {
		return
	}
	if ldx != 4*k {
		panic(fmt.Sprintf("cbkernels.Gemm: activation stride %d bytes, want %d", ldx, 4*k))
	}
	xv, ok := tensor.F32View(x[:nTok*ldx])
	if !ok {
		panic("cbkernels.Gemm: activations not viewable as float32")
	}
	if nTok <= smallBatch && scoreSIMD(t, m, nTok, k, w, ldw, xv[:nTok*k], y, ldy) {
		return
	}
	rb := t.RowSize(k)
	bp := getBuf(tileRows * k)
	buf := *bp
	for i0 := 0; i0 < m; i0 += tileRows {
		mt := min(tileRows, m-i0)
		decodeRows(t, buf[:mt*k], k, w[i0*ldw:], ldw, rb, mt)
		if nTok <= smallBatch {
			// A few tokens (decode): matrix-vector products over the
			// tile, which is in L1, without GemmF32's packing.
			for j := 0; j < nTok; j++ {
				kernels.DotF32Rows(y[j*ldy+i0:j*ldy+i0+mt], buf[:mt*k], xv[j*k:(j+1)*k])
			}
		} else {
			kernels.GemmF32(mt, nTok, k, buf[:mt*k], xv, y[i0:], ldy)
		}
	}
	bufPool.Put(bp)
}

// AccumRowsMulti adds to each of G = len(y)/dim vectors a weighted sum of
// the same n rows (dim values of type t each, stride bytes apart):
// y[g·dim+d] += Σ_t a[g·lda+t]·row_t[d], rows in ascending order
// (kernels.AccumRowsF32Multi over the decoded rows, a tile at a time).
func AccumRowsMulti(t tensor.Type, y []float32, dim int, a []float32, lda, n int, rows []byte, stride int) {
	check("AccumRowsMulti", t)
	if n == 0 || len(y) == 0 {
		return
	}
	rb := t.RowSize(dim)
	bp := getBuf(tileRows * dim)
	buf := *bp
	for t0 := 0; t0 < n; t0 += tileRows {
		nt := min(tileRows, n-t0)
		decodeRows(t, buf[:nt*dim], dim, rows[t0*stride:], stride, rb, nt)
		kernels.AccumRowsF32Multi(y, dim, a[t0:], lda, nt, buf[:nt*dim], dim)
	}
	bufPool.Put(bp)
}

// Encode converts src to type t into dst, bit-identical to
// tensor.QuantizeRow: the SIMD encoder (encode.go) at the AVX2 and AVX-512
// levels in the default scale mode, QuantizeRow otherwise.
func Encode(t tensor.Type, dst []byte, src []float32) {
	check("Encode", t)
	if len(src)%t.BlockSize() != 0 || len(dst) < t.RowSize(len(src)) || !encodeSIMD(t, dst, src) {
		tensor.QuantizeRow(t, src, dst)
	}
}

// Decode converts src (t.RowSize(len(dst)) bytes of type t) to float32,
// bit-identical to tensor.DequantizeRow: each block's levels are scaled
// once, then each value is one lookup (AVX2: VPERMPS on eight values at a
// time; decodeGeneric otherwise).
func Decode(t tensor.Type, dst []float32, src []byte) {
	check("Decode", t)
	if len(src) != t.RowSize(len(dst)) || len(dst)%t.BlockSize() != 0 {
		panic(fmt.Sprintf("cbkernels.Decode: %d values of %s in %d bytes", len(dst), t, len(src)))
	}
	if !decodeSIMD(t, dst, src) {
		decodeGeneric(t, dst, src)
	}
}

// decodeRows decodes n rows of k values (rb bytes each, stride bytes apart
// in src) into dst, as n calls of Decode would: rows stored back to back
// are decoded by one call, so the per-call work is paid once per tile.
func decodeRows(t tensor.Type, dst []float32, k int, src []byte, stride, rb, n int) {
	if stride == rb {
		Decode(t, dst[:n*k], src[:n*rb])
		return
	}
	for i := 0; i < n; i++ {
		Decode(t, dst[i*k:(i+1)*k], src[i*stride:i*stride+rb])
	}
}

// decodeGeneric is Decode in plain Go.
func decodeGeneric(t tensor.Type, dst []float32, src []byte) {
	L := tensor.CodebookLevels(t)
	switch t {
	case tensor.CB4:
		var dl [16]float32
		for b := 0; b < len(dst)/64; b++ {
			xb, yb := src[34*b:34*b+34], dst[64*b:64*b+64]
			d := f16(xb)
			for i := range dl {
				dl[i] = d * L[i]
			}
			q := xb[2:34]
			lo, hi := yb[:32], yb[32:64]
			for j, v := range q {
				lo[j] = dl[v&15]
				hi[j] = dl[v>>4]
			}
		}
	case tensor.CB3:
		var dl [8]float32
		for b := 0; b < len(dst)/64; b++ {
			xb, yb := src[26*b:26*b+26], dst[64*b:64*b+64]
			d := f16(xb)
			for i := range dl {
				dl[i] = d * L[i]
			}
			ql, qh := xb[2:18], xb[18:26]
			for s := 0; s < 4; s++ {
				ys := yb[16*s : 16*s+16]
				for j := 0; j < 16; j++ {
					// value i = 16s+j: high bit in byte i%8, bit i/8.
					i := 16*s + j
					k := ql[j]>>(2*s)&3 | (qh[i&7]>>(i>>3)&1)<<2
					ys[j] = dl[k]
				}
			}
		}
	case tensor.CB2:
		var dl [4]float32
		for b := 0; b < len(dst)/32; b++ {
			xb, yb := src[10*b:10*b+10], dst[32*b:32*b+32]
			d := f16(xb)
			for i := range dl {
				dl[i] = d * L[i]
			}
			q := xb[2:10]
			for j, v := range q {
				yb[j] = dl[v&3]
				yb[j+8] = dl[v>>2&3]
				yb[j+16] = dl[v>>4&3]
				yb[j+24] = dl[v>>6]
			}
		}
	default:
		check("Decode", t)
	}
}

func f16(b []byte) float32 { return tensor.F16ToF32(uint16(b[0]) | uint16(b[1])<<8) }
