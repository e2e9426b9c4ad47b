package model

import (
	"unsafe"

	"github.com/kvserve/kvserve/internal/kernels"
	"github.com/kvserve/kvserve/internal/qkernels"
	"github.com/kvserve/kvserve/internal/tensor"
)

// f32s views little-endian float32 bytes as a slice.
func f32s(b []byte) []float32 {
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/4)
}

// mulRows computes rows [r0, r1) of job j for all nTok tokens: each output
// is one dot product of a weight row with a token's activations (converted
// to the weight type's vec-dot type), computed in an order that does not
// depend on how many tokens share the batch (the kernels' batch
// invariance), so a request's output never depends on its neighbours.
func mulRows(j *mmJob, r0, r1, nTok int) {
	w := j.w
	m, k := r1-r0, w.In
	switch w.Type {
	case tensor.F32:
		kernels.GemmF32(m, nTok, k, f32s(w.Data[r0*w.RowBytes:r1*w.RowBytes]), j.x[:nTok*k], j.y[r0:], j.ldy)
		return
	case tensor.F16:
		kernels.GemmF16(m, nTok, k, u16s(w.Data[r0*w.RowBytes:r1*w.RowBytes]), j.x[:nTok*k], j.y[r0:], j.ldy)
		return
	case tensor.BF16:
		kernels.GemmBF16(m, nTok, k, u16s(w.Data[r0*w.RowBytes:r1*w.RowBytes]), j.x[:nTok*k], j.y[r0:], j.ldy)
		return
	}
	rs := w.Type.VecDotType().RowSize(w.In)
	qkernels.Gemm(w.Type, m, nTok, k, w.Data[r0*w.RowBytes:r1*w.RowBytes], w.RowBytes, j.xq[:nTok*rs], rs, j.y[r0:], j.ldy)
}

// u16s views little-endian 16-bit values as a slice.
func u16s(b []byte) []uint16 {
	return unsafe.Slice((*uint16)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/2)
}

// dequantRow converts row r of w to f32.
func dequantRow(w *Linear, r int, dst []float32) {
	tensor.DequantizeRow(w.Type, w.Row(r), dst)
}

func vecDotType(t tensor.Type) tensor.Type { return t.VecDotType() }

func quantizeRow(t tensor.Type, src []float32, dst []byte) { qkernels.Quantize(t, dst, src) }
