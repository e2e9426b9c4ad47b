package kernels

import (
	"runtime"
	"syscall"
	"testing"

	"github.com/kvserve/kvserve/internal/tensor"
)

func threadCPU() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(1, &ru) // RUSAGE_THREAD
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkMatVecPacked compares the f16 decode matrix-vector product on
// row-major and packed weights (16 matrices of 2048×2048, larger than the
// L3 together); the metric is GB of weights per CPU-second of the
// benchmark's thread (robust to a shared machine's descheduling).
//
//	go test -run '^$' -bench MatVecPacked ./internal/kernels
func BenchmarkMatVecPacked(b *testing.B) {
	const M, K, NM = 2048, 2048, 16
	ty := tensor.F16
	rs := ty.RowSize(K)
	ws, ps := make([][]byte, NM), make([][]byte, NM)
	for i := range ws {
		ws[i] = make([]byte, M*rs)
		for j := range ws[i] {
			ws[i][j] = byte(j*7+i) & 0x3b // finite f16 values
		}
		ps[i] = make([]byte, PackedSize(ty, M, K))
		Pack(ty, ps[i], ws[i], M, K)
	}
	x := make([]byte, 4*K)
	y := make([]float32, M)
	for _, packed := range []bool{false, true} {
		b.Run(map[bool]string{false: "f16/rowmajor", true: "f16/packed"}[packed], func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			t0 := threadCPU()
			n := 0
			for b.Loop() {
				i := n % NM
				if packed {
					GemmPacked(ty, 0, M, 1, K, ps[i], x, y, M)
				} else {
					Gemm(ty, M, 1, K, ws[i], rs, x, 4*K, y, M)
				}
				n++
			}
			b.ReportMetric(float64(n*M*rs)/float64(threadCPU()-t0), "GB/cpu-s")
		})
	}
}

// BenchmarkMatVecPackedHot is the packed f16 matrix-vector product on a
// 256×2048 matrix (1 MiB) that stays in L2: the kernel's arithmetic rate,
// not the memory's (GB of weights per CPU-second of the thread).
//
//	go test -run '^$' -bench MatVecPackedHot ./internal/kernels
func BenchmarkMatVecPackedHot(b *testing.B) {
	const M, K = 256, 2048
	ty := tensor.F16
	w := make([]byte, M*ty.RowSize(K))
	for j := range w {
		w[j] = byte(j*7) & 0x3b // finite f16 values
	}
	p := make([]byte, PackedSize(ty, M, K))
	Pack(ty, p, w, M, K)
	x := make([]byte, 4*K)
	y := make([]float32, M)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t0 := threadCPU()
	n := 0
	for b.Loop() {
		GemmPacked(ty, 0, M, 1, K, p, x, y, M)
		n++
	}
	b.ReportMetric(float64(n*len(w))/float64(threadCPU()-t0), "GB/cpu-s")
}
