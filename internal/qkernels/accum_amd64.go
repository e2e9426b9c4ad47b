//go:build amd64

package qkernels

import (
	"fmt"
	"unsafe"

	"github.com/kvserve/kvserve/internal/cpu"
	"github.com/kvserve/kvserve/internal/tensor"
)

// accumMultiCaps512[G] is the most 32-column blocks one AVX-512 pass of
// the AccumRowsMulti kernels holds in registers for G heads (2·G·B
// accumulators); accumMultiCaps256[G] the most whole blocks an AVX2 pass
// holds (0: half blocks, 16 columns). They must equal accumCapsL512 and
// accumCapsL2 in gen/main.go (a kernel asked for a variant it lacks sets
// karg.rows to -1, and accumMulti panics).
var (
	accumMultiCaps512 = [9]int{0, 4, 4, 3, 2, 2, 1, 1, 1}
	accumMultiCaps256 = [5]int{0, 2, 1, 0, 0}
)

// accumMultiHeads512 and accumMultiHeads256 are the most heads sharing one
// pass over the rows; more go in equal groups.
const (
	accumMultiHeads512 = 8
	accumMultiHeads256 = 4
)

// accumMulti runs AccumRowsMulti's kernels: heads in equal groups, each
// group's columns in passes of whole blocks (AVX2 with 3 or 4 heads: half
// blocks), one kernel call (one pass over the n rows) per group and pass.
func accumMulti(t tensor.Type, y []float32, dim, G int, a []float32, lda, n int, rows []byte, stride int) {
	lv := level()
	if lv == cpu.Generic {
		accumMultiGeneric(t, y, dim, G, a, lda, n, rows, stride)
		return
	}
	hmax := accumMultiHeads512
	if lv == cpu.AVX2 {
		hmax = accumMultiHeads256
	}
	groups := (G + hmax - 1) / hmax
	hg := (G + groups - 1) / groups
	nb := dim / 32
	bs := t.TypeSize()
	ka := karg{stride: stride, rows: n, ts: 4 * lda, ustride: 4 * dim}
	for g0 := 0; g0 < G; g0 += hg {
		gc := min(hg, G-g0)
		ka.x = unsafe.Pointer(&a[g0*lda])
		ka.n2 = gc
		if lv == cpu.AVX512 {
			capB := accumMultiCaps512[gc]
			passes := (nb + capB - 1) / capB
			bp := (nb + passes - 1) / passes
			for b0 := 0; b0 < nb; b0 += bp {
				ka.nb = min(bp, nb-b0)
				ka.w = unsafe.Pointer(&rows[b0*bs])
				ka.y = unsafe.Pointer(&y[g0*dim+32*b0])
				accumKernel512(t, &ka)
			}
			continue
		}
		if capB := accumMultiCaps256[gc]; capB > 0 {
			passes := (nb + capB - 1) / capB
			bp := (nb + passes - 1) / passes
			for b0 := 0; b0 < nb; b0 += bp {
				ka.nb = min(bp, nb-b0)
				ka.w = unsafe.Pointer(&rows[b0*bs])
				ka.y = unsafe.Pointer(&y[g0*dim+32*b0])
				accumKernel256(t, &ka)
			}
			continue
		}
		for b0 := 0; b0 < nb; b0++ {
			ka.w = unsafe.Pointer(&rows[b0*bs])
			for h := 0; h < 2; h++ {
				ka.nb = 8 + h // half h of the block
				ka.y = unsafe.Pointer(&y[g0*dim+32*b0+16*h])
				accumKernel256(t, &ka)
			}
		}
	}
}

func accumKernel512(t tensor.Type, ka *karg) {
	switch t {
	case tensor.Q8_0:
		accumMultiQ8_0AVX512(ka)
	case tensor.Q4_0:
		accumMultiQ4_0AVX512(ka)
	case tensor.Q4_1:
		accumMultiQ4_1AVX512(ka)
	case tensor.Q5_0:
		accumMultiQ5_0AVX512(ka)
	case tensor.Q5_1:
		accumMultiQ5_1AVX512(ka)
	case tensor.IQ4_NL:
		accumMultiIQ4_NLAVX512(ka)
	}
	if ka.rows < 0 {
		panic(fmt.Sprintf("qkernels: no AVX-512 AccumRowsMulti kernel for %s, %d heads × %d blocks", t, ka.n2, ka.nb))
	}
}

func accumKernel256(t tensor.Type, ka *karg) {
	switch t {
	case tensor.Q8_0:
		accumMultiQ8_0AVX2(ka)
	case tensor.Q4_0:
		accumMultiQ4_0AVX2(ka)
	case tensor.Q4_1:
		accumMultiQ4_1AVX2(ka)
	case tensor.Q5_0:
		accumMultiQ5_0AVX2(ka)
	case tensor.Q5_1:
		accumMultiQ5_1AVX2(ka)
	case tensor.IQ4_NL:
		accumMultiIQ4_NLAVX2(ka)
	}
	if ka.rows < 0 {
		panic(fmt.Sprintf("qkernels: no AVX2 AccumRowsMulti kernel for %s, %d heads, code %d", t, ka.n2, ka.nb))
	}
}

// dequant runs Dequantize's kernel for len(dst)/32 ≥ 1 blocks.
func dequant(t tensor.Type, dst []float32, src []byte) {
	if level() == cpu.Generic {
		tensor.DequantizeRow(t, src, dst)
		return
	}
	ka := karg{w: ptr(src), y: unsafe.Pointer(&dst[0]), nb: len(dst) / 32}
	if level() == cpu.AVX512 {
		switch t {
		case tensor.Q8_0:
			dequantQ8_0AVX512(&ka)
		case tensor.Q4_0:
			dequantQ4_0AVX512(&ka)
		case tensor.Q4_1:
			dequantQ4_1AVX512(&ka)
		case tensor.Q5_0:
			dequantQ5_0AVX512(&ka)
		case tensor.Q5_1:
			dequantQ5_1AVX512(&ka)
		case tensor.IQ4_NL:
			dequantIQ4_NLAVX512(&ka)
		}
		return
	}
	switch t {
	case tensor.Q8_0:
		dequantQ8_0AVX2(&ka)
	case tensor.Q4_0:
		dequantQ4_0AVX2(&ka)
	case tensor.Q4_1:
		dequantQ4_1AVX2(&ka)
	case tensor.Q5_0:
		dequantQ5_0AVX2(&ka)
	case tensor.Q5_1:
		dequantQ5_1AVX2(&ka)
	case tensor.IQ4_NL:
		dequantIQ4_NLAVX2(&ka)
	}
}
