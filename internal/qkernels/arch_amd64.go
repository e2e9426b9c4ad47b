//go:build amd64

package qkernels

import (
	"unsafe"

	"github.com/kvserve/kvserve/internal/cpu"
	"github.com/kvserve/kvserve/internal/tensor"
)

func dot(t tensor.Type, n int, w, x []byte) float32 {
	if tensor.IsSuperBlock(t) {
		var y [1]float32
		gemmSuper(t, 1, 1, n, w, len(w), x, len(x), y[:], 1)
		return y[0]
	}
	if level() == cpu.AVX512 {
		var y [1]float32
		if isLegacy(t) {
			dotRowsL512(t, n, w, len(w), 1, x, y[:])
		} else {
			dotRowsK512(t, n, w, len(w), 1, x, y[:])
		}
		return y[0]
	}
	if level() == cpu.AVX2 {
		var y [1]float32
		gemm2(t, 1, 1, n, w, len(w), x, len(x), y[:], 1)
		return y[0]
	}
	return dotGeneric(t, n, w, x)
}

func dotRows(t tensor.Type, n int, w []byte, stride, rows int, x []byte, y []float32) {
	if tensor.IsSuperBlock(t) {
		gemmSuper(t, rows, 1, n, w, stride, x, len(x), y, rows)
		return
	}
	if level() == cpu.AVX512 {
		if isLegacy(t) {
			dotRowsL512(t, n, w, stride, rows, x, y)
		} else {
			dotRowsK512(t, n, w, stride, rows, x, y)
		}
		return
	}
	if level() == cpu.AVX2 {
		gemm2(t, rows, 1, n, w, stride, x, len(x), y, rows)
		return
	}
	dotRowsGeneric(t, n, w, stride, rows, x, y)
}

func gemm(t tensor.Type, m, nTok, k int, w []byte, ldw int, x []byte, ldx int, y []float32, ldy int) {
	if tensor.IsSuperBlock(t) {
		gemmSuper(t, m, nTok, k, w, ldw, x, ldx, y, ldy)
		return
	}
	if level() == cpu.AVX512 {
		if isLegacy(t) {
			gemmL512(t, m, nTok, k, w, ldw, x, ldx, y, ldy)
		} else {
			gemmK512(t, m, nTok, k, w, ldw, x, ldx, y, ldy)
		}
		return
	}
	if level() == cpu.AVX2 {
		gemm2(t, m, nTok, k, w, ldw, x, ldx, y, ldy)
		return
	}
	gemmGeneric(t, m, nTok, k, w, ldw, x, ldx, y, ldy)
}

func axpyRows(t tensor.Type, n int, rows []byte, stride, count int, a []float32, y []float32) {
	if level() == cpu.AVX512 && isLegacy(t) && t != tensor.MXFP4 {
		ka := karg{w: ptr(rows), stride: stride, rows: count, nb: n / 32,
			x: unsafe.Pointer(&a[0]), y: unsafe.Pointer(&y[0])}
		switch t {
		case tensor.Q8_0:
			axpyRowsQ8_0AVX512(&ka)
		case tensor.Q4_0:
			axpyRowsQ4_0AVX512(&ka)
		case tensor.Q4_1:
			axpyRowsQ4_1AVX512(&ka)
		case tensor.Q5_0:
			axpyRowsQ5_0AVX512(&ka)
		case tensor.Q5_1:
			axpyRowsQ5_1AVX512(&ka)
		case tensor.IQ4_NL:
			axpyRowsIQ4_NLAVX512(&ka)
		}
		return
	}
	if level() == cpu.AVX2 && isLegacy(t) && t != tensor.MXFP4 {
		ka := karg{w: ptr(rows), stride: stride, rows: count, nb: n / 32,
			x: unsafe.Pointer(&a[0]), y: unsafe.Pointer(&y[0])}
		switch t {
		case tensor.Q8_0:
			axpyRowsQ8_0AVX2(&ka)
		case tensor.Q4_0:
			axpyRowsQ4_0AVX2(&ka)
		case tensor.Q4_1:
			axpyRowsQ4_1AVX2(&ka)
		case tensor.Q5_0:
			axpyRowsQ5_0AVX2(&ka)
		case tensor.Q5_1:
			axpyRowsQ5_1AVX2(&ka)
		case tensor.IQ4_NL:
			axpyRowsIQ4_NLAVX2(&ka)
		}
		return
	}
	axpyRowsGeneric(t, n, rows, stride, count, a, y)
}

func quantQ8(t tensor.Type, dst []byte, src []float32) {
	if len(src) == 0 {
		return
	}
	if level() == cpu.AVX512 {
		a := karg{x: unsafe.Pointer(&src[0]), y: ptr(dst), nb: len(src) / t.BlockSize()}
		switch t {
		case tensor.Q8_0:
			quantQ8_0AVX512(&a)
		case tensor.Q8_1:
			quantQ8_1AVX512(&a)
		case tensor.Q8_K:
			quantQ8_KAVX512(&a)
		}
		return
	}
	if level() == cpu.AVX2 {
		a := karg{x: unsafe.Pointer(&src[0]), y: ptr(dst), nb: len(src) / t.BlockSize()}
		switch t {
		case tensor.Q8_0:
			quantQ8_0AVX2(&a)
		case tensor.Q8_1:
			quantQ8_1AVX2(&a)
		case tensor.Q8_K:
			quantQ8_KAVX2(&a)
		}
		return
	}
	quantGeneric(t, dst, src)
}

func quantQ8_0(dst []byte, src []float32) { quantQ8(tensor.Q8_0, dst, src) }
func quantQ8_1(dst []byte, src []float32) { quantQ8(tensor.Q8_1, dst, src) }
func quantQ8_K(dst []byte, src []float32) { quantQ8(tensor.Q8_K, dst, src) }
