package cbkernels

import (
	"math/rand/v2"
	"testing"

	"github.com/kvserve/kvserve/internal/tensor"
)

func BenchmarkTmpKernel(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	x := make([]float32, 256*128)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	for _, mode := range []int{1, 8} {
		for _, typ := range []tensor.Type{tensor.CB3, tensor.CB2} {
			b.Run(typ.String()+"/"+string(rune('0'+mode)), func(b *testing.B) {
				k, tab := encKernelFor(typ)
				var outs [encChunk]encOut
				out := &outs[0]
				dd := make([]byte, 64)
				bs := typ.BlockSize()
				c0 := processCPU()
				dst := make([]byte, typ.RowSize(len(x)))
				for b.Loop() {
					if mode == 8 {
						nb := len(x) / bs
						k(&x[0], tab, out, 8, &dst[0], nb)
						for out.rstatus != 0 {
							k(&x[0], tab, out, 9, &dst[0], nb)
						}
						continue
					}
					for i := 0; i+bs <= len(x); i += bs {
						k(&x[i], tab, out, mode, &dd[0], 1)
					}
				}
				b.ReportMetric(float64(processCPU()-c0)/float64(b.N)/float64(len(x)), "cpu-ns/value")
			})
		}
	}
}
