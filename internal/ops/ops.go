// Package ops is the one typed front to the kernels. Each function takes
// the element type of its operand, checks that tensor's traits table gives
// the type that kernel, and runs it from the type's kernel family:
// internal/kernels for the element types (f32, f16, bf16), internal/qkernels
// for the ggml block formats, internal/cbkernels for kvserve's codebook
// cache types. The model and the KV cache call only this
// package for typed work — matrix products, attention over a cache page,
// conversions to and from float32 — so that adding a type is a row of the
// table plus its kernels, with no caller changes (docs/kernels.md).
//
// Dispatch is a table lookup and a switch per call on a whole matrix tile
// or cache page, never per element. The results are the kernels' own, bit
// for bit (their orders are documented in those packages), and no call
// allocates. Bad arguments are programming errors and panic with a message
// naming the call and the type.
package ops

import (
	"fmt"

	"github.com/kvserve/kvserve/internal/cbkernels"
	"github.com/kvserve/kvserve/internal/kernels"
	"github.com/kvserve/kvserve/internal/qkernels"
	"github.com/kvserve/kvserve/internal/tensor"
)

func missing(op string, t tensor.Type, k tensor.Kernel) {
	panic(fmt.Sprintf("ops.%s: no kernel for type %s (types that have it: %v)", op, t, tensor.TypesWith(k)))
}

// Gemm sets y[j·ldy+i] to the dot product of weight row i (k values of
// type t at w[i·ldw:]) with activation row j (k values of t.VecDotType()
// at x[j·ldx:]), for i < m and j < nTok; other elements of y are left
// alone. For the float types the activations are float32 and both rows
// contiguous (ldw = t.RowSize(k), ldx = 4k). Every output is bit-identical
// to the single dot product of its row and token, whatever m and nTok
// (batch invariance): kernels.GemmF32/F16/BF16 or qkernels.Gemm.
func Gemm(t tensor.Type, m, nTok, k int, w []byte, ldw int, x []byte, ldx int, y []float32, ldy int) {
	if !t.Has(tensor.KGemm) {
		missing("Gemm", t, tensor.KGemm)
	}
	switch t.Family() {
	case tensor.FloatKernels:
		kernels.Gemm(t, m, nTok, k, w, ldw, x, ldx, y, ldy)
	case tensor.BlockKernels:
		qkernels.Gemm(t, m, nTok, k, w, ldw, x, ldx, y, ldy)
	case tensor.CodebookKernels:
		cbkernels.Gemm(t, m, nTok, k, w, ldw, x, ldx, y, ldy)
	}
}

// AccumRows adds to each of G = len(y)/dim vectors a weighted sum of the
// same n rows (dim values of type t each, stride bytes apart in rows):
//
//	y[g·dim+d] += Σ_{t<n} a[g·lda+t]·row_t[d]
//
// attention's V accumulation, the G query heads sharing one KV head
// (kernels.AccumRows*Multi or qkernels.AccumRowsMulti, t ascending).
func AccumRows(t tensor.Type, y []float32, dim int, a []float32, lda, n int, rows []byte, stride int) {
	if !t.Has(tensor.KAccum) {
		missing("AccumRows", t, tensor.KAccum)
	}
	switch t.Family() {
	case tensor.FloatKernels:
		kernels.AccumRows(t, y, dim, a, lda, n, rows, stride)
	case tensor.BlockKernels:
		qkernels.AccumRowsMulti(t, y, dim, a, lda, n, rows, stride)
	case tensor.CodebookKernels:
		cbkernels.AccumRowsMulti(t, y, dim, a, lda, n, rows, stride)
	}
}

// Encode converts src to type t into dst (exactly t.RowSize(len(src))
// bytes; len(src) a whole number of t's blocks, and it may span several
// rows), bit-identical to tensor.QuantizeRow (for inputs without NaNs): the
// type's SIMD encoder where the table gives it one, QuantizeRow otherwise.
func Encode(t tensor.Type, dst []byte, src []float32) {
	if !t.Has(tensor.KEncode) {
		tensor.QuantizeRow(t, src, dst)
		return
	}
	switch t.Family() {
	case tensor.FloatKernels:
		kernels.Encode(t, dst, src)
	case tensor.BlockKernels:
		qkernels.Quantize(t, dst, src)
	case tensor.CodebookKernels:
		cbkernels.Encode(t, dst, src)
	}
}

