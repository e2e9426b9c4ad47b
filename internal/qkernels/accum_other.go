//go:build !amd64

package qkernels

import "github.com/kvserve/kvserve/internal/tensor"

func accumMulti(t tensor.Type, y []float32, dim, G int, a []float32, lda, n int, rows []byte, stride int) {
	accumMultiGeneric(t, y, dim, G, a, lda, n, rows, stride)
}

func dequant(t tensor.Type, dst []float32, src []byte) { tensor.DequantizeRow(t, src, dst) }
