package qkernels

import (
	"fmt"

	"github.com/kvserve/kvserve/internal/tensor"
)

// Weighted sums of quantized rows (attention's V accumulation over a
// quantized KV cache) and SIMD dequantization, for the 32-element KV-cache
// types Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 and IQ4_NL.
//
// # Accumulation order of AccumRowsMulti
//
// For each output y[g·dim+d], with v(t, d) = tensor.DequantizeRow(row t)[d]:
//
//	acc = y[g·dim+d]
//	for t = 0, 1, ..., n-1: acc = fma(a[g·lda+t], v(t, d), acc)
//	y[g·dim+d] = acc
//
// On the assembly paths (AVX-512, AVX2) every step is one fused
// multiply-add (a single rounding) whatever dim, n, stride, lda, the head
// count or the column, and v is bit-identical to DequantizeRow's value. So
// AccumRowsMulti equals that loop written with a correctly rounded float32
// fma bit for bit, equals one call per head, and equals
// kernels.AccumRowsF32Multi applied to the dequantized rows.
//
// How: each pass over the rows dequantizes every row's blocks once, into
// registers, for all the heads of the pass, and the heads' accumulators
// stay in registers across all n rows. Heads wider than a pass's registers
// are split into passes over column blocks (AVX-512: up to 4 blocks of 32
// columns for 1 or 2 heads, 3 for 3, 2 for 4 or 5, 1 for 6 to 8; AVX2: 2
// blocks for 1 head, 1 for 2, half a block for 3 or 4), and more than 8
// heads (AVX2: 4) go in equal groups, each group a separate pass: neither
// changes any output's chain. The binary16 scales of a chunk of 64 rows
// are converted to float32 before the chunk's row loop (gen/main.go).
//
// The generic path (every architecture but amd64, and amd64 without AVX2)
// dequantizes each row once and computes y[d] += a[t]·v(t, d) as Go
// compiles the expression, t ascending: two roundings where the compiler
// does not fuse it (amd64: bit-identical to AxpyRows for each head), one
// fused multiply-add where it does (arm64's FMADDS: then the same results
// as the assembly paths).
//
// Error against the exact sum, every path (to first order, barring
// underflow): at most (n+1)·2⁻²⁴·(|y₀[d]| + Σ_t |a[t]·v(t, d)|), so any
// two paths differ by at most twice that.

// CanDequantize reports whether Dequantize and AccumRowsMulti accept type
// t: the block types with Decode and AccumRows kernels in tensor's traits
// table (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 and IQ4_NL).
func CanDequantize(t tensor.Type) bool { return has(t, tensor.KDecode|tensor.KAccum) }

func checkKVType(op string, t tensor.Type) {
	if !CanDequantize(t) {
		panic(fmt.Sprintf("qkernels.%s: unsupported type %s (want one of %v)", op, t, typesWith(tensor.KDecode|tensor.KAccum)))
	}
}

// Dequantize sets dst to the values of src, len(dst) values of type t
// (t.RowSize(len(dst)) bytes, len(dst) a multiple of 32), bit-identical to
// tensor.DequantizeRow(t, src, dst) on every path, for every input
// (subnormal, infinite and NaN scales included). t must satisfy
// CanDequantize.
func Dequantize(t tensor.Type, dst []float32, src []byte) {
	checkKVType("Dequantize", t)
	if len(dst)%32 != 0 {
		panic(fmt.Sprintf("qkernels.Dequantize: %d values is not a whole number of %s blocks (32)", len(dst), t))
	}
	if want := t.RowSize(len(dst)); len(src) != want {
		panic(fmt.Sprintf("qkernels.Dequantize: %d values of %s take %d bytes, src has %d", len(dst), t, want, len(src)))
	}
	if len(dst) == 0 {
		return
	}
	dequant(t, dst, src)
}

