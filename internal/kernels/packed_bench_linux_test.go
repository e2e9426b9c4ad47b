package kernels

import (
	"fmt"
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

// BenchmarkGemmPackedSmall compares, for small batches of tokens (a
// speculative verification pass), the packed f16 product read in place
// (gemmPackedSmall) against the rows copied back for the GEMM (what
// batches did before; packedSmallBatch 0), on 16 matrices of 2048×2048
// (larger than the L3 together), one call per 64 rows as the model's
// prefill tiling hands them out, or per 1024 rows (in place only). The metric is the whole matrix's weights
// per CPU-second of the thread, so 1 token's figure is a decode step's
// rate and a batch's divided by it is the pass's cost in decode steps.
//
//	go test -run '^$' -bench GemmPackedSmall ./internal/kernels
func BenchmarkGemmPackedSmall(b *testing.B) {
	const M, K, NM = 2048, 2048, 16
	ty := tensor.F16
	rs := ty.RowSize(K)
	ps := make([][]byte, NM)
	w := make([]byte, M*rs)
	for i := range ps {
		for j := range w {
			w[j] = byte(j*7+i) & 0x3b // finite f16 values
		}
		ps[i] = make([]byte, PackedSize(ty, M, K))
		Pack(ty, ps[i], w, M, K)
	}
	for _, nTok := range []int{1, 2, 4, 5, 8, 16, 32, 64} {
		x := make([]byte, 4*K*nTok)
		y := make([]float32, M*nTok)
		for _, v := range []struct {
			inPlace bool
			rows    int
		}{{true, 64}, {true, 1024}, {false, 64}} {
			inPlace, rows := v.inPlace, v.rows
			if nTok == 1 && !inPlace {
				continue
			}
			name := fmt.Sprintf("tok%d/%s%d", nTok, map[bool]string{true: "inplace", false: "copyback"}[inPlace], rows)
			b.Run(name, func(b *testing.B) {
				defer func(v int) { packedSmallBatch = v }(packedSmallBatch)
				if !inPlace {
					packedSmallBatch = 0
				}
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				t0 := threadCPU()
				n := 0
				for b.Loop() {
					p := ps[n%NM]
					for r0 := 0; r0 < M; r0 += rows {
						GemmPacked(ty, r0, rows, nTok, K, p, x, y[r0:], M)
					}
					n++
				}
				b.ReportMetric(float64(n*M*rs)/float64(threadCPU()-t0), "GB/cpu-s")
			})
		}
	}
}
