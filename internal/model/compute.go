package model

import (
	"fmt"
	"unsafe"

	"github.com/kvserve/kvserve/internal/tensor"
)

// f32s views little-endian float32 bytes as a slice.
func f32s(b []byte) []float32 {
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/4)
}

// u16s views little-endian 16-bit values as a slice.
func u16s(b []byte) []uint16 {
	return unsafe.Slice((*uint16)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/2)
}

// TEMPORARY until the tensor and kernels packages land.
func mulRows(j *mmJob, r0, r1, nTok int) {
	w := j.w
	var row [8192]float32
	for r := r0; r < r1; r++ {
		dequantRow(w, r, row[:w.In])
		for t := 0; t < nTok; t++ {
			x := j.x[t*w.In : (t+1)*w.In]
			var s float32
			for i, v := range row[:w.In] {
				s += v * x[i]
			}
			j.y[t*j.ldy+r] = s
		}
	}
}

// dequantRow converts row r of w to f32.
func dequantRow(w *Linear, r int, dst []float32) {
	b := w.Row(r)
	switch w.Type {
	case tensor.F32:
		copy(dst, f32s(b))
	case tensor.F16:
		for i, h := range u16s(b) {
			dst[i] = tensor.F16ToF32(h)
		}
	default:
		panic(fmt.Sprintf("dequant %s not yet", w.Type))
	}
}

func vecDotType(t tensor.Type) tensor.Type { return tensor.F32 }

func quantizeRow(t tensor.Type, src []float32, dst []byte) { panic("not yet") }
