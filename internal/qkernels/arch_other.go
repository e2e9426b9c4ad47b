//go:build !amd64

package qkernels

import "github.com/kvserve/kvserve/internal/tensor"

// Only the generic path exists off amd64.

func dot(t tensor.Type, n int, w, x []byte) float32 { return dotGeneric(t, n, w, x) }

func dotRows(t tensor.Type, n int, w []byte, stride, rows int, x []byte, y []float32) {
	dotRowsGeneric(t, n, w, stride, rows, x, y)
}

func gemm(t tensor.Type, m, nTok, k int, w []byte, ldw int, x []byte, ldx int, y []float32, ldy int) {
	gemmGeneric(t, m, nTok, k, w, ldw, x, ldx, y, ldy)
}

func axpyRows(t tensor.Type, n int, rows []byte, stride, count int, a []float32, y []float32) {
	axpyRowsGeneric(t, n, rows, stride, count, a, y)
}

func quantQ8_0(dst []byte, src []float32) { quantGeneric(tensor.Q8_0, dst, src) }
func quantQ8_1(dst []byte, src []float32) { quantGeneric(tensor.Q8_1, dst, src) }
func quantQ8_K(dst []byte, src []float32) { quantGeneric(tensor.Q8_K, dst, src) }

func quantKV(t tensor.Type, dst []byte, src []float32) { quantGeneric(t, dst, src) }

func gemmPackedFast(t tensor.Type, r0, m, nTok, k int, p []byte, x []byte, ldx int, y []float32, ldy int) bool {
	return false
}

// PackFast reports whether packed weights (Pack) are read in place here:
// never off amd64.
func PackFast() bool { return false }

// PackFastFor reports whether packed weights of type t are read in place
// here: never off amd64.
func PackFastFor(t tensor.Type) bool { return false }

// LanesInPlace reports whether GemmPacked runs row-lane kernels in place:
// never off amd64.
func LanesInPlace(t tensor.Type, nTok int) bool { return false }
