package engine_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/kvserve/kvserve/internal/engine"
	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/model"
	"github.com/kvserve/kvserve/internal/tensor"
	"github.com/kvserve/kvserve/internal/testassets"
)

// BenchmarkRequantize converts a full 4096-token cache of kvtest-27m and
// reports the cache bytes read per second and the ratio to re-prefilling
// the same 4096 tokens (what a reload-based requantization costs);
// cpu-ms/convert is the process's CPU time per conversion (every worker),
// robust to a shared machine's descheduling.
func BenchmarkRequantize(b *testing.B) {
	e, err := engine.Load(testassets.Path(b, "models/kvtest-27m-f16.gguf"), 0)
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	const n = 4096
	toks := make([]int, n)
	for i := range toks {
		toks[i] = (i*7919 + 13) % e.Model.NVocab
	}
	r := model.NewRunner(e.Model, e.Pool, 512)
	prefill := func(c *kvcache.Cache) time.Duration {
		c.Clear(0)
		t0 := time.Now()
		for i := 0; i < n; i += 512 {
			bt := &model.Batch{Tokens: toks[i : i+512], Pos: make([]int, 512), Output: make([]bool, 512)}
			for j := range bt.Pos {
				bt.Pos[j] = i + j
			}
			if _, err := r.Forward(bt, c); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(t0)
	}
	for _, c := range []struct{ from, to tensor.Type }{{tensor.F16, tensor.Q8_0}, {tensor.F16, tensor.Q4_0}, {tensor.Q8_0, tensor.Q4_0},
		{tensor.F16, tensor.CB4}, {tensor.F16, tensor.CB3}, {tensor.F16, tensor.CB2}} {
		b.Run(fmt.Sprintf("%s-to-%s", c.from, c.to), func(b *testing.B) {
			o := engine.DefaultCacheOptions()
			o.TypeK, o.TypeV = c.from.String(), c.from.String()
			cache, err := e.NewCache(o, 1, n)
			if err != nil {
				b.Fatal(err)
			}
			defer cache.Close()
			var conv, pre time.Duration
			var cpuNs int64
			var read int64
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				cache.SetWriteTypes(kvcache.Target{K: &c.from, V: &c.from})
				pre += prefill(cache)
				read += cache.Bytes()
				tg := kvcache.Target{K: &c.to, V: &c.to}
				steps, _, err := cache.Plan(tg)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				t0, c0 := time.Now(), processCPU()
				cache.SetWriteTypes(tg)
				cache.ConvertPages(steps, e.Pool, make([]bool, len(steps)))
				conv += time.Since(t0)
				cpuNs += processCPU() - c0
			}
			b.ReportMetric(float64(read)/conv.Seconds()/1e9, "GB/s")
			b.ReportMetric(conv.Seconds()*1000/float64(b.N), "ms/convert")
			b.ReportMetric(pre.Seconds()/conv.Seconds(), "x-faster-than-prefill")
			b.ReportMetric(float64(cpuNs)/1e6/float64(b.N), "cpu-ms/convert")
		})
	}
}
