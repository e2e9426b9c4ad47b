package kvcache

import (
	"bytes"
	"github.com/kvserve/kvserve/internal/attn"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kvserve/kvserve/internal/tensor"
)

func layerCache(t testing.TB, typ tensor.Type, ctx, page int, attn []attn.Layer) *Cache {
	c, err := New(Config{Layers: 2, KVHeads: 2, HeadDimK: 64, HeadDimV: 64, Seqs: 2, Ctx: ctx,
		PageTokens: page, Threads: 2, TypeK: uniform(2, typ), TypeV: uniform(2, typ), Rotate: true, Attn: attn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// Sliding windows, logit caps and sinks: AttendRun agrees with the float64
// reference on every cache type, alone and in runs of several tokens.
func TestLayerAttentionMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	sinks := make([]float32, 8)
	for i := range sinks {
		sinks[i] = float32(r.NormFloat64() * 2)
	}
	specs := map[string]attn.Layer{
		"window100":         {Window: 100},
		"window1":           {Window: 1},
		"softcap":           {Softcap: 2},
		"sinks":             {Sinks: sinks},
		"window+cap+sinks":  {Window: 200, Softcap: 3, Sinks: sinks},
		"window>ctx (full)": {Window: 10000},
	}
	for name, spec := range specs {
		for _, typ := range []tensor.Type{tensor.F32, tensor.F16, tensor.Q8_0, tensor.Q4_0} {
			t.Run(name+"/"+typ.String(), func(t *testing.T) {
				c := layerCache(t, typ, 700, 128, []attn.Layer{spec, spec})
				const n = 600
				for pos := 0; pos < n; pos++ {
					c.Store(1, 0, pos, randRow(r, 128, 1), randRow(r, 128, 1))
				}
				const g = 4
				for _, pos0 := range []int{0, 99, 100, 250, 480} {
					nTok := 7
					q := randRow(r, nTok*g*64, 0.3)
					for h := 0; h < 2; h++ {
						out := make([]float32, nTok*g*64)
						c.AttendRun(1, 0, pos0, nTok, h, g, q, g*64, out, g*64, 0)
						for i := 0; i < nTok; i++ {
							for gi := 0; gi < g; gi++ {
								qr := q[(i*g+gi)*64 : (i*g+gi+1)*64]
								want := naiveAttention(c, 1, 0, pos0+i, h, qr, h*g+gi)
								got := out[(i*g+gi)*64 : (i*g+gi+1)*64]
								var maxd, maxv float64
								for j, w := range want {
									maxd = math.Max(maxd, math.Abs(float64(got[j])-w))
									maxv = math.Max(maxv, math.Abs(w))
								}
								if maxd > 1e-4*math.Max(maxv, 1e-3) {
									t.Fatalf("pos %d head %d/%d: max diff %.3g (max %.3g)", pos0+i, h, gi, maxd, maxv)
								}
							}
						}
						// Each token's result is the same alone as in the run.
						one := make([]float32, g*64)
						c.AttendRun(1, 0, pos0+3, 1, h, g, q[3*g*64:], g*64, one, g*64, 1)
						for j := range one {
							if math.Float32bits(one[j]) != math.Float32bits(out[3*g*64+j]) {
								t.Fatalf("pos %d: run and single results differ", pos0+3)
							}
						}
					}
				}
			})
		}
	}
}

// A window layer releases the pages no later token attends, keeps one page
// of slack, reports reuse truthfully, and its bytes stay bounded however long
// the sequence grows; the full layer keeps everything.
func TestWindowLayerReleasesPages(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	const P, W = 64, 100
	c := layerCache(t, tensor.F16, 4096, P, []attn.Layer{{}, {Window: W}})
	perPage := int64(tensor.F16.RowSize(128)) * P * 2 // K and V
	for pos := 0; pos < 3000; pos++ {
		for l := 0; l < 2; l++ {
			c.Store(l, 0, pos, randRow(r, 128, 1), randRow(r, 128, 1))
		}
		c.Release(0)
		n := pos + 1
		held := int64(0)
		for _, p := range c.Pages(0) {
			if p.Layer == 1 {
				held += int64(p.Bytes)
			}
		}
		if max := int64(c.maxPages(1, 1<<20)) * perPage; held > max {
			t.Fatalf("at %d positions the window layer holds %d bytes, more than its bound %d", n, held, max)
		}
		// Every page the next token attends is still there.
		for pi := max(0, n-W+1) / P; pi*P < n; pi++ {
			if _, _, ok := c.Page(PageRef{Seq: 0, Layer: 1, Index: pi}); !ok {
				t.Fatalf("at %d positions page %d (needed) was released", n, pi)
			}
		}
	}
	full := 0
	for _, p := range c.Pages(0) {
		if p.Layer == 0 {
			full++
		}
	}
	if want := 2 * ((3000 + P - 1) / P); full != want {
		t.Fatalf("full layer holds %d pages, want %d", full, want)
	}
	// Reuse: a rollback within the slack keeps the prefix; further does not.
	if got := c.Reusable(0, 3000-P); got != 3000-P {
		t.Errorf("Reusable(%d) = %d", 3000-P, got)
	}
	if got := c.Reusable(0, 1000); got != 0 {
		t.Errorf("Reusable(1000) = %d, want 0 (its window was released)", got)
	}
	// Truncating and writing again works: released pages are rebuilt.
	c.Truncate(0, 0)
	if c.Bytes() != 0 {
		t.Fatalf("%d bytes left after clearing", c.Bytes())
	}
	for pos := 0; pos < 300; pos++ {
		for l := 0; l < 2; l++ {
			c.Store(l, 0, pos, randRow(r, 128, 1), randRow(r, 128, 1))
		}
	}
	out := make([]float32, 64)
	c.Attend(1, 0, 299, 0, randRow(r, 64, 1), out, 0)
}

// Capacity counts a window layer at its window, full layers at the context.
func TestCapacityWithWindows(t *testing.T) {
	const P = 256
	full := layerCache(t, tensor.F16, 32768, P, nil)
	mixed := layerCache(t, tensor.F16, 32768, P, []attn.Layer{{Window: 1024}, {}})
	perLayer := full.Capacity() / 2
	want := perLayer + int64(mixed.maxPages(0, 32768))*int64(tensor.F16.RowSize(128))*P*2*2
	if mixed.Capacity() != want {
		t.Fatalf("capacity %d, want %d", mixed.Capacity(), want)
	}
}

// Slot files keep released pages released and refuse files that claim a
// needed page was released.
func TestPersistWindowLayer(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	const P = 64
	c := layerCache(t, tensor.Q8_0, 4096, P, []attn.Layer{{}, {Window: 100}})
	for pos := 0; pos < 500; pos++ {
		for l := 0; l < 2; l++ {
			c.Store(l, 0, pos, randRow(r, 128, 1), randRow(r, 128, 1))
		}
		c.Release(0)
	}
	var buf bytes.Buffer
	if err := c.WriteSeq(0, &buf); err != nil {
		t.Fatal(err)
	}
	before := c.Bytes()
	if n, err := c.ReadSeq(1, bytes.NewReader(buf.Bytes())); err != nil || n != 500 {
		t.Fatalf("ReadSeq: %d %v", n, err)
	}
	if c.Bytes() != 2*before {
		t.Fatalf("restored sequence holds %d bytes, want %d", c.Bytes()-before, before)
	}
	q := randRow(r, 64, 1)
	a, b := make([]float32, 64), make([]float32, 64)
	c.Attend(1, 0, 499, 1, q, a, 0)
	c.Attend(1, 1, 499, 1, q, b, 0)
	for i := range a {
		if a[i] != b[i] {
			t.Fatal("restored window layer attends differently")
		}
	}
	// The same file read into a cache whose layer 1 is full must fail.
	other := layerCache(t, tensor.Q8_0, 4096, P, nil)
	if _, err := other.ReadSeq(0, bytes.NewReader(buf.Bytes())); err == nil {
		t.Fatal("released pages accepted by a full-attention layer")
	}
}

func TestAttnValidation(t *testing.T) {
	for _, bad := range [][]attn.Layer{{{Window: -1}, {}}, {{}}, {{Softcap: -1}, {}}, {{Sinks: []float32{1, 2, 3}}, {}}, {{Sinks: []float32{}}, {}}} {
		_, err := New(Config{Layers: 2, KVHeads: 2, HeadDimK: 64, HeadDimV: 64, Seqs: 1, Ctx: 64,
			TypeK: uniform(2, tensor.F16), TypeV: uniform(2, tensor.F16), Attn: bad})
		if err == nil {
			t.Errorf("attention spec %+v accepted", bad)
		}
	}
}

// With KeepWindowPages (--swa-full) a window layer keeps every page: it
// still attends only its window, and capacity counts it in full.
func TestKeepWindowPages(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	c, err := New(Config{Layers: 2, KVHeads: 2, HeadDimK: 64, HeadDimV: 64, Seqs: 1, Ctx: 1024, PageTokens: 64,
		Threads: 1, TypeK: uniform(2, tensor.F16), TypeV: uniform(2, tensor.F16), Attn: []attn.Layer{{}, {Window: 100}},
		KeepWindowPages: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for pos := 0; pos < 600; pos++ {
		for l := 0; l < 2; l++ {
			c.Store(l, 0, pos, randRow(r, 128, 1), randRow(r, 128, 1))
		}
		c.Release(0)
	}
	if got := len(c.Pages(0)); got != 4*((600+63)/64) {
		t.Fatalf("%d pages held, want every page of both layers", got)
	}
	if c.Reusable(0, 10) != 10 {
		t.Fatal("a kept window layer refused prefix reuse")
	}
	q := randRow(r, 4*64, 0.3)
	out := make([]float32, 4*64)
	c.Attend(1, 0, 599, 0, q, out, 0)
	for g := 0; g < 4; g++ {
		want := naiveAttention(c, 1, 0, 599, 0, q[g*64:(g+1)*64])
		for i, w := range want {
			if math.Abs(float64(out[g*64+i])-w) > 1e-4 {
				t.Fatalf("window attention with kept pages differs from the reference")
			}
		}
	}
	full := layerCache(t, tensor.F16, 1024, 64, nil)
	if c.Capacity() != full.Capacity()/2 {
		t.Fatalf("capacity %d, want %d (both layers in full)", c.Capacity(), full.Capacity()/2)
	}
}
