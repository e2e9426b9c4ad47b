package cbkernels

import (
	"math/rand/v2"
	"testing"

	"github.com/kvserve/kvserve/internal/cpu"
	"github.com/kvserve/kvserve/internal/tensor"
)

// BenchmarkEncode encodes a page-sized head block (256 rows of 128
// normal values) per type and CPU level; ns/value is the figure to
// compare with the requantize benchmark's q4_0 (cpu-ns/value: process
// CPU time, robust to a shared machine's descheduling).
func BenchmarkEncode(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	x := make([]float32, 256*128)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	for _, typ := range []tensor.Type{tensor.CB4, tensor.CB3, tensor.CB2} {
		dst := make([]byte, typ.RowSize(len(x)))
		for _, lv := range cpu.Levels() {
			b.Run(typ.String()+"/"+lv.String(), func(b *testing.B) {
				defer cpu.SetLevel(lv)()
				c0 := processCPU()
				for b.Loop() {
					Encode(typ, dst, x)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(x)), "ns/value")
				b.ReportMetric(float64(processCPU()-c0)/float64(b.N)/float64(len(x)), "cpu-ns/value")
			})
		}
	}
}
