package model

import (
	"unsafe"

	"github.com/kvserve/kvserve/internal/tensor"
)

// f32s views little-endian float32 bytes as a slice.
func f32s(b []byte) []float32 {
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/4)
}

// f32bytes views a float32 slice as bytes.
func f32bytes(v []float32) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), 4*len(v))
}

// mulRows computes rows [r0, r1) of job j for all nTok tokens: each output
// is one dot product of a weight row with a token's activations (converted
// to the weight type's vec-dot type), so its value does not depend on how
// many tokens share the batch.
func mulRows(j *mmJob, r0, r1, nTok int) {
	w := j.w
	if j.xq == nil { // f32 activations
		xb := f32bytes(j.x[:nTok*w.In])
		rs := 4 * w.In
		for r := r0; r < r1; r++ {
			row := w.Row(r)
			for t := 0; t < nTok; t++ {
				j.y[t*j.ldy+r] = tensor.VecDot(w.Type, w.In, row, xb[t*rs:(t+1)*rs])
			}
		}
		return
	}
	rs := w.Type.VecDotType().RowSize(w.In)
	for r := r0; r < r1; r++ {
		row := w.Row(r)
		for t := 0; t < nTok; t++ {
			j.y[t*j.ldy+r] = tensor.VecDot(w.Type, w.In, row, j.xq[t*rs:(t+1)*rs])
		}
	}
}

// dequantRow converts row r of w to f32.
func dequantRow(w *Linear, r int, dst []float32) {
	tensor.DequantizeRow(w.Type, w.Row(r), dst)
}

func vecDotType(t tensor.Type) tensor.Type { return t.VecDotType() }

func quantizeRow(t tensor.Type, src []float32, dst []byte) { tensor.QuantizeRow(t, src, dst) }
