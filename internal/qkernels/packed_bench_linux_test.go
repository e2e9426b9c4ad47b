package qkernels

import (
	"math/rand/v2"
	"runtime"
	"strconv"
	"syscall"
	"testing"

	"github.com/kvserve/kvserve/internal/tensor"
)

// threadCPU is the calling thread's CPU time in nanoseconds: on a shared
// machine, bytes per CPU-second compare layouts better than wall time
// (a descheduled thread accrues none; memory stalls count).
func threadCPU() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(1, &ru) // RUSAGE_THREAD
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkMatVecPacked compares the decode matrix-vector product on
// row-major and packed weights (8 matrices of 8192×2048, larger than the
// L3 together), one, two and four tokens (decode) and 64 (prefill); the metric is GB of weights per
// CPU-second of the benchmark's thread.
//
//	go test -run '^$' -bench MatVecPacked ./internal/qkernels
func BenchmarkMatVecPacked(b *testing.B) {
	const M, K, NM = 8192, 2048, 8
	for _, ty := range []tensor.Type{tensor.Q8_0, tensor.Q4_K, tensor.Q5_K, tensor.Q6_K} {
		r := rand.New(rand.NewPCG(1, 2))
		rs := ty.RowSize(K)
		one := randMatrix(r, ty, 64, K, rs, true, 1)
		ws, ps := make([][]byte, NM), make([][]byte, NM)
		for i := range ws {
			ws[i] = make([]byte, M*rs)
			for j := 0; j < M; j += 64 {
				copy(ws[i][j*rs:], one)
			}
			ps[i] = make([]byte, PackedSize(ty, M, K))
			Pack(ty, ps[i], ws[i], rs, M, K)
		}
		vt := ty.VecDotType()
		x := randMatrix(r, vt, 64, K, vt.RowSize(K), false, 1)
		y := make([]float32, 64*M)
		for _, nTok := range []int{1, 2, 4, 64} {
			for _, packed := range []bool{false, true} {
				name := ty.String() + "/tok" + strconv.Itoa(nTok) + map[bool]string{false: "/rowmajor", true: "/packed"}[packed]
				b.Run(name, func(b *testing.B) {
					runtime.LockOSThread()
					defer runtime.UnlockOSThread()
					t0 := threadCPU()
					n := 0
					for b.Loop() {
						i := n % NM
						if packed {
							GemmPacked(ty, 0, M, nTok, K, ps[i], x, vt.RowSize(K), y, M)
						} else {
							Gemm(ty, M, nTok, K, ws[i], rs, x, vt.RowSize(K), y, M)
						}
						n++
					}
					b.ReportMetric(float64(n*M*rs)/float64(threadCPU()-t0), "GB/cpu-s")
				})
			}
		}
	}
}
