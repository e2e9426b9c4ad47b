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
		x := randMatrix(r, vt, 64, K, vt.RowSize(K), false, 1)
		var ps [2][]byte
		for i := range ps {
			w := randMatrix(r, ty, M, K, rs, true, 1)
			ps[i] = make([]byte, PackedSize(ty, M, K))
			Pack(ty, ps[i], w, rs, M, K)
		}
		for _, nTok := range []int{1, 2, 4, 64} {
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
							y := make([]float32, 64*M)
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

// BenchmarkPrepLanes is the per-token preparation of the activations for
// the lane kernels (k = 2048).
func BenchmarkPrepLanes(b *testing.B) {
	const K = 2048
	for _, ty := range []tensor.Type{tensor.Q8_0, tensor.Q4_K, tensor.Q6_K} {
		r := rand.New(rand.NewPCG(1, 2))
		vt := ty.VecDotType()
		x := randMatrix(r, vt, 1, K, vt.RowSize(K), false, 1)
		nb := K / ty.BlockSize()
		dst := make([]byte, nb*laneAct(ty))
		b.Run(ty.String(), func(b *testing.B) {
			for b.Loop() {
				prepLanes(ty, x, nb, dst)
			}
		})
	}
}

// BenchmarkLanesPrefill is a prefill matrix product as the model runs it:
// 2048×2048, 128 tokens, one call per tile of rows (64 or 256), with the
// batch GEMM copying rows back (unpack) or the lane kernels in place
// (lanes). Metric: token·GB of weights per CPU-second.
//
//	go test -run '^$' -bench LanesPrefill ./internal/qkernels
func BenchmarkLanesPrefill(b *testing.B) {
	const M, K = 2048, 2048
	defer func(v map[tensor.Type]bool) { laneGemm = v }(laneGemm)
	defer func(v int) { laneSmallBatch = v }(laneSmallBatch)
	laneSmallBatch = 0
	for _, N := range []int{8, 16, 32, 64, 128} {
		for _, ty := range []tensor.Type{tensor.Q4_K, tensor.Q6_K, tensor.Q8_0} {
			r := rand.New(rand.NewPCG(1, 2))
			rs := ty.RowSize(K)
			vt := ty.VecDotType()
			x := randMatrix(r, vt, N, K, vt.RowSize(K), false, 1)
			w := randMatrix(r, ty, M, K, rs, true, 1)
			p := make([]byte, PackedSize(ty, M, K))
			Pack(ty, p, w, rs, M, K)
			y := make([]float32, N*M)
			for _, tile := range []int{64, 1024} {
				for _, mode := range []string{"unpack", "lanes"} {
					b.Run("tok"+strconv.Itoa(N)+"/"+ty.String()+"/tile"+strconv.Itoa(tile)+"/"+mode, func(b *testing.B) {
						laneGemm = map[tensor.Type]bool{ty: mode == "lanes"}
						runtime.LockOSThread()
						defer runtime.UnlockOSThread()
						t0 := threadCPU()
						n := 0
						for b.Loop() {
							for r0 := 0; r0 < M; r0 += tile {
								GemmPacked(ty, r0, tile, N, K, p, x, vt.RowSize(K), y[r0:], M)
							}
							n++
						}
						b.ReportMetric(float64(n*N*M*rs)/float64(threadCPU()-t0), "tokGB/cpu-s")
					})
				}
			}
		}
	}
}
