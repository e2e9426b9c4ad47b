package kvcache

import (
	"math/rand/v2"
	"testing"

	"github.com/kvserve/kvserve/internal/tensor"
)

// BenchmarkKeyQueryWrite: a kvtest-27m layer's writes (2 KV heads of 64,
// 4 query heads each, cb4 keys centred, 256-token pages), 1024 tokens
// per op, with --cache-key-encode mse and query: the encoder's cost
// (observing queries, refining rows at each key-channel refit).
func BenchmarkKeyQueryWrite(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := map[bool]string{false: "mse", true: "query"}[on]
		b.Run(name, func(b *testing.B) {
			c, err := New(Config{Layers: 1, KVHeads: 2, HeadDimK: 64, HeadDimV: 64, Seqs: 1, Ctx: 1024,
				Threads: 1, TypeK: uniform(1, tensor.CB4), TypeV: uniform(1, tensor.CB4), Rotate: true,
				KeyChannels: KeyChannelsCentre, KeyQuery: on})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			r := rand.New(rand.NewPCG(1, 2))
			const n = 1024
			keys, vals, qs := make([][]float32, n), make([][]float32, n), make([][]float32, n)
			dir := randRow(r, 8*64, 1)
			for i := range keys {
				keys[i], vals[i], qs[i] = offsetKey(r, 128), randRow(r, 128, 1), randRow(r, 8*64, 0.3)
				for j := range qs[i] {
					qs[i][j] += dir[j]
				}
			}
			b.ResetTimer()
			for it := 0; it < b.N; it++ {
				c.Clear(0)
				for pos := 0; pos < n; pos++ {
					c.ObserveQuery(0, 0, pos, qs[pos])
					c.Store(0, 0, pos, keys[pos], vals[pos])
				}
			}
		})
	}
}
