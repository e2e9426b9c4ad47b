package kvcache

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kvserve/kvserve/internal/attn"
	"github.com/kvserve/kvserve/internal/tensor"
)

// testRope rotates adjacent pairs of each 64-value head by pos·base^(-2j/64).
func testRope(rows []float32, pos int) {
	for off := 0; off+64 <= len(rows); off += 64 {
		for j := 0; j < 32; j++ {
			th := float64(pos) * math.Pow(10000, -2*float64(j)/64)
			s, c := math.Sincos(th)
			a, b := float64(rows[off+2*j]), float64(rows[off+2*j+1])
			rows[off+2*j] = float32(a*c - b*s)
			rows[off+2*j+1] = float32(a*s + b*c)
		}
	}
}

// After a shift, attention equals that of a cache holding the kept tokens
// at their new positions from the start: keys re-rotated, values moved —
// for page-aligned shifts (whole pages move) and unaligned ones (rebuilt
// pages), on float, quantized and rotated pages. Exactly so for f32; for
// other types the re-encoded keys add at most about the type's own
// quantization error (measured against an f32 cache).
func TestShiftEqualsFreshCache(t *testing.T) {
	const P, n = 64, 500
	for _, tc := range []struct {
		name          string
		typ           tensor.Type
		rotate        bool
		keep, discard int
	}{
		{"f32 aligned", tensor.F32, false, 64, 192},
		{"f32 unaligned", tensor.F32, false, 10, 150},
		{"f16 aligned", tensor.F16, false, 0, 128},
		{"q8_0 rotated unaligned", tensor.Q8_0, true, 37, 100},
		{"q4_0 rotated aligned", tensor.Q4_0, true, 128, 256},
		{"q4_0 unaligned", tensor.Q4_0, false, 5, 70},
		{"q8_0 page-multiple discard", tensor.Q8_0, true, 37, 128},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(21, 22))
			raw := make([][2][]float32, n)
			for p := range raw {
				raw[p] = [2][]float32{randRow(r, 128, 1), randRow(r, 128, 1)}
			}
			store := func(c *Cache, pos, from int) {
				k := append([]float32(nil), raw[from][0]...)
				testRope(k, pos)
				for l := 0; l < 2; l++ {
					c.Store(l, 0, pos, k, raw[from][1])
				}
			}
			c := testCache(t, tc.typ, tc.typ, tc.rotate, 1, 1024, P)
			for p := 0; p < n; p++ {
				store(c, p, p)
			}
			vBefore := c.seqs[0][1].v.pages
			err := c.Shift(0, tc.keep, tc.discard, func(l int, rows []float32, delta int) { testRope(rows, delta) })
			if err != nil {
				t.Fatal(err)
			}
			newN := n - tc.discard
			if c.Len(0) != newN {
				t.Fatalf("Len %d, want %d", c.Len(0), newN)
			}
			if tc.discard%P == 0 {
				// Whole pages moved: V pages are the very same pages.
				for j := (tc.keep + P - 1) / P; j < (newN+P-1)/P; j++ {
					if c.seqs[0][1].v.pages[j] != vBefore[j+tc.discard/P] {
						t.Fatalf("V page %d was copied, not moved", j)
					}
				}
			}
			exact := testCache(t, tensor.F32, tensor.F32, false, 1, 1024, P)
			same := testCache(t, tc.typ, tc.typ, tc.rotate, 1, 1024, P)
			for q := 0; q < newN; q++ {
				from := q
				if q >= tc.keep {
					from = q + tc.discard
				}
				store(exact, q, from)
				store(same, q, from)
			}
			var errShift, errType float64
			for _, pos := range []int{newN - 1, newN / 2, tc.keep} {
				for h := 0; h < 2; h++ {
					q := randRow(r, 4*64, 0.3)
					got, want, typed := make([]float32, 4*64), make([]float32, 4*64), make([]float32, 4*64)
					c.Attend(1, 0, pos, h, q, got, 0)
					exact.Attend(1, 0, pos, h, q, want, 0)
					same.Attend(1, 0, pos, h, q, typed, 0)
					for i := range got {
						errShift = math.Max(errShift, math.Abs(float64(got[i]-want[i])))
						errType = math.Max(errType, math.Abs(float64(typed[i]-want[i])))
					}
				}
			}
			if errShift > 2.5*errType+1e-5 {
				t.Fatalf("shifted cache's attention is off by %.3g; the type's own error is %.3g", errShift, errType)
			}
			t.Logf("attention error after shift %.3g, the type's own %.3g", errShift, errType)
			// Bytes are accounted: the pages dropped were freed.
			var held int64
			for _, p := range c.Pages(0) {
				held += int64(p.Bytes)
			}
			if held != c.Bytes() {
				t.Fatalf("pages hold %d bytes, accounting says %d", held, c.Bytes())
			}
		})
	}
}

