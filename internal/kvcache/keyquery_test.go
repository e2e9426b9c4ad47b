package kvcache

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kvserve/kvserve/internal/kernels"
	"github.com/kvserve/kvserve/internal/tensor"
)

func keyQueryCache(t testing.TB, typ tensor.Type, kc KeyChannels, on bool) *Cache {
	c, err := New(Config{Layers: 2, KVHeads: 2, HeadDimK: 64, HeadDimV: 64, Seqs: 2, Ctx: 400,
		PageTokens: 128, Threads: 2, TypeK: uniform(2, typ), TypeV: uniform(2, typ), Rotate: true,
		KeyChannels: kc, KeyQuery: on})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// Query-aware key encoding: with KeyQuery off, observing queries changes
// no byte; with it on, codebook K rows differ, attention over them still
// equals the naive computation over the decoded keys (the format is
// unchanged), the score error against queries like the observed ones is
// lower, and emptying the sequence resets the statistic.
func TestKeyQuery(t *testing.T) {
	for _, kc := range []KeyChannels{KeyChannelsOff, KeyChannelsCentre} {
		for _, typ := range []tensor.Type{tensor.CB4, tensor.CB3, tensor.CB2, tensor.Q4_0, tensor.Q5_0} {
			r := rand.New(rand.NewPCG(21, 22))
			// queries share a direction per head, as real ones do
			dir := randRow(r, 2*4*64, 1)
			query := func() []float32 {
				q := randRow(r, 2*4*64, 0.3)
				for i := range q {
					q[i] += dir[i]
				}
				return q
			}
			plain, off, on := keyQueryCache(t, typ, kc, false), keyQueryCache(t, typ, kc, false), keyQueryCache(t, typ, kc, true)
			keys := make([][]float32, 300)
			for pos := range keys {
				keys[pos] = offsetKey(r, 128)
				v := offsetKey(r, 128)
				q := query()
				off.ObserveQuery(0, 0, pos, q)
				on.ObserveQuery(0, 0, pos, q)
				for _, c := range []*Cache{plain, off, on} {
					c.Store(0, 0, pos, keys[pos], v)
				}
			}
			differ := false
			for pos := 0; pos < 300; pos++ {
				for h := 0; h < 2; h++ {
					a := headBytes(plain, &plain.seqs[0][0].k, pos, h, 64)
					if !bytes.Equal(a, headBytes(off, &off.seqs[0][0].k, pos, h, 64)) {
						t.Fatalf("%s %s: KeyQuery off, observing queries changed pos %d", kc, typ, pos)
					}
					differ = differ || !bytes.Equal(a, headBytes(on, &on.seqs[0][0].k, pos, h, 64))
				}
			}
			if !differ {
				t.Fatalf("%s %s: KeyQuery on changed no K row", kc, typ)
			}
			// score error against fresh queries of the same law
			var eOff, eOn float64
			for i := 0; i < 40; i++ {
				q := query()
				for _, pos := range []int{3, 77, 150, 299} {
					for h := 0; h < 2; h++ {
						ko, kn := rawKey(off, 0, 0, pos, h), rawKey(on, 0, 0, pos, h)
						for g := 0; g < 4; g++ {
							var so, sn float64
							qg := q[(h*4+g)*64 : (h*4+g+1)*64]
							for j, qj := range qg {
								x := float64(keys[pos][h*64+j])
								so += float64(qj) * (float64(ko[j]) - x)
								sn += float64(qj) * (float64(kn[j]) - x)
							}
							eOff += so * so
							eOn += sn * sn
						}
					}
				}
			}
			if !(eOn < 0.8*eOff) {
				t.Fatalf("%s %s: score error %.4g with KeyQuery against %.4g without", kc, typ, eOn, eOff)
			}
			for _, pos := range []int{0, 127, 200, 299} {
				for h := 0; h < 2; h++ {
					q := randRow(r, 4*64, 0.2)
					out := make([]float32, 4*64)
					on.Attend(0, 0, pos, h, q, out, 1)
					for g := 0; g < 4; g++ {
						want := naiveAttention(on, 0, 0, pos, h, q[g*64:(g+1)*64])
						for i, w := range want {
							if math.Abs(float64(out[g*64+i])-w) > 1e-4*math.Max(math.Abs(w), 1) {
								t.Fatalf("%s %s pos %d: attention %g, naive %g", kc, typ, pos, out[g*64+i], w)
							}
						}
					}
				}
			}
			on.Clear(0)
			if on.keyStat(0, 0) != nil {
				t.Fatalf("%s %s: Clear kept the query statistic", kc, typ)
			}
		}
	}
}

// Conversions refine too: f16 K pages converted to cb4 (and q5_0) with
// KeyQuery on score the observed queries' law better than without, and
// attention over them equals the naive computation.
func TestKeyQueryConvert(t *testing.T) {
	for _, kc := range []KeyChannels{KeyChannelsOff, KeyChannelsCentre} {
		for _, to := range []tensor.Type{tensor.CB4, tensor.Q5_0} {
			r := rand.New(rand.NewPCG(31, 32))
			dir := randRow(r, 2*4*64, 1)
			query := func() []float32 {
				q := randRow(r, 2*4*64, 0.3)
				for i := range q {
					q[i] += dir[i]
				}
				return q
			}
			off, on := keyQueryCache(t, tensor.F16, kc, false), keyQueryCache(t, tensor.F16, kc, true)
			keys := make([][]float32, 256)
			for pos := range keys {
				keys[pos] = offsetKey(r, 128)
				v := offsetKey(r, 128)
				q := query()
				on.ObserveQuery(0, 0, pos, q)
				off.Store(0, 0, pos, keys[pos], v)
				on.Store(0, 0, pos, keys[pos], v)
			}
			for _, c := range []*Cache{off, on} {
				for i := 0; i < 2; i++ {
					if _, ok := c.Convert(PageRef{Seq: 0, Layer: 0, Index: i}, to); !ok {
						t.Fatalf("page %d not converted", i)
					}
				}
			}
			var eOff, eOn float64
			for i := 0; i < 40; i++ {
				q := query()
				for _, pos := range []int{3, 77, 150, 255} {
					for h := 0; h < 2; h++ {
						ko, kn := rawKey(off, 0, 0, pos, h), rawKey(on, 0, 0, pos, h)
						for g := 0; g < 4; g++ {
							var so, sn float64
							for j, qj := range q[(h*4+g)*64 : (h*4+g+1)*64] {
								x := float64(tensor.F16ToF32(tensor.F32ToF16(keys[pos][h*64+j])))
								so += float64(qj) * (float64(ko[j]) - x)
								sn += float64(qj) * (float64(kn[j]) - x)
							}
							eOff += so * so
							eOn += sn * sn
						}
					}
				}
			}
			if !(eOn < 0.8*eOff) {
				t.Fatalf("%s → %s: score error %.4g with KeyQuery against %.4g without", kc, to, eOn, eOff)
			}
			q := randRow(r, 4*64, 0.2)
			out := make([]float32, 4*64)
			on.Attend(0, 0, 200, 1, q, out, 1)
			for g := 0; g < 4; g++ {
				for i, w := range naiveAttention(on, 0, 0, 200, 1, q[g*64:(g+1)*64]) {
					if math.Abs(float64(out[g*64+i])-w) > 1e-4*math.Max(math.Abs(w), 1) {
						t.Fatalf("%s → %s: attention %g, naive %g", kc, to, out[g*64+i], w)
					}
				}
			}
		}
	}
}

// The query statistic's bytes: KVHeads × HeadDimK² float32s per sequence
// and attention layer, allocated at a layer's first query, counted apart
// from the pages (QueryStatBytes, per sequence, capacity), kept by a
// partial truncation and freed when the sequence is emptied; none when
// KeyQuery is off.
func TestKeyQueryBytes(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	const perLayer = 2 * 64 * 64 * 4 // KVHeads × D² × float32
	on, off := keyQueryCache(t, tensor.CB4, KeyChannelsCentre, true), keyQueryCache(t, tensor.CB4, KeyChannelsCentre, false)
	if got := on.QueryStatBytesPerSeq(); got != 2*perLayer {
		t.Fatalf("QueryStatBytesPerSeq %d, want %d", got, 2*perLayer)
	}
	if got := QueryStatCapacityFor(on.Config()); got != 2*2*perLayer {
		t.Fatalf("QueryStatCapacityFor %d, want %d", got, 2*2*perLayer)
	}
	if off.QueryStatBytesPerSeq() != 0 || QueryStatCapacityFor(off.Config()) != 0 {
		t.Fatal("KeyQuery off: statistic bytes counted")
	}
	pages := on.Bytes()
	store := func(c *Cache, seq, pos int, layers ...int) {
		for _, l := range layers {
			c.ObserveQuery(l, seq, pos, randRow(r, 2*4*64, 1))
			c.Store(l, seq, pos, offsetKey(r, 128), randRow(r, 128, 1))
		}
	}
	for pos := 0; pos < 10; pos++ {
		store(on, 0, pos, 0)
		store(off, 0, pos, 0)
	}
	if got := on.QueryStatBytes(); got != perLayer || on.SeqQueryStatBytes(0) != perLayer || on.SeqQueryStatBytes(1) != 0 {
		t.Fatalf("one layer observed: %d bytes (seq 0 %d, seq 1 %d), want %d", got, on.SeqQueryStatBytes(0), on.SeqQueryStatBytes(1), perLayer)
	}
	if on.Bytes() == pages || on.Bytes() != off.Bytes() {
		t.Fatalf("page bytes %d with the statistic, %d without: the statistic is not a page", on.Bytes(), off.Bytes())
	}
	for pos := 0; pos < 10; pos++ {
		store(on, 1, pos, 0, 1)
	}
	for pos := 0; pos < 10; pos++ {
		store(on, 0, pos, 1)
	}
	if got := on.QueryStatBytes(); got != 4*perLayer || on.SeqQueryStatBytes(1) != 2*perLayer {
		t.Fatalf("both sequences, both layers: %d bytes, want %d", got, 4*perLayer)
	}
	on.Truncate(0, 5)
	if on.SeqQueryStatBytes(0) != 2*perLayer {
		t.Fatalf("a partial truncation changed the statistic's bytes: %d", on.SeqQueryStatBytes(0))
	}
	on.Clear(0)
	if got := on.QueryStatBytes(); got != 2*perLayer || on.SeqQueryStatBytes(0) != 0 {
		t.Fatalf("after clearing sequence 0: %d bytes (seq 0 %d), want %d", got, on.SeqQueryStatBytes(0), 2*perLayer)
	}
	on.Close()
	if on.QueryStatBytes() != 0 {
		t.Fatalf("after Close: %d bytes", on.QueryStatBytes())
	}
	if off.QueryStatBytes() != 0 {
		t.Fatalf("KeyQuery off: %d bytes", off.QueryStatBytes())
	}
}

// The statistic follows the layer's K write type: kept in the H·S basis
// for codebook types and carried into the H basis (q4_0/q5_0) when the
// write type changes family, it equals the statistic accumulated in that
// basis from the start; a page of the other family is refined against
// the statistic carried into its basis.
func TestKeyQueryBasis(t *testing.T) {
	r := rand.New(rand.NewPCG(43, 44))
	cb, q5 := keyQueryCache(t, tensor.CB4, KeyChannelsOff, true), keyQueryCache(t, tensor.Q5_0, KeyChannelsOff, true)
	for pos := 0; pos < 50; pos++ {
		q := randRow(r, 2*4*64, 1)
		cb.ObserveQuery(0, 0, pos, q)
		q5.ObserveQuery(0, 0, pos, q)
	}
	if cb.qstats[0][0].kind != 2 || q5.qstats[0][0].kind != 1 {
		t.Fatalf("bases %d and %d, want 2 (H·S) and 1 (H)", cb.qstats[0][0].kind, q5.qstats[0][0].kind)
	}
	// Carried into H by hand, as refineStat does for a q5_0 page.
	D := 64
	for h := 0; h < 2; h++ {
		got := append([]float32(nil), cb.qstats[0][0].c[h*D*D:(h+1)*D*D]...)
		rebasis(got, 2, 1, D)
		want := q5.qstats[0][0].c[h*D*D : (h+1)*D*D]
		var scale float64
		for _, v := range want {
			scale = math.Max(scale, math.Abs(float64(v)))
		}
		for i := range got {
			if math.Abs(float64(got[i]-want[i])) > 1e-5*scale {
				t.Fatalf("head %d entry %d: %g carried into H, %g accumulated in H", h, i, got[i], want[i])
			}
		}
	}
	// The write type changes family: the statistic is carried over.
	if err := cb.SetWriteTypes(Target{K: typ(tensor.Q5_0)}); err != nil {
		t.Fatal(err)
	}
	q := randRow(r, 2*4*64, 1)
	cb.ObserveQuery(0, 0, 50, q)
	q5.ObserveQuery(0, 0, 50, q)
	if cb.qstats[0][0].kind != 1 {
		t.Fatalf("basis %d after the write type became q5_0", cb.qstats[0][0].kind)
	}
	for i, w := range q5.qstats[0][0].c {
		if g := cb.qstats[0][0].c[i]; math.Abs(float64(g-w)) > 1e-4*math.Max(1, math.Abs(float64(w))) {
			t.Fatalf("entry %d: %g carried over, %g accumulated in H", i, g, w)
		}
	}
}

// The statistic is the plain sum of r rᵀ: ObserveQuery's one-pass update
// of each KV head (kernels.AccumRowsF32Multi) equals g rank-1 updates per
// token, query by query (kernels.Axpy), bit for bit, and is symmetric.
func TestKeyQueryStatistic(t *testing.T) {
	r := rand.New(rand.NewPCG(45, 46))
	c := keyQueryCache(t, tensor.CB4, KeyChannelsOff, true)
	const D, H, g = 64, 2, 4
	want := make([]float32, H*D*D)
	for pos := 0; pos < 40; pos++ {
		q := randRow(r, H*g*D, 1)
		c.ObserveQuery(0, 0, pos, q)
		for h := 0; h < H; h++ {
			for j := 0; j < g; j++ {
				x := append([]float32(nil), q[(h*g+j)*D:(h*g+j+1)*D]...)
				rotateKind(2, x, D)
				for a := range x {
					kernels.Axpy(x[a], x, want[h*D*D+a*D:h*D*D+(a+1)*D])
				}
			}
		}
	}
	got := c.qstats[0][0].c
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("entry %d: %g, rank-1 updates give %g", i, got[i], want[i])
		}
	}
	for h := 0; h < H; h++ {
		for a := 0; a < D; a++ {
			for b := 0; b < a; b++ {
				if got[h*D*D+a*D+b] != got[h*D*D+b*D+a] {
					t.Fatalf("head %d: C[%d][%d] %g, C[%d][%d] %g", h, a, b, got[h*D*D+a*D+b], b, a, got[h*D*D+b*D+a])
				}
			}
		}
	}
}
