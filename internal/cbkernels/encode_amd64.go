//go:build amd64

package cbkernels

import (
	"github.com/kvserve/kvserve/internal/cpu"
	"github.com/kvserve/kvserve/internal/tensor"
)

//go:noescape
func cbEncCB4AVX512(x *float32, tab *encTables, out *encOut, search int)

//go:noescape
func cbEncCB3AVX512(x *float32, tab *encTables, out *encOut, search int)

//go:noescape
func cbEncCB2AVX512(x *float32, tab *encTables, out *encOut, search int)

//go:noescape
func cbEncCB4AVX2(x *float32, tab *encTables, out *encOut, search int)

//go:noescape
func cbEncCB3AVX2(x *float32, tab *encTables, out *encOut, search int)

//go:noescape
func cbEncCB2AVX2(x *float32, tab *encTables, out *encOut, search int)

var encTabs = [3]*encTables{newEncTables(tensor.CB4), newEncTables(tensor.CB3), newEncTables(tensor.CB2)}

// encodeSIMD encodes src with the SIMD encoder (AVX-512 or AVX2 kernels
// by the float family's level); false when the CPU path is generic or the
// scale mode is not the default search.
func encodeSIMD(t tensor.Type, dst []byte, src []float32) bool {
	lv := cpu.Float.Level()
	if lv < cpu.AVX2 || tensor.CodebookScaleModeNow() != tensor.CodebookScaleSearch {
		return false
	}
	var k encKernel
	var tab *encTables
	switch t {
	case tensor.CB4:
		k, tab = cbEncCB4AVX2, encTabs[0]
		if lv >= cpu.AVX512 {
			k = cbEncCB4AVX512
		}
	case tensor.CB3:
		k, tab = cbEncCB3AVX2, encTabs[1]
		if lv >= cpu.AVX512 {
			k = cbEncCB3AVX512
		}
	case tensor.CB2:
		k, tab = cbEncCB2AVX2, encTabs[2]
		if lv >= cpu.AVX512 {
			k = cbEncCB2AVX512
		}
	default:
		return false
	}
	encodeRowFast(t, k, tab, dst, src)
	return true
}
