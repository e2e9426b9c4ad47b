package model

import (
	"math"
	"sync"

	"github.com/kvserve/kvserve/internal/tensor"
)

// geluTable holds GELU (tanh approximation) of every f16 value, rounded to
// f16, as ggml's CPU backend computes GELU and GeGLU: the input is rounded
// to f16 and the result looked up. Using the same table makes kvserve's
// Gemma activations equal to llama.cpp's, and a lookup is cheaper than tanh.
var geluTable = sync.OnceValue(func() []uint16 {
	t := make([]uint16, 1<<16)
	for i := range t {
		x := tensor.F16ToF32(uint16(i))
		t[i] = tensor.F32ToF16(geluF32(x))
	}
	return t
})

// geluF32 is GELU with the tanh approximation, in float32 as ggml writes it.
func geluF32(x float32) float32 {
	const a, s = 0.044715, 0.79788456080286535587989211986876
	return 0.5 * x * (1 + float32(math.Tanh(float64(s*x*(1+a*x*x)))))
}

// geluMul computes dst[i] = gelu(gate[i])·up[i] (dst may alias gate).
func geluMul(dst, gate, up []float32) {
	t := geluTable()
	for i, x := range gate {
		switch {
		case x <= -10:
			dst[i] = 0
		case x >= 10:
			dst[i] = x * up[i]
		default:
			dst[i] = tensor.F16ToF32(t[tensor.F32ToF16(x)]) * up[i]
		}
	}
}

// swigluOAI computes dst[i] = x·sigmoid(alpha·x)·(y+1) with x = min(gate,
// limit), y = clamp(up, -limit, limit), in float32 as ggml's swiglu_oai
// (alpha 1.702, limit 7: llama.cpp's constants for gpt-oss). dst may alias
// gate.
func swigluOAI(dst, gate, up []float32) {
	const alpha, limit = 1.702, 7.0
	for i, g := range gate {
		x := min(g, limit)
		y := min(max(up[i], -limit), limit)
		e := float32(math.Exp(float64(float32(alpha * -x))))
		glu := x / float32(1+e)
		dst[i] = glu * float32(y+1)
	}
}
