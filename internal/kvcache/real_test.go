package kvcache

import (
	"bytes"
	"testing"

	"github.com/kvserve/kvserve/internal/gguf"
	"github.com/kvserve/kvserve/internal/model"
	"github.com/kvserve/kvserve/internal/parallel"
	"github.com/kvserve/kvserve/internal/tensor"
	"github.com/kvserve/kvserve/internal/tensor/ggmlref"
	"github.com/kvserve/kvserve/internal/testassets"
)

// recorder is a KV cache that keeps every K and V row the model stores.
type recorder struct {
	*Cache
	rows map[[2]int][2][]float32 // (layer, pos) -> K, V
}

func (r *recorder) Store(l, seq, pos int, k, v []float32) {
	r.rows[[2]int{l, pos}] = [2][]float32{append([]float32(nil), k...), append([]float32(nil), v...)}
	r.Cache.Store(l, seq, pos, k, v)
}

// Real keys and values of kvtest-27m (with their outlier channels) are
// stored, for every cache type and rotation, exactly as ggml's reference
// quantizer (an independent implementation) encodes them.
func TestRealRowsMatchReference(t *testing.T) {
	f, err := gguf.Open(testassets.Path(t, "models/kvtest-27m-f16.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := model.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	pool := parallel.New(2)
	defer pool.Close()
	cfg := Config{Layers: m.NLayer, KVHeads: m.NHeadKV, HeadDimK: m.HeadDim, HeadDimV: m.HeadDimV, Seqs: 1, Ctx: 512,
		Threads: 2, TypeK: uniform(m.NLayer, tensor.F32), TypeV: uniform(m.NLayer, tensor.F32)}
	base, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	rec := &recorder{Cache: base, rows: map[[2]int][2][]float32{}}
	toks := make([]int, 300)
	for i := range toks {
		toks[i] = (i*37 + 11) % m.NVocab
	}
	pos := make([]int, len(toks))
	for i := range pos {
		pos[i] = i
	}
	if _, err := model.NewRunner(m, pool, 512).Forward(&model.Batch{Tokens: toks, Pos: pos}, rec); err != nil {
		t.Fatal(err)
	}
	D := m.HeadDim
	for _, typ := range Types {
		if typ.IsCodebook() {
			continue // not ggml's (TestStoredBitsMatchReference covers them)
		}
		t.Run(typ.String(), func(t *testing.T) {
			for _, rot := range []bool{false, true} {
				c := cfg
				c.TypeK, c.TypeV, c.Rotate = uniform(m.NLayer, typ), uniform(m.NLayer, typ), rot
				cache, err := New(c)
				if err != nil {
					t.Fatal(err)
				}
				for p := range toks {
					for l := 0; l < m.NLayer; l++ {
						kv := rec.rows[[2]int{l, p}]
						cache.Store(l, 0, p, kv[0], kv[1])
					}
				}
				for l := 0; l < m.NLayer; l++ {
					ls := &cache.seqs[0][l]
					for p := range toks {
						for h := 0; h < m.NHeadKV; h++ {
							for i, s := range []*stream{&ls.k, &ls.v} {
								seg := append([]float32(nil), rec.rows[[2]int{l, p}][i][h*D:(h+1)*D]...)
								if s.pages[0].Rotated {
									rotateRows(seg, D)
								}
								if got, want := headBytes(cache, s, p, h, D), ggmlref.Quantize(typ, seg, false); !bytes.Equal(got, want) {
									t.Fatalf("%s rotate=%v layer %d pos %d head %d: stored bits differ from ggml's reference", typ, rot, l, p, h)
								}
							}
						}
					}
				}
				cache.Close()
			}
		})
	}
}
