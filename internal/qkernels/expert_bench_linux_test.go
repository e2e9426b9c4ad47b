package qkernels

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/kvserve/kvserve/internal/tensor"
)

// BenchmarkMatVecExpert is the decode product on mixture-of-experts
// shapes (row-major, as experts stay in the file's mapping): Qwen3-30B-A3B's
// gate/up (768×2048) and down (2048×768), gpt-oss-20b's (2880×2880), and a
// dense 8192×2048 for comparison; 64 different matrices in turn (beyond
// the caches, as a decoded token's experts are). The metric is GB of
// weights per CPU-second of the benchmark's thread.
//
//	go test -run '^$' -bench MatVecExpert ./internal/qkernels
func BenchmarkMatVecExpert(b *testing.B) {
	for _, c := range []struct {
		ty   tensor.Type
		m, k int
	}{
		{tensor.Q4_K, 768, 2048}, {tensor.Q6_K, 2048, 768}, {tensor.Q4_K, 2048, 768}, {tensor.Q8_0, 768, 2048}, {tensor.Q8_0, 2048, 768},
		{tensor.MXFP4, 2880, 2880}, {tensor.Q4_K, 8192, 2048}, {tensor.Q6_K, 8192, 2048},
	} {
		b.Run(fmt.Sprintf("%s/%dx%d", c.ty, c.m, c.k), func(b *testing.B) {
			const NM = 64
			r := rand.New(rand.NewPCG(1, 2))
			rs := c.ty.RowSize(c.k)
			one := randMatrix(r, c.ty, 64, c.k, rs, true, 1)
			ws := make([][]byte, NM)
			for i := range ws {
				ws[i] = make([]byte, c.m*rs)
				for j := 0; j < c.m; j += 64 {
					copy(ws[i][j*rs:], one)
				}
			}
			vt := c.ty.VecDotType()
			x := randMatrix(r, vt, 1, c.k, vt.RowSize(c.k), false, 1)
			y := make([]float32, c.m)
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			t0 := threadCPU()
			n := 0
			for b.Loop() {
				Gemm(c.ty, c.m, 1, c.k, ws[n%NM], rs, x, vt.RowSize(c.k), y, c.m)
				n++
			}
			b.ReportMetric(float64(n*c.m*rs)/float64(threadCPU()-t0), "GB/cpu-s")
		})
	}
}
