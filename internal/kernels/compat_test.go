package kernels_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kvserve/kvserve/internal/cpu"
	"github.com/kvserve/kvserve/internal/kernels"
	"github.com/kvserve/kvserve/internal/tensor"
)

// The conversions agree bit for bit with internal/tensor's scalar ones on
// every path (NaN payloads aside for signalling-NaN inputs to F16ToF32).
func TestConversionsMatchTensor(t *testing.T) {
	all := make([]uint16, 1<<16)
	for i := range all {
		all[i] = uint16(i)
	}
	r := rand.New(rand.NewPCG(11, 11))
	fs := make([]float32, 1<<20)
	for i := range fs {
		fs[i] = math.Float32frombits(r.Uint32())
		if i%2 == 0 { // half the inputs in the f16 range
			fs[i] = float32(r.NormFloat64() * math.Ldexp(1, r.IntN(40)-24))
		}
	}
	for _, lv := range cpu.Float.Levels() {
		t.Run(lv.String(), func(t *testing.T) {
			defer cpu.SetLevel(lv)()
			dst := make([]float32, len(all))
			kernels.F16ToF32(dst, all)
			for i, h := range all {
				want := tensor.F16ToF32(h)
				if math.Float32bits(dst[i]) != math.Float32bits(want) && !(want != want && dst[i] != dst[i]) {
					t.Fatalf("F16ToF32(%#04x) = %#x, tensor %#x", h, math.Float32bits(dst[i]), math.Float32bits(want))
				}
			}
			hs := make([]uint16, len(fs))
			kernels.F32ToF16(hs, fs)
			for i, f := range fs {
				if want := tensor.F32ToF16(f); hs[i] != want {
					t.Fatalf("F32ToF16(%#08x) = %#04x, tensor %#04x", math.Float32bits(f), hs[i], want)
				}
			}
		})
	}
}
