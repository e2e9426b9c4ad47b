//go:build amd64

package cbkernels

import (
	"github.com/kvserve/kvserve/internal/cpu"
	"github.com/kvserve/kvserve/internal/tensor"
)

//go:noescape
func decodeCB4AVX2(dst *float32, src *byte, n int, levels *float32)

//go:noescape
func decodeCB3AVX2(dst *float32, src *byte, n int, levels *float32)

//go:noescape
func decodeCB2AVX2(dst *float32, src *byte, n int, levels *float32)

var levels4x2 = func() (l [8]float32) {
	L := tensor.CodebookLevels(tensor.CB2)
	copy(l[:], L)
	copy(l[4:], L)
	return
}()

// decodeSIMD decodes whole blocks with the AVX2 kernels (the float family's
// AVX2 level: AVX2, FMA, F16C); false when the CPU path is generic.
func decodeSIMD(t tensor.Type, dst []float32, src []byte) bool {
	if cpu.Float.Level() < cpu.AVX2 {
		return false
	}
	n := len(dst) / t.BlockSize()
	if n == 0 {
		return true
	}
	_ = src[n*t.TypeSize()-1]
	switch t {
	case tensor.CB4:
		decodeCB4AVX2(&dst[0], &src[0], n, &tensor.CodebookLevels(t)[0])
	case tensor.CB3:
		decodeCB3AVX2(&dst[0], &src[0], n, &tensor.CodebookLevels(t)[0])
	case tensor.CB2:
		decodeCB2AVX2(&dst[0], &src[0], n, &levels4x2[0])
	default:
		return false
	}
	return true
}
