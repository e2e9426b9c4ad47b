package sample

import (
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// plain returns parameters with every filter and penalty disabled.
func plain(temp float32, seed uint64) Params {
	return Params{Temperature: temp, TopK: 0, TopP: 1, MinP: 0, RepeatPenalty: 1, RepeatLastN: 64, Seed: seed}
}

func mustNew(t testing.TB, p Params, vocab int) *Sampler {
	t.Helper()
	s, err := New(p, vocab)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func randLogits(seed uint64, n int, scale float64) []float32 {
	r := rand.New(rand.NewPCG(seed, 1))
	l := make([]float32, n)
	for i := range l {
		l[i] = float32(r.NormFloat64() * scale)
	}
	return l
}

func softmax64(l []float32, temp float64) []float64 {
	mx := math.Inf(-1)
	for _, v := range l {
		mx = math.Max(mx, float64(v)/temp)
	}
	p := make([]float64, len(l))
	z := 0.0
	for i, v := range l {
		p[i] = math.Exp(float64(v)/temp - mx)
		z += p[i]
	}
	for i := range p {
		p[i] /= z
	}
	return p
}

func TestDefaultParams(t *testing.T) {
	p := DefaultParams()
	want := Params{Temperature: 0.8, TopK: 40, TopP: 0.95, MinP: 0.05, RepeatPenalty: 1, RepeatLastN: 64, Seed: 0xFFFFFFFF,
		TypicalP: 1, DynatempExponent: 1, XTCThreshold: 0.1, TopNSigma: -1, MirostatTau: 5, MirostatEta: 0.1,
		DRYBase: 1.75, DRYAllowedLength: 2, DRYPenaltyLastN: -1, DRYSequenceBreakers: []string{"\n", ":", "\"", "*"}}
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("DefaultParams() = %+v, want %+v", p, want)
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidate(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	ok := []func(*Params){
		func(p *Params) { p.TopK = -1 },
		func(p *Params) { p.TopK = 0 },
		func(p *Params) { p.Temperature = 0 },
		func(p *Params) { p.Temperature = -2 },
		func(p *Params) { p.TopP = 0 },
		func(p *Params) { p.TopP = 1 },
		func(p *Params) { p.MinP = 1 },
		func(p *Params) { p.RepeatLastN = -1 },
		func(p *Params) { p.RepeatLastN = 0 },
		func(p *Params) { p.PresencePenalty, p.FrequencyPenalty = -2, 2 },
		func(p *Params) { p.Seed = 0 },
	}
	for i, f := range ok {
		p := DefaultParams()
		f(&p)
		if err := p.Validate(); err != nil {
			t.Errorf("valid case %d: %v", i, err)
		}
	}
	bad := []struct {
		f    func(*Params)
		want string
	}{
		{func(p *Params) { p.Temperature = nan }, "temperature must be a finite number"},
		{func(p *Params) { p.Temperature = inf }, "temperature must be a finite number"},
		{func(p *Params) { p.TopP = 1.5 }, "top_p must be between 0 and 1, got 1.5"},
		{func(p *Params) { p.TopP = -0.1 }, "top_p must be between 0 and 1"},
		{func(p *Params) { p.TopP = nan }, "top_p must be a finite number"},
		{func(p *Params) { p.MinP = 2 }, "min_p must be between 0 and 1"},
		{func(p *Params) { p.MinP = nan }, "min_p must be a finite number"},
		{func(p *Params) { p.MinKeep = -1 }, "min_keep must be >= 0"},
		{func(p *Params) { p.RepeatPenalty = 0 }, "repeat_penalty must be > 0"},
		{func(p *Params) { p.RepeatPenalty = -1 }, "repeat_penalty must be > 0"},
		{func(p *Params) { p.RepeatPenalty = nan }, "repeat_penalty must be a finite number"},
		{func(p *Params) { p.RepeatLastN = -2 }, "repeat_last_n must be >= -1"},
		{func(p *Params) { p.PresencePenalty = nan }, "presence_penalty must be a finite number"},
		{func(p *Params) { p.FrequencyPenalty = -inf }, "frequency_penalty must be a finite number"},
	}
	for _, c := range bad {
		p := DefaultParams()
		c.f(&p)
		err := p.Validate()
		if err == nil {
			t.Errorf("want error %q, got none", c.want)
			continue
		}
		if !errors.Is(err, ErrInvalidParams) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %q: want it to wrap ErrInvalidParams and contain %q", err, c.want)
		}
		if _, err := New(p, 10); err == nil {
			t.Errorf("New accepted %+v", p)
		}
	}
	// Several bad values are all reported.
	p := DefaultParams()
	p.TopP, p.MinP = 2, -1
	err := p.Validate()
	if err == nil || !strings.Contains(err.Error(), "top_p") || !strings.Contains(err.Error(), "min_p") {
		t.Errorf("want both errors, got %v", err)
	}
	if _, err := New(DefaultParams(), 0); err == nil {
		t.Error("New accepted a vocabulary of 0")
	}
}

func TestGreedy(t *testing.T) {
	for _, temp := range []float32{0, -1} {
		p := DefaultParams()
		p.Temperature = temp
		for seed := uint64(0); seed < 5; seed++ {
			l := randLogits(seed, 1000, 3)
			p.Seed = seed
			s := mustNew(t, p, len(l))
			want := 0
			for i, v := range l {
				if v > l[want] {
					want = i
				}
			}
			for range 3 {
				if got := s.Sample(l); got != want {
					t.Fatalf("temp %v: got %d, want argmax %d", temp, got, want)
				}
			}
		}
		s := mustNew(t, p, 6)
		nan := float32(math.NaN())
		if got := s.Sample([]float32{nan, 1, 3, 2, 3, nan}); got != 2 {
			t.Errorf("ties and NaN: got %d, want 2 (lowest id of the max)", got)
		}
		if got := s.Sample([]float32{nan, nan}); got != 0 {
			t.Errorf("all NaN: got %d, want 0", got)
		}
	}
	// Greedy still sees the penalties.
	p := DefaultParams()
	p.Temperature = 0
	p.RepeatPenalty = 2
	s := mustNew(t, p, 3)
	s.Accept(0)
	if got := s.Sample([]float32{3, 2, 1}); got != 1 {
		t.Errorf("greedy after a repeat penalty: got %d, want 1", got)
	}
	if got := s.Sample(nil); got != -1 {
		t.Errorf("empty logits: got %d, want -1", got)
	}
}

func sequence(s *Sampler, l []float32, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = s.Sample(l)
		s.Accept(out[i])
	}
	return out
}

func TestDeterminism(t *testing.T) {
	l := randLogits(7, 5000, 2)
	p := DefaultParams()
	p.Temperature = 1.3
	p.RepeatPenalty = 1.1
	p.Seed = 1234
	a := sequence(mustNew(t, p, len(l)), l, 200)
	b := sequence(mustNew(t, p, len(l)), l, 200)
	if !slices.Equal(a, b) {
		t.Fatal("two samplers with the same seed differ")
	}
	s := mustNew(t, p, len(l))
	sequence(s, l, 50)
	s.Reset()
	if c := sequence(s, l, 200); !slices.Equal(a, c) {
		t.Fatal("Reset does not restart the sequence")
	}
	p.Seed = 1235
	if d := sequence(mustNew(t, p, len(l)), l, 200); slices.Equal(a, d) {
		t.Fatal("different seeds give the same sequence")
	}
}

// TestGolden pins the draws of a fixed seed, so that a change of generator,
// exponential or candidate order (which would break reproducibility across
// versions) is noticed.
func TestGolden(t *testing.T) {
	l := make([]float32, 50)
	for i := range l {
		l[i] = float32(i%7) * 0.5
	}
	p := plain(1, 42)
	got := make([]int, 16)
	s := mustNew(t, p, len(l))
	for i := range got {
		got[i] = s.Sample(l)
	}
	want := []int{19, 45, 6, 5, 34, 48, 10, 46, 20, 12, 11, 40, 20, 20, 26, 34}
	if !slices.Equal(got, want) {
		t.Errorf("plain draws with seed 42 = %v, want %v", got, want)
	}
	s = mustNew(t, DefaultParams(), len(l))
	p = DefaultParams()
	p.Seed = 42
	s = mustNew(t, p, len(l))
	for i := range got {
		got[i] = s.Sample(l)
	}
	want = []int{34, 39, 13, 13, 40, 45, 20, 46, 41, 27, 20, 11, 41, 41, 48, 33}
	if !slices.Equal(got, want) {
		t.Errorf("default-chain draws with seed 42 = %v, want %v", got, want)
	}
}

func TestRandomSeed(t *testing.T) {
	l := make([]float32, 1000)
	a := mustNew(t, plain(1, RandomSeed), len(l))
	b := mustNew(t, plain(1, RandomSeed), len(l))
	if a.Seed() == RandomSeed || a.Seed() > 0xFFFFFFFF {
		t.Errorf("random seed %#x", a.Seed())
	}
	// 20 uniform draws out of 1000 agree by chance with probability 1e-60.
	if slices.Equal(sequence(a, l, 20), sequence(b, l, 20)) {
		t.Error("two random-seeded samplers gave the same sequence")
	}
	s := mustNew(t, plain(1, 99), len(l))
	if s.Seed() != 99 {
		t.Errorf("Seed() = %d, want 99", s.Seed())
	}
}

func ids(c []cand) []int {
	out := make([]int, len(c))
	for i, x := range c {
		out[i] = int(x.id)
	}
	slices.Sort(out)
	return out
}

// kept returns the candidates the filters leave for logits (sorted ids).
func kept(t *testing.T, p Params, l []float32) []int {
	t.Helper()
	s := mustNew(t, p, len(l))
	return ids(s.filter(l))
}

// logitsOf returns logits whose softmax is probs.
func logitsOf(probs ...float64) []float32 {
	l := make([]float32, len(probs))
	for i, p := range probs {
		l[i] = float32(math.Log(p))
	}
	return l
}

func TestTopK(t *testing.T) {
	l := []float32{0.5, 3, -1, 2, 2, 7, 0, 1}
	for k, want := range map[int][]int{
		1: {5}, 2: {1, 5}, 3: {1, 3, 5}, 4: {1, 3, 4, 5},
		8: {0, 1, 2, 3, 4, 5, 6, 7}, 100: {0, 1, 2, 3, 4, 5, 6, 7}, 0: {0, 1, 2, 3, 4, 5, 6, 7}, -1: {0, 1, 2, 3, 4, 5, 6, 7},
	} {
		p := plain(1, 1)
		p.TopK = k
		if got := kept(t, p, l); !slices.Equal(got, want) {
			t.Errorf("top_k %d kept %v, want %v", k, got, want)
		}
	}
	// Ties at the boundary go to the lower id.
	p := plain(1, 1)
	p.TopK = 3
	if got := kept(t, p, []float32{1, 5, 1, 1, 5}); !slices.Equal(got, []int{0, 1, 4}) {
		t.Errorf("tie at the top-k boundary kept %v", got)
	}
	// Sampling only ever returns the top k, and each of them.
	p.TopK = 3
	l = randLogits(3, 100, 0.1)
	top := kept(t, p, l)
	s := mustNew(t, p, len(l))
	seen := map[int]int{}
	for range 3000 {
		seen[s.Sample(l)]++
	}
	if len(seen) != 3 {
		t.Errorf("sampled %d distinct tokens with top_k 3: %v", len(seen), seen)
	}
	for _, id := range top {
		if seen[id] == 0 {
			t.Errorf("token %d of the top 3 never sampled", id)
		}
	}
}

func TestTopP(t *testing.T) {
	l := logitsOf(0.05, 0.5, 0.15, 0.3)
	for _, c := range []struct {
		p    float32
		want []int
	}{
		{0, []int{1}}, {0.3, []int{1}}, {0.45, []int{1}}, {0.55, []int{1, 3}}, {0.75, []int{1, 3}},
		{0.85, []int{1, 2, 3}}, {0.9, []int{1, 2, 3}}, {0.97, []int{0, 1, 2, 3}}, {1, []int{0, 1, 2, 3}},
	} {
		p := plain(1, 1)
		p.TopP = c.p
		if got := kept(t, p, l); !slices.Equal(got, c.want) {
			t.Errorf("top_p %v kept %v, want %v", c.p, got, c.want)
		}
		// The same after top-k (the sorted path).
		p.TopK = 4
		if got := kept(t, p, append(l, -50)); !slices.Equal(got, c.want) {
			t.Errorf("top_k 4 + top_p %v kept %v, want %v", c.p, got, c.want)
		}
	}
	// min_keep.
	p := plain(1, 1)
	p.TopP, p.MinKeep = 0.1, 3
	if got := kept(t, p, l); !slices.Equal(got, []int{1, 2, 3}) {
		t.Errorf("top_p with min_keep 3 kept %v", got)
	}
	// top-p renormalizes over what top-k left: of the top 2 (0.5 and 0.3),
	// 0.5/0.8 = 0.625 >= 0.6.
	p = plain(1, 1)
	p.TopK, p.TopP = 2, 0.6
	if got := kept(t, p, l); !slices.Equal(got, []int{1}) {
		t.Errorf("top_k 2 + top_p 0.6 kept %v, want [1]", got)
	}
	// The progressive partial sort on a large flat vocabulary.
	big := randLogits(11, 100000, 0.5)
	p = plain(1, 1)
	p.TopP = 0.9
	got := kept(t, p, big)
	want := refKept(p, big, nil)
	if !slices.Equal(got, want) {
		t.Errorf("top_p 0.9 on 100k flat logits kept %d tokens, reference %d", len(got), len(want))
	}
}

// The mass quickselect keeps the minimal set for any target, including 0
// (top_p 0: only the best token) and one never reached.
func TestNucleus(t *testing.T) {
	l := randLogits(41, 5000, 1)
	w := make([]float64, len(l))
	z := 0.0
	for i, v := range l {
		w[i] = math.Exp(float64(v))
		z += w[i]
	}
	order := make([]cand, len(l))
	for i, v := range l {
		order[i] = cand{int32(i), v}
	}
	slices.SortFunc(order, cmpCand)
	for _, frac := range []float64{0, 1e-9, 0.3, 0.9, 0.999999, 1.5} {
		c := make([]cand, len(l))
		for i, v := range l {
			c[i] = cand{int32(i), v}
		}
		n := nucleus(c, w, frac*z)
		want, cum := len(l), 0.0
		for i, x := range order {
			cum += w[x.id]
			if cum >= frac*z {
				want = i + 1
				break
			}
		}
		if n != want || !slices.Equal(ids(c[:n]), ids(order[:want])) {
			t.Errorf("target %g of the mass: kept %d, want the %d best", frac, n, want)
		}
	}
}

func TestMinP(t *testing.T) {
	l := logitsOf(0.05, 0.5, 0.15, 0.3)
	for _, c := range []struct {
		p    float32
		want []int
	}{
		{0.05, []int{0, 1, 2, 3}}, {0.2, []int{1, 2, 3}}, {0.5, []int{1, 3}}, {0.7, []int{1}}, {1, []int{1}},
	} {
		p := plain(1, 1)
		p.MinP = c.p
		if got := kept(t, p, l); !slices.Equal(got, c.want) {
			t.Errorf("min_p %v kept %v, want %v", c.p, got, c.want)
		}
		p.TopK = 10 // sorted path
		if got := kept(t, p, l); !slices.Equal(got, c.want) {
			t.Errorf("top_k 10 + min_p %v kept %v, want %v", c.p, got, c.want)
		}
		// Min-p is relative to the probabilities before temperature.
		p.Temperature = 5
		if got := kept(t, p, l); !slices.Equal(got, c.want) {
			t.Errorf("temp 5 + min_p %v kept %v, want %v", c.p, got, c.want)
		}
	}
	p := plain(1, 1)
	p.MinP, p.MinKeep = 0.9, 3
	if got := kept(t, p, l); !slices.Equal(got, []int{1, 2, 3}) {
		t.Errorf("min_p 0.9 with min_keep 3 kept %v", got)
	}
}

// refKept is a direct transcription of llama.cpp's chain (full sorts, no
// shortcuts): penalties over history, top-k, top-p, min-p.
func refKept(p Params, logits []float32, history []int) []int {
	l := slices.Clone(logits)
	if p.penalized() {
		win := history
		if p.RepeatLastN > 0 && len(win) > p.RepeatLastN {
			win = win[len(win)-p.RepeatLastN:]
		}
		counts := map[int]int{}
		for _, t := range win {
			counts[t]++
		}
		for t, c := range counts {
			v := l[t]
			if v <= 0 {
				v = float32(v * p.RepeatPenalty)
			} else {
				v /= p.RepeatPenalty
			}
			v -= float32(float32(c)*p.FrequencyPenalty) + p.PresencePenalty
			l[t] = v
		}
	}
	c := make([]cand, len(l))
	for i, v := range l {
		c[i] = cand{int32(i), clean(v)}
	}
	slices.SortStableFunc(c, func(a, b cand) int {
		if a.logit > b.logit {
			return -1
		}
		if a.logit < b.logit {
			return 1
		}
		return 0
	})
	if p.TopK > 0 {
		c = c[:min(p.TopK, len(c))]
	}
	if p.TopP < 1 {
		mx := float64(c[0].logit)
		z := 0.0
		for _, x := range c {
			z += math.Exp(float64(x.logit) - mx)
		}
		cum := 0.0
		for i, x := range c {
			cum += math.Exp(float64(x.logit)-mx) / z
			if cum >= float64(p.TopP) && i+1 >= p.MinKeep {
				c = c[:i+1]
				break
			}
		}
	}
	if p.MinP > 0 {
		minLogit := c[0].logit + float32(math.Log(float64(p.MinP)))
		i := 1
		for ; i < len(c); i++ {
			if c[i].logit < minLogit && i >= p.MinKeep {
				break
			}
		}
		c = c[:i]
	}
	return ids(c)
}

// The optimized filters (heap top-k, partial sorts, unsorted min-p) keep
// exactly what the plain transcription keeps, on random logits (with many
// ties), parameters and histories.
func TestFiltersMatchReference(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	for iter := range 400 {
		n := 1 + r.IntN(3000)
		l := make([]float32, n)
		q := r.IntN(3) // 0: continuous; 1, 2: coarse values with ties
		for i := range l {
			v := r.NormFloat64() * (0.2 + 3*r.Float64())
			if q > 0 {
				v = math.Round(v * float64(q))
			}
			l[i] = float32(v)
		}
		p := Params{
			Temperature:      0.1 + 2*r.Float32(),
			TopK:             []int{0, -1, 1, 5, 40, n, n + 3, r.IntN(n + 1)}[r.IntN(8)],
			TopP:             []float32{1, 1, 0.95, 0.5, 0, r.Float32()}[r.IntN(6)],
			MinP:             []float32{0, 0, 0.05, 0.5, 1, r.Float32()}[r.IntN(6)],
			MinKeep:          []int{0, 0, 1, 3, 50}[r.IntN(5)],
			RepeatPenalty:    []float32{1, 1.1, 1.5, 0.8}[r.IntN(4)],
			RepeatLastN:      []int{0, 64, -1, 3}[r.IntN(4)],
			PresencePenalty:  []float32{0, 0.5, -0.5}[r.IntN(3)],
			FrequencyPenalty: []float32{0, 0.3}[r.IntN(2)],
			Seed:             uint64(iter),
		}
		var hist []int
		s := mustNew(t, p, n)
		for range r.IntN(100) {
			tok := r.IntN(min(n, 20))
			hist = append(hist, tok)
			s.Accept(tok)
		}
		src := l
		if len(s.distinct) > 0 {
			src = s.penalize(l)
		}
		got := ids(s.filter(src))
		want := refKept(p, l, hist)
		if !slices.Equal(got, want) {
			t.Fatalf("iteration %d, n %d, %+v: kept %v, reference %v", iter, n, p, trim(got), trim(want))
		}
		// And the sampled token is one of them.
		if tok := s.Sample(l); !slices.Contains(want, tok) {
			t.Fatalf("iteration %d: sampled %d, not among the kept", iter, tok)
		}
	}
}

func trim(x []int) []int {
	if len(x) > 20 {
		return x[:20]
	}
	return x
}

func TestPenalties(t *testing.T) {
	base := []float32{4, -1, 2, 0, 3}
	pen := func(p Params, hist ...int) []float32 {
		s := mustNew(t, p, len(base))
		for _, h := range hist {
			s.Accept(h)
		}
		if len(s.distinct) == 0 {
			return slices.Clone(base)
		}
		return slices.Clone(s.penalize(base))
	}
	p := plain(1, 1)
	p.RepeatPenalty = 2
	if got, want := pen(p, 0, 1, 3, 0), []float32{2, -2, 2, 0, 3}; !slices.Equal(got, want) {
		t.Errorf("repeat penalty 2: %v, want %v", got, want)
	}
	p = plain(1, 1)
	p.FrequencyPenalty = 0.5
	if got, want := pen(p, 0, 0, 0, 2), []float32{2.5, -1, 1.5, 0, 3}; !slices.Equal(got, want) {
		t.Errorf("frequency penalty 0.5: %v, want %v", got, want)
	}
	p = plain(1, 1)
	p.PresencePenalty = 1
	if got, want := pen(p, 0, 0, 0, 1), []float32{3, -2, 2, 0, 3}; !slices.Equal(got, want) {
		t.Errorf("presence penalty 1: %v, want %v", got, want)
	}
	p = plain(1, 1)
	p.RepeatPenalty, p.FrequencyPenalty, p.PresencePenalty = 2, 0.25, 0.5
	// token 4 seen twice: 3/2 - 2*0.25 - 0.5 = 0.5
	if got, want := pen(p, 4, 4), []float32{4, -1, 2, 0, 0.5}; !slices.Equal(got, want) {
		t.Errorf("all three: %v, want %v", got, want)
	}
	// Window: only the last RepeatLastN tokens count.
	p = plain(1, 1)
	p.RepeatPenalty, p.RepeatLastN = 2, 2
	if got, want := pen(p, 0, 2, 4), []float32{4, -1, 1, 0, 1.5}; !slices.Equal(got, want) {
		t.Errorf("window of 2: %v, want %v", got, want)
	}
	p.FrequencyPenalty = 1
	if got, want := pen(p, 2, 2, 2, 2, 2, 0, 4, 4), []float32{4, -1, 2, 0, -0.5}; !slices.Equal(got, want) {
		t.Errorf("window of 2 with frequency: %v, want %v", got, want)
	}
	// -1: the whole history; 0: none.
	p = plain(1, 1)
	p.FrequencyPenalty, p.RepeatLastN = 1, -1
	hist := make([]int, 500)
	if got := pen(p, hist...); got[0] != 4-500 {
		t.Errorf("repeat_last_n -1: token 0 after 500 uses = %v, want %v", got[0], 4-500)
	}
	p.RepeatLastN = 0
	if got := pen(p, hist...); !slices.Equal(got, base) {
		t.Errorf("repeat_last_n 0 changed the logits: %v", got)
	}
	// Out-of-vocabulary tokens are ignored; Reset forgets.
	p = plain(1, 1)
	p.RepeatPenalty = 2
	s := mustNew(t, p, len(base))
	s.Accept(-1)
	s.Accept(99)
	s.Accept(0)
	if got := s.penalize(base); got[0] != 2 {
		t.Errorf("penalty after out-of-range tokens: %v", got)
	}
	s.Reset()
	if len(s.distinct) != 0 {
		t.Errorf("Reset left %d tokens of history", len(s.distinct))
	}
	// Sampling with a huge presence penalty never repeats a token.
	p = plain(1, 3)
	p.PresencePenalty, p.RepeatLastN = 1000, -1
	s = mustNew(t, p, 50)
	flat := make([]float32, 50)
	seen := map[int]bool{}
	for range 50 {
		tok := s.Sample(flat)
		if seen[tok] {
			t.Fatalf("token %d repeated despite presence penalty", tok)
		}
		seen[tok] = true
		s.Accept(tok)
	}
	// The bounded history does not grow without bound when Accept is
	// called many times between samples.
	p = plain(1, 1)
	p.RepeatPenalty, p.RepeatLastN = 1.1, 4
	s = mustNew(t, p, 1000)
	for i := range 10000 {
		s.Accept(i % 1000)
	}
	if len(s.distinct) > 2*4+1 {
		t.Errorf("history holds %d distinct tokens for a window of 4", len(s.distinct))
	}
}

// chiSquare returns Pearson's statistic of observed counts against
// probabilities (bins with tiny expectations are merged into one).
func chiSquare(counts []int, probs []float64, n int) (stat float64, df int) {
	var restO, restE float64
	for i, p := range probs {
		e := p * float64(n)
		if e < 5 {
			restO += float64(counts[i])
			restE += e
			continue
		}
		d := float64(counts[i]) - e
		stat += d * d / e
		df++
	}
	if restE > 0 {
		d := restO - restE
		stat += d * d / restE
		df++
	}
	return stat, df - 1
}

// chi2Crit is the 0.999 quantile of chi-square for df degrees of freedom
// (Wilson–Hilferty approximation, good to about 1% for df >= 3).
func chi2Crit(df int) float64 {
	const z = 3.0902 // 0.999 normal quantile
	k := float64(df)
	a := 1 - 2/(9*k) + z*math.Sqrt(2/(9*k))
	return k * a * a * a
}

// Sampling frequencies match the softmax distribution (with temperature
// and renormalized over what the filters keep).
func TestDistribution(t *testing.T) {
	l := []float32{1.2, -0.3, 0.7, 2.1, 0, -1.5, 0.9, 1.8, -0.8, 0.2}
	const draws = 200000
	cases := []struct {
		name string
		p    Params
	}{
		{"plain", plain(1, 11)},
		{"temp 0.6", plain(0.6, 12)},
		{"temp 1.7", plain(1.7, 13)},
		{"default chain", Params{Temperature: 0.8, TopK: 40, TopP: 0.95, MinP: 0.05, RepeatPenalty: 1, RepeatLastN: 64, Seed: 14}},
		{"top_k 4 temp 1.3", Params{Temperature: 1.3, TopK: 4, TopP: 1, RepeatPenalty: 1, Seed: 15}},
		{"top_p 0.7", Params{Temperature: 1, TopP: 0.7, RepeatPenalty: 1, Seed: 16}},
	}
	for _, c := range cases {
		keep := refKept(c.p, l, nil)
		sub := make([]float32, len(keep))
		for i, id := range keep {
			sub[i] = l[id]
		}
		sp := softmax64(sub, float64(c.p.Temperature))
		probs := make([]float64, len(l))
		for i, id := range keep {
			probs[id] = sp[i]
		}
		s := mustNew(t, c.p, len(l))
		counts := make([]int, len(l))
		for range draws {
			counts[s.Sample(l)]++
		}
		for i, p := range probs {
			if p == 0 && counts[i] != 0 {
				t.Errorf("%s: filtered-out token %d sampled %d times", c.name, i, counts[i])
			}
		}
		var o []int
		var e []float64
		for i, p := range probs {
			if p > 0 {
				o = append(o, counts[i])
				e = append(e, p)
			}
		}
		stat, df := chiSquare(o, e, draws)
		if df > 0 && stat > chi2Crit(df) {
			t.Errorf("%s: chi-square %.1f with %d df exceeds %.1f; counts %v, probs %v", c.name, stat, df, chi2Crit(df), counts, probs)
		}
		t.Logf("%s: %d tokens kept, chi-square %.2f (df %d, 0.999 critical %.1f)", c.name, len(keep), stat, df, chi2Crit(df))
	}

	// A larger vocabulary, plain sampling.
	big := randLogits(21, 400, 1.5)
	s := mustNew(t, plain(1, 22), len(big))
	counts := make([]int, len(big))
	for range draws {
		counts[s.Sample(big)]++
	}
	stat, df := chiSquare(counts, softmax64(big, 1), draws)
	if stat > chi2Crit(df) {
		t.Errorf("400 tokens: chi-square %.1f with %d df exceeds %.1f", stat, df, chi2Crit(df))
	}
	t.Logf("400 tokens: chi-square %.2f (df %d, critical %.1f)", stat, df, chi2Crit(df))
}

// Temperature sharpens (< 1) or flattens (> 1) the distribution: with
// logits {1, 0}, P(0) = 1/(1+exp(-1/T)).
func TestTemperature(t *testing.T) {
	l := []float32{1, 0}
	const n = 40000
	prev := 1.0
	for i, temp := range []float32{0.25, 0.5, 1, 2, 8} {
		s := mustNew(t, plain(temp, uint64(100+i)), 2)
		c := 0
		for range n {
			if s.Sample(l) == 0 {
				c++
			}
		}
		got := float64(c) / n
		want := 1 / (1 + math.Exp(-1/float64(temp)))
		tol := 5 * math.Sqrt(want*(1-want)/n)
		if math.Abs(got-want) > tol {
			t.Errorf("temp %v: P(token 0) = %.4f, want %.4f ± %.4f", temp, got, want, tol)
		}
		if got >= prev {
			t.Errorf("temp %v: P(token 0) = %.4f did not decrease (previous %.4f)", temp, got, prev)
		}
		prev = got
	}
}

func TestTopProbs(t *testing.T) {
	l := randLogits(31, 3000, 2)
	probs := softmax64(l, 1)
	order := make([]int, len(l))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		if l[a] > l[b] {
			return -1
		}
		if l[a] < l[b] {
			return 1
		}
		return 0
	})
	top := TopProbs(l, 10)
	if len(top) != 10 {
		t.Fatalf("got %d tokens", len(top))
	}
	for i, tp := range top {
		if tp.ID != order[i] {
			t.Errorf("rank %d: token %d, want %d", i, tp.ID, order[i])
		}
		if math.Abs(tp.Prob-probs[tp.ID]) > 1e-12 || math.Abs(tp.LogProb-math.Log(probs[tp.ID])) > 1e-9 {
			t.Errorf("token %d: prob %g logprob %g, want %g %g", tp.ID, tp.Prob, tp.LogProb, probs[tp.ID], math.Log(probs[tp.ID]))
		}
		if lp := LogProb(l, tp.ID); math.Abs(lp-tp.LogProb) > 1e-12 {
			t.Errorf("LogProb(%d) = %g, TopProbs says %g", tp.ID, lp, tp.LogProb)
		}
	}
	if all := TopProbs(l[:5], 10); len(all) != 5 {
		t.Errorf("n beyond the vocabulary: %d tokens", len(all))
	} else {
		sum := 0.0
		for _, tp := range all {
			sum += tp.Prob
		}
		if math.Abs(sum-1) > 1e-12 {
			t.Errorf("probabilities of the whole vocabulary sum to %g", sum)
		}
	}
	if TopProbs(l, 0) != nil || TopProbs(nil, 3) != nil {
		t.Error("want nil for n = 0 or no logits")
	}
	if got := TopProbs([]float32{1, 1, 0}, 2); got[0].ID != 0 || got[1].ID != 1 {
		t.Errorf("ties: %+v", got)
	}
	// Extreme logits stay finite and exact.
	inf := float32(math.Inf(1))
	if got := TopProbs([]float32{0, inf, 3, inf}, 3); got[0].ID != 1 || got[0].Prob != 0.5 || got[1].ID != 3 || got[2].Prob != 0 {
		t.Errorf("+Inf logits: %+v", got)
	}
	if lp := LogProb([]float32{1e30, 0}, 1); lp != -float64(float32(1e30)) {
		t.Errorf("LogProb with a huge logit = %g", lp)
	}
	if lp := LogProb(l, -1); !math.IsInf(lp, -1) {
		t.Errorf("LogProb out of range = %g", lp)
	}
	if lse := LogSumExp([]float32{0, 0, 0, 0}); math.Abs(lse-math.Log(4)) > 1e-15 {
		t.Errorf("LogSumExp = %g", lse)
	}
}

