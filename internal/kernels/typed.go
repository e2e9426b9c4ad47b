package kernels

import (
	"fmt"
	"unsafe"

	"github.com/kvserve/kvserve/internal/tensor"
)

// The entry points keyed by tensor type, for internal/ops: rows of type t
// (F32, F16 or BF16) given as bytes, strides in bytes. Each runs exactly
// the kernel of the typed function it names (same checks, same order), so
// its results are those functions' bit for bit.

// wtypeOf maps a float tensor type to the kernels' weight type.
func wtypeOf(op string, t tensor.Type) wtype {
	switch t {
	case tensor.F32:
		return wF32
	case tensor.F16:
		return wF16
	case tensor.BF16:
		return wBF16
	}
	notFloat(op, t)
	return 0
}

func notFloat(op string, t tensor.Type) {
	panic(fmt.Sprintf("kernels.%s: type %s is not f32, f16 or bf16", op, t))
}

// count is n bytes as a number of elements of type t (constant divisors:
// this runs per cache page).
func (t wtype) count(n int) int {
	if t == wF32 {
		return n / 4
	}
	return n / 2
}

func bytesPtr(b []byte) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(b)) }

func f32View(b []byte) []float32 { return unsafe.Slice((*float32)(bytesPtr(b)), len(b)/4) }

func u16View(b []byte) []uint16 { return unsafe.Slice((*uint16)(bytesPtr(b)), len(b)/2) }

// Gemm is GemmF32, GemmF16 or GemmBF16 for weights of type t: w holds m
// contiguous rows of k values of type t (ldw = t.RowSize(k) bytes) and x
// nTok contiguous rows of k float32 values as bytes (ldx = 4k).
func Gemm(t tensor.Type, m, nTok, k int, w []byte, ldw int, x []byte, ldx int, y []float32, ldy int) {
	wt := wtypeOf("Gemm", t)
	es := wt.size()
	if ldw != k*es || ldx != 4*k {
		panic(fmt.Sprintf("kernels.Gemm: %s rows of %d must be contiguous (ldw=%d, ldx=%d)", t, k, ldw, ldx))
	}
	xf := f32View(x)
	checkGemm("Gemm", m, nTok, k, wt.count(len(w)), len(xf), len(y), ldy)
	gemm(wt, m, nTok, k, bytesPtr(w), xf, y, ldy)
}

// AccumRows is AccumRowsF32Multi, AccumRowsF16Multi or AccumRowsBF16Multi
// for rows of type t, with stride in bytes (a multiple of the element
// size).
func AccumRows(t tensor.Type, y []float32, dim int, a []float32, lda, n int, rows []byte, stride int) {
	wt := wtypeOf("AccumRows", t)
	st := wt.count(stride)
	if st*wt.size() != stride {
		panic(fmt.Sprintf("kernels.AccumRows: stride %d bytes is not a whole number of %s elements", stride, t))
	}
	G := checkMulti("AccumRows", len(y), dim, len(a), lda, n, wt.count(len(rows)), st)
	accumRows(wt, y[:G*dim], dim, a, lda, n, bytesPtr(rows), st)
}

// Encode converts src to type t into dst (t.RowSize(len(src)) bytes):
// f32 copied, f16 by F32ToF16, bf16 by tensor.F32ToBF16 — bit-identical to
// tensor.QuantizeRow.
func Encode(t tensor.Type, dst []byte, src []float32) {
	wt := wtypeOf("Encode", t)
	mustSameLen("Encode", len(dst), len(src)*wt.size())
	switch wt {
	case wF32:
		copy(f32View(dst), src)
	case wF16:
		f32ToF16(u16View(dst), src)
	default:
		d := u16View(dst)
		for i, v := range src {
			d[i] = tensor.F32ToBF16(v)
		}
	}
}

// Decode converts src (t.RowSize(len(dst)) bytes of type t) to float32:
// f32 copied, f16 by F16ToF32, bf16 by tensor.BF16ToF32.
func Decode(t tensor.Type, dst []float32, src []byte) {
	wt := wtypeOf("Decode", t)
	mustSameLen("Decode", len(src), len(dst)*wt.size())
	switch wt {
	case wF32:
		copy(dst, f32View(src))
	case wF16:
		f16ToF32(dst, u16View(src))
	default:
		for i, h := range u16View(src) {
			dst[i] = tensor.BF16ToF32(h)
		}
	}
}
