package deltanet

import (
	"math"
	"math/rand/v2"
	"testing"
)

type headInput struct {
	n, dk, dv int
	q, k, v   []float32
	g, beta   []float32
}

func randomHead(rng *rand.Rand, n, dk, dv int) *headInput {
	h := &headInput{n: n, dk: dk, dv: dv, q: make([]float32, n*dk), k: make([]float32, n*dk), v: make([]float32, n*dv),
		g: make([]float32, n), beta: make([]float32, n)}
	for i := range h.q {
		h.q[i] = float32(rng.NormFloat64())
		h.k[i] = float32(rng.NormFloat64())
	}
	for i := range h.v {
		h.v[i] = float32(rng.NormFloat64())
	}
	scale := float32(1 / math.Sqrt(float64(dv)))
	for t := 0; t < n; t++ {
		L2Norm(h.q[t*dk:(t+1)*dk], 1e-6)
		L2Norm(h.k[t*dk:(t+1)*dk], 1e-6)
		for i := t * dk; i < (t+1)*dk; i++ {
			h.q[i] *= scale
		}
		// As the model makes them: g = −exp(A)·softplus(a + dt), β = σ(b).
		h.g[t] = -0.3 * Softplus(float32(rng.NormFloat64()))
		h.beta[t] = Sigmoid(float32(rng.NormFloat64()))
	}
	return h
}

func maxDiff(a, b []float32) float64 {
	d := 0.0
	for i := range a {
		d = max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

// The chunked form (prefill) equals the recurrent form (decode) — outputs
// and the final state — across chunk boundaries, with a non-zero initial
// state, and when the tokens arrive in several calls.
func TestChunkedEqualsRecurrent(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct{ n, dk, dv int }{{1, 8, 8}, {5, 16, 16}, {64, 32, 32}, {150, 32, 16}, {200, 64, 64}} {
		h := randomHead(rng, tc.n, tc.dk, tc.dv)
		S0 := make([]float32, tc.dk*tc.dv)
		for i := range S0 {
			S0[i] = 0.1 * float32(rng.NormFloat64())
		}
		Sr := append([]float32(nil), S0...)
		outR := make([]float32, tc.n*tc.dv)
		kv := make([]float32, tc.dv)
		for t := 0; t < tc.n; t++ {
			Step(Sr, h.q[t*tc.dk:(t+1)*tc.dk], h.k[t*tc.dk:(t+1)*tc.dk], h.v[t*tc.dv:(t+1)*tc.dv], h.g[t], h.beta[t], outR[t*tc.dv:], kv)
		}
		s := NewScratch(tc.dk, tc.dv)
		for _, split := range []int{tc.n, (tc.n + 1) / 2, 1} {
			Sc := append([]float32(nil), S0...)
			outC := make([]float32, tc.n*tc.dv)
			for t0 := 0; t0 < tc.n; t0 += split {
				m := min(split, tc.n-t0)
				s.Chunked(Sc, m, h.q[t0*tc.dk:], tc.dk, h.k[t0*tc.dk:], tc.dk, h.v[t0*tc.dv:], tc.dv, h.g[t0:], h.beta[t0:], outC[t0*tc.dv:], tc.dv)
			}
			if d := maxDiff(outR, outC); d > 2e-6 {
				t.Errorf("n=%d dk=%d dv=%d split %d: outputs differ by %g", tc.n, tc.dk, tc.dv, split, d)
			}
			if d := maxDiff(Sr, Sc); d > 2e-6 {
				t.Errorf("n=%d dk=%d dv=%d split %d: states differ by %g", tc.n, tc.dk, tc.dv, split, d)
			}
		}
	}
}

// Step against the definition written out in float64.
func TestStepMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const dk, dv, n = 6, 5, 20
	h := randomHead(rng, n, dk, dv)
	S := make([]float32, dk*dv)
	R := make([]float64, dk*dv)
	out := make([]float32, dv)
	kv := make([]float32, dv)
	for tk := 0; tk < n; tk++ {
		q, k, v := h.q[tk*dk:(tk+1)*dk], h.k[tk*dk:(tk+1)*dk], h.v[tk*dv:(tk+1)*dv]
		Step(S, q, k, v, h.g[tk], h.beta[tk], out, kv)
		e := math.Exp(float64(h.g[tk]))
		for i := range R {
			R[i] *= e
		}
		for j := 0; j < dv; j++ {
			var m float64
			for i := 0; i < dk; i++ {
				m += R[i*dv+j] * float64(k[i])
			}
			d := (float64(v[j]) - m) * float64(h.beta[tk])
			for i := 0; i < dk; i++ {
				R[i*dv+j] += float64(k[i]) * d
			}
		}
		for j := 0; j < dv; j++ {
			var o float64
			for i := 0; i < dk; i++ {
				o += R[i*dv+j] * float64(q[i])
			}
			if math.Abs(o-float64(out[j])) > 1e-5 {
				t.Fatalf("token %d out[%d] = %g, want %g", tk, j, out[j], o)
			}
		}
	}
}

// The convolution in one call equals token-by-token calls (the state
// carries the window), and matches the definition.
func TestConvStateCarries(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const n, ch, K = 9, 3, 4
	x := make([]float32, n*ch)
	w := make([]float32, ch*K)
	st0 := make([]float32, ch*(K-1))
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	for i := range w {
		w[i] = float32(rng.NormFloat64())
	}
	for i := range st0 {
		st0[i] = float32(rng.NormFloat64())
	}
	want := make([]float32, n*ch)
	for c := 0; c < ch; c++ {
		in := append(append([]float32(nil), st0[c*(K-1):(c+1)*(K-1)]...), make([]float32, n)...)
		for tk := 0; tk < n; tk++ {
			in[K-1+tk] = x[tk*ch+c]
		}
		for tk := 0; tk < n; tk++ {
			var s float32
			for i := 0; i < K; i++ {
				s += in[tk+i] * w[c*K+i]
			}
			want[tk*ch+c] = silu(s)
		}
	}
	a := append([]float32(nil), x...)
	sa := append([]float32(nil), st0...)
	Conv(a, n, ch, w, K, sa)
	b := append([]float32(nil), x...)
	sb := append([]float32(nil), st0...)
	for tk := 0; tk < n; tk++ {
		Conv(b[tk*ch:(tk+1)*ch], 1, ch, w, K, sb)
	}
	if d := maxDiff(a, want); d > 1e-6 {
		t.Errorf("conv differs from definition by %g", d)
	}
	if d := maxDiff(a, b); d != 0 {
		t.Errorf("one call vs token by token differ by %g", d)
	}
	if d := maxDiff(sa, sb); d != 0 {
		t.Errorf("states differ by %g", d)
	}
}