// AccumRowsMulti accumulates G = len(y)/dim weight vectors over the same n
// quantized rows, reading and dequantizing each row once:
//
//	y[g·dim+d] += Σ_{t<n} a[g·lda+t]·deq(row t)[d]   (g < G, d < dim)
//
// where row t is dim values of type t (t.RowSize(dim) bytes) at
// rows[t·stride:] and deq is tensor.DequantizeRow — grouped-query
// attention's value accumulation, the G query heads sharing one KV head.
// The accumulation order (t ascending, one fma per step on the assembly
// paths) and error bound are in accum.go's comment.
//
// t must satisfy CanDequantize; dim must be a multiple of 32 and len(y) a
// multiple of dim; lda ≥ n when G > 1 and len(a) ≥ (G-1)·lda + n; stride
// ≥ t.RowSize(dim) bytes and len(rows) ≥ (n-1)·stride + t.RowSize(dim). y
// must not overlap a. With n = 0 or len(y) = 0 it does nothing. It does
// not allocate and may run concurrently with other calls.
func AccumRowsMulti(t tensor.Type, y []float32, dim int, a []float32, lda, n int, rows []byte, stride int) {
	checkKVType("AccumRowsMulti", t)
	switch {
	case dim < 0 || n < 0:
		panic(fmt.Sprintf("qkernels.AccumRowsMulti: negative shape dim=%d n=%d", dim, n))
	case dim%32 != 0:
		panic(fmt.Sprintf("qkernels.AccumRowsMulti: dim=%d is not a whole number of %s blocks (32)", dim, t))
	case dim == 0:
		if len(y) != 0 {
			panic(fmt.Sprintf("qkernels.AccumRowsMulti: %d outputs for dim=0", len(y)))
		}
		return
	case len(y)%dim != 0:
		panic(fmt.Sprintf("qkernels.AccumRowsMulti: %d outputs is not a whole number of heads of dim=%d", len(y), dim))
	}
	G := len(y) / dim
	if G == 0 || n == 0 {
		return
	}
	rs := t.RowSize(dim)
	switch {
	case G > 1 && lda < n:
		panic(fmt.Sprintf("qkernels.AccumRowsMulti: lda=%d < n=%d", lda, n))
	case len(a) < n || (G > 1 && (len(a)-n)/(G-1) < lda):
		panic(fmt.Sprintf("qkernels.AccumRowsMulti: %d coefficients for %d heads of n=%d at lda=%d", len(a), G, n, lda))
	case stride < rs:
		panic(fmt.Sprintf("qkernels.AccumRowsMulti: stride %d shorter than a row (%d bytes of %s)", stride, rs, t))
	case len(rows) < rs || (n > 1 && (len(rows)-rs)/stride < n-1):
		panic(fmt.Sprintf("qkernels.AccumRowsMulti: %d bytes for %d rows of %d bytes at stride %d", len(rows), n, rs, stride))
	}
	accumMulti(t, y, dim, G, a, lda, n, rows, stride)
}

// accumMultiGeneric is the generic path: each row dequantized once (in
// 256-value chunks), then y[d] += a[t]·v[d] for every head, t ascending.
func accumMultiGeneric(t tensor.Type, y []float32, dim, G int, a []float32, lda, n int, rows []byte, stride int) {
	// v is pooled scratch (see axpyRowsGeneric).
	s := getScratch()
	defer putScratch(s)
	v := s.floats(256)
	rs := t.RowSize(dim)
	for r := 0; r < n; r++ {
		row := rows[r*stride : r*stride+rs]
		for c0 := 0; c0 < dim; c0 += len(v) {
			c := min(len(v), dim-c0)
			vv := v[:c]
			tensor.DequantizeRow(t, row[t.RowSize(c0):t.RowSize(c0+c)], vv)
			for g := 0; g < G; g++ {
				ar := a[g*lda+r]
				yy := y[g*dim+c0 : g*dim+c0+c]
				for d, w := range vv {
					yy[d] += ar * w
				}
			}
		}
	}
}
