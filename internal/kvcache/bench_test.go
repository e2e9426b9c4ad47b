package kvcache

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/kvserve/kvserve/internal/tensor"
)

// BenchmarkAttend measures one query group (4 heads sharing a KV head,
// head dim 64) attending over a sequence of each depth and cache type;
// cpu-ns/op is the CPU time of the benchmark's thread per call (robust to a
// shared machine's descheduling).
func BenchmarkAttend(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, typ := range []tensor.Type{tensor.F16, tensor.Q8_0, tensor.Q4_0, tensor.CB4, tensor.CB3, tensor.CB2} {
		for _, depth := range []int{256, 2048, 4096} {
			b.Run(fmt.Sprintf("%s/d%d", typ, depth), func(b *testing.B) {
				c := testCache(b, typ, typ, true, 1, depth, 256)
				for pos := 0; pos < depth; pos++ {
					c.Store(0, 0, pos, randRow(r, 128, 1), randRow(r, 128, 1))
				}
				q := randRow(r, 4*64, 0.2)
				out := make([]float32, 4*64)
				b.SetBytes(int64(c.Bytes() / 4)) // one layer's K+V of one head... (2 layers, 2 heads)
				b.ReportAllocs()
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				b.ResetTimer()
				t0 := threadCPU()
				for i := 0; i < b.N; i++ {
					c.Attend(0, 0, depth-1, 1, q, out, 0)
				}
				b.ReportMetric(float64(threadCPU()-t0)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}