// A window layer whose kept prefix it released cannot be shifted back into
// its window: Shift refuses and changes nothing.
func TestShiftRefusesReleasedWindow(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	c := layerCache(t, tensor.F16, 4096, 64, []attn.Layer{{}, {Window: 100}})
	for pos := 0; pos < 600; pos++ {
		for l := 0; l < 2; l++ {
			c.Store(l, 0, pos, randRow(r, 128, 1), randRow(r, 128, 1))
		}
		c.Release(0)
	}
	before := c.Bytes()
	if err := c.Shift(0, 10, 520, func(int, []float32, int) {}); err == nil {
		t.Fatal("shift that needs released rows accepted")
	}
	if c.Len(0) != 600 || c.Bytes() != before {
		t.Fatal("refused shift changed the cache")
	}
	// A shift that keeps the window's rows works.
	if err := c.Shift(0, 0, 256, func(int, []float32, int) {}); err != nil {
		t.Fatal(err)
	}
	out := make([]float32, 64)
	c.Attend(1, 0, 343, 0, randRow(r, 64, 1), out, 0)
	for _, bad := range [][2]int{{-1, 5}, {0, 0}, {300, 100}} {
		if err := c.Shift(0, bad[0], bad[1], func(int, []float32, int) {}); err == nil {
			t.Errorf("shift %v of 344 positions accepted", bad)
		}
	}
}

// BenchmarkShift measures a context shift of a full 4096-token sequence of
// kvtest-27m's shape (8 layers, 2 KV heads of 64) dropping half of it:
// page-aligned (whole pages move, keys re-encoded in place) against
// unaligned (every later page rebuilt).
func BenchmarkShift(b *testing.B) {
	const P, n = 256, 4096
	// As the model's ReRope: the angles of delta once per call, then a
	// rotation of each row.
	rope := func(_ int, rows []float32, delta int) {
		var cs [64]float64
		for j := 0; j < 32; j++ {
			cs[2*j+1], cs[2*j] = math.Sincos(float64(delta) * math.Pow(10000, -2*float64(j)/64))
		}
		for off := 0; off+64 <= len(rows); off += 64 {
			for j := 0; j < 32; j++ {
				a, b := float64(rows[off+2*j]), float64(rows[off+2*j+1])
				rows[off+2*j] = float32(a*cs[2*j] - b*cs[2*j+1])
				rows[off+2*j+1] = float32(a*cs[2*j+1] + b*cs[2*j])
			}
		}
	}
	for _, typ := range []tensor.Type{tensor.F16, tensor.Q8_0, tensor.Q4_0} {
		for _, cs := range []struct {
			name          string
			keep, discard int
		}{{"aligned", 256, 1792}, {"keep unaligned", 100, 1792}, {"unaligned", 100, 1800}} {
			b.Run(typ.String()+"/"+cs.name, func(b *testing.B) {
				r := rand.New(rand.NewPCG(1, 2))
				c, err := New(Config{Layers: 8, KVHeads: 2, HeadDimK: 64, HeadDimV: 64, Seqs: 1, Ctx: n, PageTokens: P,
					Threads: 1, TypeK: uniform(8, typ), TypeV: uniform(8, typ), Rotate: true})
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				k, v := randRow(r, 128, 1), randRow(r, 128, 1)
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					c.Clear(0)
					for pos := 0; pos < n; pos++ {
						for l := 0; l < 8; l++ {
							c.Store(l, 0, pos, k, v)
						}
					}
					b.StartTimer()
					if err := c.Shift(0, cs.keep, cs.discard, rope); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