// Decode converts src (exactly t.RowSize(len(dst)) bytes of type t) to
// float32 into dst, bit-identical to tensor.DequantizeRow (NaN payloads of
// signalling-NaN f16 inputs aside): the type's SIMD decoder where the table
// gives it one, DequantizeRow otherwise.
func Decode(t tensor.Type, dst []float32, src []byte) {
	if !t.Has(tensor.KDecode) {
		tensor.DequantizeRow(t, src, dst)
		return
	}
	switch t.Family() {
	case tensor.FloatKernels:
		kernels.Decode(t, dst, src)
	case tensor.BlockKernels:
		qkernels.Dequantize(t, dst, src)
	case tensor.CodebookKernels:
		cbkernels.Decode(t, dst, src)
	}
}

// Activations returns the activations x (rows of float32, each a whole
// number of vt's blocks) in type vt, a weight type's vec-dot type, ready
// for Gemm: x's own bytes when vt is F32 (no copy; buf is not used), and
// otherwise x encoded into the first vt.RowSize(len(x)) bytes of buf (the
// activation quantizers, bit-identical to tensor.QuantizeRow for inputs
// without NaNs).
func Activations(vt tensor.Type, buf []byte, x []float32) []byte {
	if vt == tensor.F32 {
		return tensor.F32Bytes(x)
	}
	n := vt.RowSize(len(x))
	if n > len(buf) {
		panic(fmt.Sprintf("ops.Activations: %d values of %s take %d bytes, buf has %d", len(x), vt, n, len(buf)))
	}
	Encode(vt, buf[:n], x)
	return buf[:n]
}

// CanPack reports whether matrices of type t with rows of k values have a
// packed layout that this machine's kernels read in place, and faster:
// kernels.CanPack on the AVX-512 path (PackFast), or qkernels.CanPack where
// qkernels.PackFastFor(t) (the AVX-512 path; the row-lane types on AVX2).
// Packing is a speed choice only: GemmPacked equals Gemm bit for bit on
// every path.
func CanPack(t tensor.Type, k int) bool {
	switch t.Family() {
	case tensor.FloatKernels:
		return t.Has(tensor.KGemm) && kernels.PackFast() && kernels.CanPack(t, k)
	case tensor.BlockKernels:
		return qkernels.PackFastFor(t) && qkernels.CanPack(t, k)
	}
	return false
}

// PackedSize is the size of an m×k matrix of type t packed (CanPack).
func PackedSize(t tensor.Type, m, k int) int {
	if t.Family() == tensor.FloatKernels {
		return kernels.PackedSize(t, m, k)
	}
	return qkernels.PackedSize(t, m, k)
}

// Pack writes the m×k matrix w of type t (rows ldw bytes apart; float
// types: contiguous) packed into dst (PackedSize bytes).
func Pack(t tensor.Type, dst, w []byte, ldw, m, k int) {
	if t.Family() == tensor.FloatKernels {
		if ldw != t.RowSize(k) {
			panic(fmt.Sprintf("ops.Pack: %s rows must be contiguous", t))
		}
		kernels.Pack(t, dst, w, m, k)
		return
	}
	qkernels.Pack(t, dst, w, ldw, m, k)
}

// LanesInPlace reports whether GemmPacked on a packed matrix of type t
// for nTok tokens runs kernels that read the packed rows in place: the
// row-lane kernels with the activations prepared once per call
// (qkernels.LanesInPlace), or the float kernels' small batches
// (kernels.PackedInPlace). Such calls stream the weights (and the lane
// kernels pay a fixed preparation each), so they want long runs of rows.
func LanesInPlace(t tensor.Type, nTok int) bool {
	switch t.Family() {
	case tensor.BlockKernels:
		return qkernels.LanesInPlace(t, nTok)
	case tensor.FloatKernels:
		return kernels.PackedInPlace(nTok)
	}
	return false
}

// GemmPacked is Gemm for rows [r0, r0+m) (r0 a multiple of 16) of a matrix
// packed by Pack, bit-identical to Gemm on the row-major matrix
// (kernels.GemmPacked, qkernels.GemmPacked; float activations contiguous,
// ldx = 4k).
func GemmPacked(t tensor.Type, r0, m, nTok, k int, p []byte, x []byte, ldx int, y []float32, ldy int) {
	if !t.Has(tensor.KGemm) {
		missing("GemmPacked", t, tensor.KGemm)
	}
	switch t.Family() {
	case tensor.FloatKernels:
		if ldx != 4*k {
			panic(fmt.Sprintf("ops.GemmPacked: %s activations must be contiguous", t))
		}
		kernels.GemmPacked(t, r0, m, nTok, k, p, x, y, ldy)
	case tensor.BlockKernels:
		qkernels.GemmPacked(t, r0, m, nTok, k, p, x, ldx, y, ldy)
	}
}
