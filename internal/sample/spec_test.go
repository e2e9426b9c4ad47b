package sample

import (
	"math"
	"testing"
)

// The speculative sampling rule gives tokens distributed exactly as the
// target's distribution, whatever the draft's: checked on a tiny vocabulary
// by the exact acceptance probability and by frequencies over many draws
// with fixed seeds.
func TestVerifyDistribution(t *testing.T) {
	target := []float32{2.0, 1.5, 0.3, -1, 0.9, 1.2}
	drafts := map[string][]float32{
		"close":    {1.8, 1.6, 0.2, -1, 1.0, 1.0},
		"far":      {-1, 0.2, 2.5, 1.5, -2, 0},
		"one-hot":  {0, 0, 9, 0, 0, 0},
		"disjoint": {-30, -30, 3, 3, -30, -30},
	}
	tp := DefaultParams()
	tp.TopK, tp.TopP, tp.MinP, tp.Temperature, tp.Seed = 0, 1, 0, 0.9, 1
	for name, dl := range drafts {
		t.Run(name, func(t *testing.T) {
			ts, _ := New(tp, len(target))
			dp := tp
			dp.Temperature, dp.TopK, dp.Seed = 1.1, 4, 2
			ds, _ := New(dp, len(dl))
			p := ts.Distribution(target, Dist{})
			q := ds.Distribution(dl, Dist{})
			var wantAcc float64 // sum over y of min(p(y), q(y))
			for i, id := range q.IDs {
				wantAcc += min(q.P[i], p.Prob(int(id)))
			}
			const n = 200000
			counts := make([]int, len(target))
			acc := 0
			for range n {
				x := ds.DrawFrom(q)
				tok, ok := ts.Verify(p, &q, x)
				counts[tok]++
				if ok {
					acc++
				}
			}
			checkFreq(t, counts, n, p)
			if got := float64(acc) / n; math.Abs(got-wantAcc) > 5*math.Sqrt(wantAcc*(1-wantAcc)/n)+1e-9 {
				t.Errorf("acceptance rate %.4f, want %.4f", got, wantAcc)
			}
		})
	}
	// A deterministic draft (prompt lookup): q is the point mass.
	for draft := range target {
		ts, _ := New(tp, len(target))
		p := ts.Distribution(target, Dist{})
		const n = 100000
		counts := make([]int, len(target))
		for range n {
			tok, ok := ts.Verify(p, nil, draft)
			if ok != (tok == draft) {
				t.Fatalf("accepted %v for token %d, draft %d", ok, tok, draft)
			}
			counts[tok]++
		}
		checkFreq(t, counts, n, p)
	}
}

// checkFreq checks counts against p within 5 standard deviations.
func checkFreq(t *testing.T, counts []int, n int, p Dist) {
	t.Helper()
	for tok, c := range counts {
		want := p.Prob(tok)
		got := float64(c) / float64(n)
		if sd := math.Sqrt(want * (1 - want) / float64(n)); math.Abs(got-want) > 5*sd+1e-9 {
			t.Errorf("token %d: frequency %.4f, want %.4f (±%.4f)", tok, got, want, sd)
		}
	}
}

// Distribution is what Sample draws from: the greedy token alone at
// temperature 0, and the draw frequencies otherwise (filters and penalties
// included).
func TestDistributionMatchesSample(t *testing.T) {
	logits := []float32{1, 3, 2.5, 0.5, 2.9, -1, 2.2, 0}
	p := DefaultParams()
	p.Seed, p.TopK, p.RepeatPenalty, p.RepeatLastN = 3, 5, 1.3, 8
	s, _ := New(p, len(logits))
	s.Accept(1)
	s.Accept(4)
	d := s.Distribution(logits, Dist{})
	if len(d.IDs) == 0 || len(d.IDs) > 5 {
		t.Fatalf("%d candidates with top-k 5", len(d.IDs))
	}
	sum := 0.0
	for _, x := range d.P {
		sum += x
	}
	if math.Abs(sum-1) > 1e-12 {
		t.Fatalf("probabilities add up to %v", sum)
	}
	const n = 100000
	counts := make([]int, len(logits))
	for range n {
		counts[s.Sample(logits)]++
	}
	checkFreq(t, counts, n, d)

	g := p
	g.Temperature = 0
	gs, _ := New(g, len(logits))
	gs.Accept(1)
	d = gs.Distribution(logits, d)
	if len(d.IDs) != 1 || int(d.IDs[0]) != gs.Sample(logits) || d.P[0] != 1 {
		t.Errorf("greedy distribution %v, Sample %d", d, gs.Sample(logits))
	}
	if tok, ok := gs.Verify(d, nil, int(d.IDs[0])); !ok || tok != int(d.IDs[0]) {
		t.Errorf("greedy Verify of the greedy token: %d %v", tok, ok)
	}
	if tok, ok := gs.Verify(d, nil, 0); ok || tok != int(d.IDs[0]) {
		t.Errorf("greedy Verify of another token: %d %v", tok, ok)
	}
}
