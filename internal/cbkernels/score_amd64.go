//go:build amd64

package cbkernels

import (
	"github.com/kvserve/kvserve/internal/cpu"
	"github.com/kvserve/kvserve/internal/tensor"
)

//go:noescape
func scoreCB4AVX2(y *float32, ldy int, q *float32, ldq int, nq int, rows *byte, stride int, m int, nblk int, levels *float32, lanes16 int, acc *float32)

//go:noescape
func scoreCB3AVX2(y *float32, ldy int, q *float32, ldq int, nq int, rows *byte, stride int, m int, nblk int, levels *float32, lanes16 int, acc *float32)

//go:noescape
func scoreCB2AVX2(y *float32, ldy int, q *float32, ldq int, nq int, rows *byte, stride int, m int, nblk int, levels *float32, lanes16 int, acc *float32)

// scoreSIMD sets y[j·ldy+i] to the dot product of row i (k values of type
// t at w[i·ldw:]) with query j (x[j·k:]) for i < m, j < nq ≤ smallBatch,
// with the fused kernels (score_amd64.s), in kernels' canonical order for
// the float family's level (8 lanes at AVX2, 16 at AVX-512): bit-identical
// to decoding the rows and calling kernels.DotF32Rows. False when the CPU
// path is generic.
func scoreSIMD(t tensor.Type, m, nq, k int, w []byte, ldw int, x []float32, y []float32, ldy int) bool {
	lv := cpu.Float.Level()
	if lv < cpu.AVX2 || nq > smallBatch {
		return false
	}
	lanes16 := 0
	if lv >= cpu.AVX512 {
		lanes16 = 1
	}
	// Bounds, checked once here for the assembly.
	_ = w[(m-1)*ldw+t.RowSize(k)-1]
	_ = x[nq*k-1]
	_ = y[(nq-1)*ldy+m-1]
	var acc [smallBatch * 16]float32
	nblk := k / t.BlockSize()
	switch t {
	case tensor.CB4:
		scoreCB4AVX2(&y[0], ldy, &x[0], k, nq, &w[0], ldw, m, nblk, &tensor.CodebookLevels(t)[0], lanes16, &acc[0])
	case tensor.CB3:
		scoreCB3AVX2(&y[0], ldy, &x[0], k, nq, &w[0], ldw, m, nblk, &tensor.CodebookLevels(t)[0], lanes16, &acc[0])
	case tensor.CB2:
		scoreCB2AVX2(&y[0], ldy, &x[0], k, nq, &w[0], ldw, m, nblk, &levels4x2[0], lanes16, &acc[0])
	default:
		return false
	}
	return true
}
