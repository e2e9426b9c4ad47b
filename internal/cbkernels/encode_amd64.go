//go:build amd64

package cbkernels

import (
	"github.com/kvserve/kvserve/internal/cpu"
	"github.com/kvserve/kvserve/internal/tensor"
)

//go:noescape
func cbEncCB4AVX512(x *float32, tab *encTables, out *encOut, mode int, dst *byte, nb int)

//go:noescape
func cbEncCB3AVX512(x *float32, tab *encTables, out *encOut, mode int, dst *byte, nb int)

//go:noescape
func cbEncCB2AVX512(x *float32, tab *encTables, out *encOut, mode int, dst *byte, nb int)

//go:noescape
func cbEncCB4AVX2(x *float32, tab *encTables, out *encOut, mode int, dst *byte, nb int)

//go:noescape
func cbEncCB3AVX2(x *float32, tab *encTables, out *encOut, mode int, dst *byte, nb int)

//go:noescape
func cbEncCB2AVX2(x *float32, tab *encTables, out *encOut, mode int, dst *byte, nb int)

var encTabs = [3]*encTables{newEncTables(tensor.CB4), newEncTables(tensor.CB3), newEncTables(tensor.CB2)}

// encodeSIMD encodes src with the SIMD encoder (AVX-512 or AVX2 kernels
// by the float family's level); false when the CPU path is generic or the
// scale mode is not the default search.
func encodeSIMD(t tensor.Type, dst []byte, src []float32) bool {
	lv := cpu.Float.Level()
	if lv < cpu.AVX2 || tensor.CodebookScaleModeNow() != tensor.CodebookScaleSearch {
		return false
	}
	k, tab := encKernelFor(t)
	if k == nil {
		return false
	}
	encodeRowFast(t, k, tab, dst, src)
	return true
}

// encKernelFor returns type t's kernel at the float family's level (AVX2
// or AVX-512) and its tables; nil for other types.
func encKernelFor(t tensor.Type) (encKernel, *encTables) {
	avx512 := cpu.Float.Level() >= cpu.AVX512
	switch t {
	case tensor.CB4:
		if avx512 {
			return cbEncCB4AVX512, encTabs[0]
		}
		return cbEncCB4AVX2, encTabs[0]
	case tensor.CB3:
		if avx512 {
			return cbEncCB3AVX512, encTabs[1]
		}
		return cbEncCB3AVX2, encTabs[1]
	case tensor.CB2:
		if avx512 {
			return cbEncCB2AVX512, encTabs[2]
		}
		return cbEncCB2AVX2, encTabs[2]
	}
	return nil, nil
}
