//go:build !amd64

package cbkernels

import "github.com/kvserve/kvserve/internal/tensor"

func scoreSIMD(t tensor.Type, m, nq, k int, w []byte, ldw int, x []float32, y []float32, ldy int) bool {
	return false
}
