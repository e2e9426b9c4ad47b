//go:build !amd64

package kernels

import "unsafe"

// Only the generic path exists off amd64.

func dotF32(a, b []float32) float32           { return dotF32Generic(a, b) }
func dotF16(w []uint16, x []float32) float32  { return dotF16Generic(w, x) }
func dotBF16(w []uint16, x []float32) float32 { return dotBF16Generic(w, x) }

func dotRows(t wtype, w unsafe.Pointer, k int, x, y []float32) { dotRowsGeneric(t, w, k, x, y) }

func gemm(t wtype, m, n, k int, w unsafe.Pointer, x, y []float32, ldy int) {
	gemmGeneric(t, m, n, k, w, x, y, ldy)
}

func f16ToF32(dst []float32, src []uint16)       { f16ToF32Generic(dst, src) }
func f32ToF16(dst []uint16, src []float32)       { f32ToF16Generic(dst, src) }
func axpy(a float32, x, y []float32)             { axpyGeneric(a, x, y) }
func axpyF16(a float32, x []uint16, y []float32) { axpyF16Generic(a, x, y) }
func scale(a float32, x []float32)               { scaleGeneric(a, x) }
func add(dst, a, b []float32)                    { addGeneric(dst, a, b) }
func mul(dst, a, b []float32)                    { mulGeneric(dst, a, b) }
func sumSquares(x []float32) float32             { return sumSquaresGeneric(x) }
func maxF32(x []float32) float32                 { return maxGeneric(x) }
func expSub(x []float32, m float32) float32      { return expSubGeneric(x, m) }
func siluMul(dst, gate, up []float32)            { siluMulGeneric(dst, gate, up) }
func fwht(x []float32, n int, s float32)         { fwhtGeneric(x, n, s) }

func accumRows(t wtype, y []float32, dim int, a []float32, lda, n int, rows unsafe.Pointer, stride int) {
	if len(y) == 0 || n == 0 {
		return
	}
	accumRowsGeneric(t, y, dim, a, lda, n, rows, stride)
}

func packFast() bool { return false }

func dotRowsPacked(t wtype, p []byte, k int, x, y []float32) { panic("unreachable") }

func gemmPackedSmall(t wtype, p []byte, k, m, nTok int, x, y []float32, ldy int) {
	panic("unreachable")
}