// Extreme and non-finite logits never break sampling.
func TestExtremeLogits(t *testing.T) {
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	for _, c := range []struct {
		l    []float32
		want []int // allowed results
	}{
		{[]float32{-inf, -inf, -inf}, []int{0, 1, 2}},
		{[]float32{nan, 0, nan}, []int{1}},
		{[]float32{0, inf, 1, inf}, []int{1, 3}},
		{[]float32{3.4e38, -3.4e38, 3.4e38}, []int{0, 2}},
	} {
		for _, p := range []Params{DefaultParams(), plain(1, 1), plain(0.01, 1)} {
			p.Seed = 5
			s := mustNew(t, p, len(c.l))
			for range 20 {
				if got := s.Sample(c.l); !slices.Contains(c.want, got) {
					t.Errorf("%v with %+v: got %d, want one of %v", c.l, p, got, c.want)
				}
			}
		}
	}
}

func TestExp(t *testing.T) {
	for _, x := range []float64{0, -1e-30, 1e-10, -0.5, -1, -3.25, -20, -87.3, -700, -744, -746, 1, 10, 709, 710} {
		got, want := exp(x), math.Exp(x)
		if got != want && math.Abs(got-want) > 5e-16*want {
			t.Errorf("exp(%g) = %g, math.Exp %g", x, got, want)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		x := -r.Float64() * 100
		got, want := exp(x), math.Exp(x)
		if math.Abs(got-want) > 5e-16*want { // both within about 1 ulp of e**x
			t.Fatalf("exp(%g) = %g, math.Exp %g", x, got, want)
		}
	}
	if !math.IsNaN(exp(math.NaN())) || exp(math.Inf(-1)) != 0 || !math.IsInf(exp(math.Inf(1)), 1) {
		t.Error("exp of non-finite values")
	}
}

func TestWiden(t *testing.T) {
	for _, v := range []float32{0, float32(math.Copysign(0, -1)), 1, -1, 1e-45, -1e-40, 3.4e38, -3.4e38, float32(math.Inf(1)), float32(math.Inf(-1)), 1.17549435e-38, 0.1, -123.456} {
		if widen(v) != float64(v) || math.Signbit(widen(v)) != math.Signbit(float64(v)) {
			t.Errorf("widen(%g) = %g", v, widen(v))
		}
	}
	for _, v := range vocab128k(t) {
		if widen(v) != float64(v) {
			t.Fatalf("widen(%g) = %g", v, widen(v))
		}
	}
	if !math.IsNaN(widen(float32(math.NaN()))) {
		t.Error("widen(NaN)")
	}
}

func vocab128k(t testing.TB) []float32 { return randLogits(77, 128256, 2.5) }

func TestNoAllocs(t *testing.T) {
	l := vocab128k(t)
	pens := DefaultParams()
	pens.Seed = 1
	pens.RepeatPenalty, pens.FrequencyPenalty, pens.PresencePenalty = 1.1, 0.1, 0.2
	full := plain(0.9, 2)
	full.TopP, full.MinP = 0.9, 0.02
	fullNoMinP := plain(1, 3)
	fullNoMinP.TopP = 0.95
	greedy := DefaultParams()
	greedy.Temperature = 0
	for name, p := range map[string]Params{"default+penalties": pens, "no top-k": full, "top-p only": fullNoMinP, "greedy": greedy, "plain": plain(1, 4)} {
		s := mustNew(t, p, len(l))
		for i := range 100 { // warm-up: fill the history
			s.Accept(i * 7)
		}
		s.Sample(l)
		allocs := testing.AllocsPerRun(20, func() {
			s.Accept(s.Sample(l))
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per Sample+Accept", name, allocs)
		}
	}
}

func BenchmarkSample128k(b *testing.B) {
	l := vocab128k(b)
	for _, c := range []struct {
		name string
		p    Params
	}{
		{"default", func() Params { p := DefaultParams(); p.Seed = 1; return p }()},
		{"default+penalties", func() Params {
			p := DefaultParams()
			p.Seed, p.RepeatPenalty, p.PresencePenalty = 1, 1.1, 0.5
			return p
		}()},
		{"greedy", plain(0, 1)},
		{"topk0-topp0.95-minp0.05", func() Params { p := DefaultParams(); p.Seed, p.TopK = 1, 0; return p }()},
		{"topk0-topp0.95", Params{Temperature: 0.8, TopP: 0.95, RepeatPenalty: 1, Seed: 1}},
		{"plain", plain(1, 1)},
	} {
		b.Run(c.name, func(b *testing.B) {
			s := mustNew(b, c.p, len(l))
			for i := range 64 {
				s.Accept(i * 13)
			}
			for b.Loop() {
				s.Accept(s.Sample(l))
			}
		})
	}
}

func BenchmarkTopProbs128k(b *testing.B) {
	l := vocab128k(b)
	for b.Loop() {
		TopProbs(l, 10)
	}
}
