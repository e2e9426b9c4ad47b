package kernels

import (
	"testing"

	"github.com/kvserve/kvserve/internal/cpu"
)

// BenchmarkPeakFMA measures the machine's FMA throughput with 12
// independent register-only FMA chains (no memory traffic): the ceiling
// the matrix-product GFLOP/s figures are compared against.
func BenchmarkPeakFMA(b *testing.B) {
	const iters = 10000
	for _, lv := range cpu.Float.Levels() {
		if lv == cpu.Generic {
			continue
		}
		b.Run(lv.String(), func(b *testing.B) {
			f, lanes := fmaPeakAVX2, 8
			if lv == cpu.AVX512 {
				f, lanes = fmaPeakAVX512, 16
			}
			for b.Loop() {
				f(iters)
			}
			flops := float64(b.N) * iters * 12 * float64(lanes) * 2
			b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
