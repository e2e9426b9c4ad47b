package qkernels

import (
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"github.com/kvserve/kvserve/internal/tensor"
)

// BenchmarkLanesHot measures the lane kernels' arithmetic throughput: a
// 256×2048 matrix (Q4_K: 295 KB) that stays in L2, so the figure is the
// kernel's compute rate, not the memory's. Metric: GB of weights per
// CPU-second of each thread; /par2 runs two threads on their own copies at
// once (do the two CPUs share a core's execution ports?).
//
//	go test -run '^$' -bench LanesHot ./internal/qkernels
func BenchmarkLanesHot(b *testing.B) {
	const M, K = 256, 2048
	for _, ty := range []tensor.Type{tensor.Q8_0, tensor.Q4_K, tensor.Q6_K} {
		r := rand.New(rand.NewPCG(1, 2))
		rs := ty.RowSize(K)
		vt := ty.VecDotType()
		x := randMatrix(r, vt, 4, K, vt.RowSize(K), false, 1)
		var ps [2][]byte
		for i := range ps {
			w := randMatrix(r, ty, M, K, rs, true, 1)
			ps[i] = make([]byte, PackedSize(ty, M, K))
			Pack(ty, ps[i], w, rs, M, K)
		}
		for _, nTok := range []int{1, 2, 4} {
			for _, par := range []int{1, 2} {
				b.Run(ty.String()+"/tok"+strconv.Itoa(nTok)+"/par"+strconv.Itoa(par), func(b *testing.B) {
					var wg sync.WaitGroup
					cpu := make([]int64, par)
					n := b.N
					b.ResetTimer()
					for t := 0; t < par; t++ {
						wg.Add(1)
						go func(t int) {
							defer wg.Done()
							runtime.LockOSThread()
							defer runtime.UnlockOSThread()
							y := make([]float32, 4*M)
							t0 := threadCPU()
							for i := 0; i < n; i++ {
								GemmPacked(ty, 0, M, nTok, K, ps[t], x, vt.RowSize(K), y, M)
							}
							cpu[t] = threadCPU() - t0
						}(t)
					}
					wg.Wait()
					var c int64
					for _, v := range cpu {
						c += v
					}
					b.ReportMetric(float64(par*n*M*rs)/float64(c), "GB/cpu-s")
				})
			}
		}
	}
}
