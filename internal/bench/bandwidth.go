package bench

import (
	"time"

	"github.com/kvserve/kvserve/internal/kernels"
	"github.com/kvserve/kvserve/internal/parallel"
)

// MemoryBandwidth measures the machine's memory read bandwidth in bytes
// per second with the pool's threads: each thread streams its share of a
// buffer of `size` bytes (far larger than the caches) through a SIMD
// reduction; the best of reps passes counts.
func MemoryBandwidth(pool *parallel.Pool, size int, reps int) float64 {
	buf := make([]float32, size/4)
	for i := range buf {
		buf[i] = float32(i & 1023)
	}
	t := &readTask{buf: buf, parts: pool.Threads() * 8}
	best := 0.0
	for r := 0; r < reps; r++ {
		t0 := time.Now()
		pool.Run(t.parts, t)
		if bw := float64(len(buf)*4) / time.Since(t0).Seconds(); bw > best {
			best = bw
		}
	}
	return best
}

type readTask struct {
	buf   []float32
	parts int
	sink  [64]float32
}

func (t *readTask) Do(i, w int) {
	n := len(t.buf) / t.parts
	t.sink[w%64] += kernels.SumSquares(t.buf[i*n : (i+1)*n])
}
