package engine

import (
	"math/rand/v2"
	"testing"

	"github.com/kvserve/kvserve/internal/cachepolicy"
	"github.com/kvserve/kvserve/internal/kvcache"
)

// BenchmarkPolicyConvert carries out one multistage plan that demotes
// every page of a 4096-token kvtest-27m-shaped cache older than the hot
// window: "serial" converts page after page on one goroutine (what the
// policy did before it planned), "pool" is the converter (every page of
// the plan at once, in parallel on the worker pool). Both leave the cache
// bit-identical (TestConverterMatchesSerial).
func BenchmarkPolicyConvert(b *testing.B) {
	e, err := Load("", 0)
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	for _, mode := range []string{"serial", "pool"} {
		b.Run(mode, func(b *testing.B) {
			c, pl := policyFixture(b, e)
			defer c.Close()
			x := converter{cache: c, pool: e.Pool}
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				resetF16(b, c, pl.Steps)
				b.StartTimer()
				if mode == "serial" {
					for _, s := range pl.Steps {
						c.ConvertPage(s)
					}
				} else {
					x.run(pl.Steps, nil)
				}
			}
			b.ReportMetric(float64(len(pl.Steps)), "pages/op")
		})
	}
}

// policyFixture fills one sequence of a cache shaped like the engine's
// model with 4096 random tokens at f16 and plans a multistage policy
// (hot 64, warm 0: every older page to the bottom of its ladder).
func policyFixture(tb testing.TB, e *Engine) (*kvcache.Cache, *cachepolicy.Plan) {
	o := DefaultCacheOptions()
	c, err := e.NewCache(o, 1, 4096)
	if err != nil {
		tb.Fatal(err)
	}
	cfg := c.Config()
	r := rand.New(rand.NewPCG(1, 2))
	row := func(n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		return x
	}
	k, v := row(cfg.KVHeads*cfg.HeadDimK), row(cfg.KVHeads*cfg.HeadDimV)
	for pos := 0; pos < 4096; pos++ {
		for l := 0; l < cfg.Layers; l++ {
			k[pos%len(k)], v[pos%len(v)] = float32(pos%7), float32(l)
			c.Store(l, 0, pos, k, v)
		}
	}
	p := &cachepolicy.Policy{Hot: 64}
	p.LadderK, p.LadderV = cachepolicy.DefaultLadders()
	pl, err := p.Plan(c, cachepolicy.Input{Seqs: []cachepolicy.SeqState{{Seq: 0, Active: true}}})
	if err != nil {
		tb.Fatal(err)
	}
	return c, pl
}

// resetF16 converts the planned pages back to f16 (for the next round).
func resetF16(tb testing.TB, c *kvcache.Cache, steps []kvcache.Step) {
	for _, s := range steps {
		if st, ok := c.PlanStep(s.PageRef, s.From); ok && st.From != st.To {
			c.ConvertPage(st)
		}
	}
}

// The converter's parallel conversion of a plan leaves exactly the cache
// a serial conversion of the same plan leaves, and counts each page once
// by its reason.
func TestConverterMatchesSerial(t *testing.T) {
	e, err := Load("", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	a, pl := policyFixture(t, e)
	defer a.Close()
	b, _ := policyFixture(t, e)
	defer b.Close()
	for _, s := range pl.Steps {
		if !b.ConvertPage(s) {
			t.Fatal("serial conversion failed")
		}
	}
	var st cachepolicy.Stats
	x := converter{cache: a, pool: e.Pool}
	if pages, _ := x.run(pl.Steps, &st); pages != len(pl.Steps) || st.ByAge != int64(len(pl.Steps)) {
		t.Fatalf("converted %d of %d pages, %d counted by age", pages, len(pl.Steps), st.ByAge)
	}
	if a.Bytes() != b.Bytes() || a.Bytes() != pl.BytesAfter {
		t.Fatalf("bytes %d (pool) %d (serial) %d (planned)", a.Bytes(), b.Bytes(), pl.BytesAfter)
	}
	var wa, wb bytes
	if err := a.WriteSeq(0, &wa); err != nil {
		t.Fatal(err)
	}
	if err := b.WriteSeq(0, &wb); err != nil {
		t.Fatal(err)
	}
	if string(wa) != string(wb) {
		t.Error("the pool's conversion differs from the serial one")
	}
}

type bytes []byte

func (w *bytes) Write(p []byte) (int, error) { *w = append(*w, p...); return len(p), nil }
