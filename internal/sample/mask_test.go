package sample

import (
	"math"
	"math/rand/v2"
	"testing"
)

// randMask allows each token with probability p (at least one token).
func randMask(rng *rand.Rand, n int, p float64) []uint64 {
	m := make([]uint64, (n+63)/64)
	any := false
	for i := range n {
		if rng.Float64() < p {
			m[i>>6] |= 1 << (i & 63)
			any = true
		}
	}
	if !any {
		i := rng.IntN(n)
		m[i>>6] |= 1 << (i & 63)
	}
	return m
}

func allowed(m []uint64, id int) bool { return id >= 0 && m[id>>6]&(1<<(id&63)) != 0 }

// SampleMasked never chooses a masked token, whatever the parameters and
// logits (including masks that keep only tokens far down the distribution,
// -Inf and NaN logits, and penalties).
func TestSampleMaskedNeverPicksMasked(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	params := []Params{
		{Temperature: 0},
		DefaultParams(),
		{Temperature: 1, TopK: 1, TopP: 1},
		{Temperature: 1.5, TopK: 3, TopP: 0.5, MinP: 0.2, MinKeep: 2},
		{Temperature: 0.7, TopP: 0.9, MinP: 0},
		{Temperature: 1, TopP: 1, MinP: 0.5, RepeatPenalty: 1.3, RepeatLastN: 16, PresencePenalty: 0.5, FrequencyPenalty: 0.2},
	}
	for pi, p := range params {
		p.Seed = uint64(pi)
		if p.TopP == 0 {
			p.TopP = 1
		}
		if p.RepeatPenalty == 0 {
			p.RepeatPenalty = 1
		}
		for _, n := range []int{1, 7, 64, 65, 1000} {
			s, err := New(p, n)
			if err != nil {
				t.Fatal(err)
			}
			for trial := range 200 {
				logits := randLogits(uint64(trial), n, 5)
				switch trial % 5 {
				case 1:
					for i := range logits {
						if rng.IntN(3) == 0 {
							logits[i] = float32(math.Inf(-1))
						}
					}
				case 2:
					for i := range logits {
						if rng.IntN(4) == 0 {
							logits[i] = float32(math.NaN())
						}
					}
				case 3:
					for i := range logits {
						logits[i] = float32(math.Inf(-1))
					}
				}
				density := []float64{0.001, 0.05, 0.5, 0.99}[trial%4]
				mask := randMask(rng, n, density)
				tok := s.SampleMasked(logits, mask)
				if !allowed(mask, tok) {
					t.Fatalf("params %d, n %d, trial %d: chose masked token %d", pi, n, trial, tok)
				}
				s.Accept(tok)
			}
		}
	}
}

// Greedy under a mask is the most probable allowed token; a mask allowing
// everything changes nothing (same choices as Sample, same random draws).
func TestSampleMaskedMatchesSample(t *testing.T) {
	const n = 3000
	full := make([]uint64, (n+63)/64)
	for i := range n {
		full[i>>6] |= 1 << (i & 63)
	}
	for pi, p := range []Params{{Temperature: 0, TopP: 1, RepeatPenalty: 1}, DefaultParams(), {Temperature: 1, TopK: 0, TopP: 0.9, RepeatPenalty: 1}, {Temperature: 0.5, TopK: 100, TopP: 1, MinP: 0.1, RepeatPenalty: 1.1, RepeatLastN: 8}} {
		p.Seed = 42
		a, _ := New(p, n)
		b, _ := New(p, n)
		for trial := range 100 {
			logits := randLogits(uint64(1000+trial), n, 3)
			ta, tb := a.Sample(logits), b.SampleMasked(logits, full)
			if ta != tb {
				t.Fatalf("params %d trial %d: Sample %d, SampleMasked(all) %d", pi, trial, ta, tb)
			}
			a.Accept(ta)
			b.Accept(tb)
		}
	}
	rng := rand.New(rand.NewPCG(9, 9))
	s, _ := New(Params{Temperature: 0, TopP: 1, RepeatPenalty: 1}, n)
	for trial := range 50 {
		logits := randLogits(uint64(trial), n, 3)
		mask := randMask(rng, n, 0.1)
		best := -1
		for i := range n {
			if allowed(mask, i) && (best < 0 || logits[i] > logits[best]) {
				best = i
			}
		}
		if got := s.SampleMasked(logits, mask); got != best {
			t.Fatalf("greedy: %d, want %d", got, best)
		}
	}
	if got := s.SampleMasked(randLogits(1, n, 1), make([]uint64, (n+63)/64)); got != -1 {
		t.Errorf("empty mask: %d, want -1", got)
	}
}
