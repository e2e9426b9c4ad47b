package qkernels

import (
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/kvserve/kvserve/internal/kernels"
	"github.com/kvserve/kvserve/internal/tensor"
)

// l3Bytes is the last-level cache's size as the kernel reports it (sysfs),
// or 0 if unknown.
func l3Bytes() int {
	b, err := os.ReadFile("/sys/devices/system/cpu/cpu0/cache/index3/size")
	if err != nil {
		return 0
	}
	s := strings.TrimSpace(string(b))
	mul := 1
	switch {
	case strings.HasSuffix(s, "K"):
		mul, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mul, s = 1<<20, strings.TrimSuffix(s, "M")
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0
	}
	return n * mul
}

// BenchmarkMatVecStream is the decode matrix-vector product (one token,
// one thread) streaming its weights from DRAM: a set of 8192×2048 matrices
// in the packed layout the program uses (Q8_0, Q4_K, Q6_K: row lanes; f16:
// kernels' 16-row chunks) totalling more than 2.25× the L3 (at least 512
// MiB), each call the next matrix of the set, cycled, so no weight is in a
// cache when it is read. The metric is GB of weights (the file's bytes)
// per CPU-second of the benchmark's thread; the working set is logged.
//
//	go test -run '^$' -bench MatVecStream -benchtime 3s ./internal/qkernels
func BenchmarkMatVecStream(b *testing.B) {
	const M, K = 8192, 2048
	target := max(l3Bytes()*9/4, 512<<20)
	for _, ty := range []tensor.Type{tensor.Q4_K, tensor.Q6_K, tensor.Q8_0, tensor.F16} {
		b.Run(ty.String(), func(b *testing.B) {
			rs := ty.RowSize(K)
			var psz int
			var one []byte
			if ty == tensor.F16 {
				psz = kernels.PackedSize(ty, M, K)
				w := make([]byte, M*rs)
				for j := range w {
					w[j] = byte(j*7) & 0x3b // finite f16 values
				}
				one = make([]byte, psz)
				kernels.Pack(ty, one, w, M, K)
			} else {
				r := rand.New(rand.NewPCG(1, 2))
				blk := randMatrix(r, ty, 64, K, rs, true, 1)
				w := make([]byte, M*rs)
				for j := 0; j < M; j += 64 {
					copy(w[j*rs:], blk)
				}
				psz = PackedSize(ty, M, K)
				one = make([]byte, psz)
				Pack(ty, one, w, rs, M, K)
			}
			nm := (target + psz - 1) / psz
			ps := make([][]byte, nm)
			for i := range ps {
				ps[i] = make([]byte, psz)
				copy(ps[i], one)
			}
			b.Logf("%s: %d matrices of %d×%d, %.0f MiB packed (L3 %d MiB)", ty, nm, M, K, float64(nm*psz)/(1<<20), l3Bytes()>>20)
			y := make([]float32, M)
			var x []byte
			var ldx int
			if ty == tensor.F16 {
				x = make([]byte, 4*K)
				for i := 0; i < K; i++ {
					x[4*i+2], x[4*i+3] = 0x80, 0x3f // 1.0
				}
			} else {
				vt := ty.VecDotType()
				ldx = vt.RowSize(K)
				x = randMatrix(rand.New(rand.NewPCG(3, 4)), vt, 1, K, ldx, false, 1)
			}
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			t0 := threadCPU()
			n := 0
			for b.Loop() {
				p := ps[n%nm]
				if ty == tensor.F16 {
					kernels.GemmPacked(ty, 0, M, 1, K, p, x, y, M)
				} else {
					GemmPacked(ty, 0, M, 1, K, p, x, ldx, y, M)
				}
				n++
			}
			b.ReportMetric(float64(n*M*rs)/float64(threadCPU()-t0), "GB/cpu-s")
			b.StopTimer()
			ps, one = nil, nil
			runtime.GC()
			debug.FreeOSMemory()
		})
	}
}
