// Package sample chooses the next token from a vector of logits the way
// llama.cpp's common sampler chain does by default: repetition, presence and
// frequency penalties over the recent history, then top-k, top-p (nucleus),
// min-p and temperature, then a draw from the softmax of what is left. A
// temperature of zero or less selects the most probable token instead.
//
// A Sampler owns its history and its random generator, so one sampler serves
// one sequence. It is deterministic: for a given seed, the same logits and
// the same accepted tokens give the same choices on every run and platform
// (the generator is math/rand/v2's PCG, the softmax uses an exponential
// written so that the compiler cannot fuse its operations). Sample allocates
// nothing once its buffers are sized, and works on a 128k vocabulary without
// sorting it when top-k is small.
//
// The package also computes what completion_probabilities and OpenAI
// logprobs report: the most probable tokens with their probabilities
// (TopProbs) and log-probabilities of the plain softmax (LogProb, LogSumExp).
//
// SampleMasked restricts the choice to an allowed set of tokens (the mask hook
// for constrained decoding): the mask is applied before every filter, so
// greedy, top-k, top-p, min-p and the draw only ever see allowed tokens.
//
// llama.cpp's other samplers (logit bias, DRY, typical-p, XTC,
// top-n-sigma, dynamic temperature, mirostat) and a custom sampler order
// run through the full chain of chain.go; grammars are internal/grammar's.
package sample

import (
	"errors"
	"fmt"
	"math"
	mbits "math/bits"
	"math/rand/v2"
	"slices"
)

// RandomSeed (llama.cpp's LLAMA_DEFAULT_SEED) asks for a random seed.
const RandomSeed uint64 = 0xFFFFFFFF

// pcgStream is the second half of the PCG seed; the first half is the seed.
const pcgStream = 0x9E3779B97F4A7C15

// Params are the sampling parameters, with llama.cpp's meanings.
type Params struct {
	// Temperature divides the logits before the final draw. <= 0 selects
	// the most probable token (ties go to the lowest id).
	Temperature float32
	// TopK keeps the K most probable tokens; <= 0 disables it.
	TopK int
	// TopP keeps the smallest set of most probable tokens whose
	// probabilities add up to at least TopP; 1 disables it.
	TopP float32
	// MinP keeps the tokens whose probability is at least MinP times the
	// most probable token's; 0 disables it.
	MinP float32
	// MinKeep is the least number of tokens top-p and min-p keep (0 = 1).
	MinKeep int
	// RepeatPenalty divides the positive logits (multiplies the negative
	// ones) of tokens seen in the last RepeatLastN tokens; 1 disables it.
	RepeatPenalty float32
	// RepeatLastN is how many of the last accepted tokens the penalties
	// look at: 0 disables the penalties, -1 means every token accepted
	// since the last Reset (the whole context).
	RepeatLastN int
	// PresencePenalty is subtracted from the logit of every token seen in
	// the window; FrequencyPenalty is subtracted once per occurrence.
	PresencePenalty  float32
	FrequencyPenalty float32
	// Seed seeds the random generator; RandomSeed means a random seed.
	Seed uint64

	// llama.cpp's other samplers (chain.go); their zero values are not
	// all "off": start from DefaultParams.

	// TypicalP keeps the locally typical tokens whose probabilities add
	// up to TypicalP (1 disables it; so does 0, the zero value: give the
	// smallest float32 for llama.cpp's typical_p 0, which keeps one token).
	TypicalP float32
	// DynatempRange > 0 makes the temperature move within
	// Temperature ± DynatempRange with the distribution's entropy, shaped
	// by DynatempExponent.
	DynatempRange, DynatempExponent float32
	// XTC ("exclude top choices"): with probability XTCProbability, the
	// tokens above XTCThreshold but the least probable of them are
	// removed (a threshold above 0.5 disables it).
	XTCProbability, XTCThreshold float32
	// TopNSigma keeps the tokens within TopNSigma standard deviations of
	// the highest logit (<= 0 disables it).
	TopNSigma float32
	// Mirostat 1 or 2 replaces the filters with Mirostat sampling aiming
	// at a surprise of MirostatTau, learning rate MirostatEta (0: off).
	Mirostat                 int
	MirostatTau, MirostatEta float32
	// DRY penalizes tokens that would extend a repetition longer than
	// DRYAllowedLength in the last DRYPenaltyLastN tokens (-1: the
	// context, ContextSize) by DRYMultiplier·DRYBase^(extra length);
	// DRYBreakers (from DRYBreakers()) stop repetitions; a multiplier of
	// 0 disables it. DRYSequenceBreakers are the breakers' texts, as
	// reported.
	DRYMultiplier, DRYBase            float32
	DRYAllowedLength, DRYPenaltyLastN int
	DRYBreakers                       Breakers
	DRYSequenceBreakers               []string
	// ContextSize is the model's training context (DRY's window when
	// DRYPenaltyLastN is -1).
	ContextSize int
	// LogitBias is added to the logits before any sampler.
	LogitBias []LogitBias
	// Samplers is the order of the chain's stages (nil: DefaultStages).
	// A stage not listed is not applied.
	Samplers []Stage
	// PostSamplingProbs keeps the final candidates of each draw for
	// PostProbs (it makes every draw take the full chain).
	PostSamplingProbs bool
}

// DefaultBreakers are llama.cpp's default DRY sequence breakers.
var DefaultBreakers = []string{"\n", ":", "\"", "*"}

// DefaultParams returns llama.cpp's defaults.
func DefaultParams() Params {
	return Params{
		Temperature:   0.8,
		TopK:          40,
		TopP:          0.95,
		MinP:          0.05,
		RepeatPenalty: 1.0,
		RepeatLastN:   64,
		Seed:          RandomSeed,

		TypicalP:            1,
		DynatempExponent:    1,
		XTCThreshold:        0.1,
		TopNSigma:           -1,
		MirostatTau:         5,
		MirostatEta:         0.1,
		DRYBase:             1.75,
		DRYAllowedLength:    2,
		DRYPenaltyLastN:     -1,
		DRYSequenceBreakers: DefaultBreakers,
	}
}

// fast reports whether the default chain's fast path (sample.go) gives
// the chain's choices: only penalties, top-k, top-p, min-p and the plain
// temperature are on, in llama.cpp's default order.
func (p *Params) fast() bool {
	if len(p.LogitBias) > 0 || p.Mirostat != 0 || (p.TypicalP > 0 && p.TypicalP < 1) || p.DynatempRange > 0 ||
		(p.XTCProbability > 0 && p.XTCThreshold <= 0.5) || p.TopNSigma > 0 || p.dryOn() || p.PostSamplingProbs {
		return false
	}
	if p.Samplers == nil {
		return true
	}
	var got []Stage
	for _, st := range p.Samplers {
		switch st {
		case StagePenalties, StageTopK, StageTopP, StageMinP, StageTemperature:
			got = append(got, st)
		}
	}
	return slices.Equal(got, []Stage{StagePenalties, StageTopK, StageTopP, StageMinP, StageTemperature})
}

// ErrInvalidParams is wrapped by every error Validate returns.
var ErrInvalidParams = errors.New("invalid sampling parameters")

// Validate reports every invalid value (names are llama-server's). Each
// error wraps ErrInvalidParams.
func (p Params) Validate() error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", ErrInvalidParams, fmt.Sprintf(format, a...)))
	}
	finite := func(name string, v float32) bool {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			bad("%s must be a finite number, got %v", name, v)
			return false
		}
		return true
	}
	finite("temperature", p.Temperature)
	if finite("top_p", p.TopP) && (p.TopP < 0 || p.TopP > 1) {
		bad("top_p must be between 0 and 1, got %v", p.TopP)
	}
	if finite("min_p", p.MinP) && (p.MinP < 0 || p.MinP > 1) {
		bad("min_p must be between 0 and 1, got %v", p.MinP)
	}
	if p.MinKeep < 0 {
		bad("min_keep must be >= 0, got %d", p.MinKeep)
	}
	if finite("repeat_penalty", p.RepeatPenalty) && p.RepeatPenalty <= 0 {
		bad("repeat_penalty must be > 0 (1.0 disables it), got %v", p.RepeatPenalty)
	}
	if p.RepeatLastN < -1 {
		bad("repeat_last_n must be >= -1 (0 disables penalties, -1 means the whole context), got %d", p.RepeatLastN)
	}
	finite("presence_penalty", p.PresencePenalty)
	finite("frequency_penalty", p.FrequencyPenalty)
	for _, f := range []struct {
		name string
		v    float32
	}{{"typical_p", p.TypicalP}, {"dynatemp_range", p.DynatempRange}, {"dynatemp_exponent", p.DynatempExponent},
		{"xtc_probability", p.XTCProbability}, {"xtc_threshold", p.XTCThreshold}, {"top_n_sigma", p.TopNSigma},
		{"mirostat_tau", p.MirostatTau}, {"mirostat_eta", p.MirostatEta}, {"dry_multiplier", p.DRYMultiplier}, {"dry_base", p.DRYBase}} {
		finite(f.name, f.v)
	}
	if p.Mirostat < 0 || p.Mirostat > 2 {
		bad("mirostat must be 0 (off), 1 or 2, got %d", p.Mirostat)
	}
	if p.DRYAllowedLength < 0 {
		bad("dry_allowed_length must be >= 0, got %d", p.DRYAllowedLength)
	}
	if p.DRYPenaltyLastN < -1 {
		bad("dry_penalty_last_n must be >= -1 (0 disables DRY, -1 means the context), got %d", p.DRYPenaltyLastN)
	}
	for _, b := range p.LogitBias {
		if b.Bias != b.Bias || math.IsInf(float64(b.Bias), 1) {
			bad("logit_bias for token %d must be a finite number or false (banned), got %v", b.Token, b.Bias)
		}
	}
	for _, st := range p.Samplers {
		if st < 0 || st >= numStages {
			bad("unknown sampler %d", int(st))
		}
	}
	return errors.Join(errs...)
}

// penalized reports whether the penalties can change any logit.
func (p *Params) penalized() bool {
	return p.RepeatLastN != 0 && (p.RepeatPenalty != 1 || p.PresencePenalty != 0 || p.FrequencyPenalty != 0)
}

// cand is a candidate token and its (possibly transformed) logit.
type cand struct {
	id    int32
	logit float32
}

// better is the candidates' total order: higher logit first, then lower id.
// Logits are never NaN here (see clean).
func better(a, b cand) bool {
	return a.logit > b.logit || (a.logit == b.logit && a.id < b.id)
}

func cmpCand(a, b cand) int {
	if better(a, b) {
		return -1
	}
	if better(b, a) {
		return 1
	}
	return 0
}

// clean maps NaN logits to -Inf so that they are never chosen and keep the
// order total.
func clean(v float32) float32 {
	if v != v {
		return float32(math.Inf(-1))
	}
	return v
}

// Sampler samples tokens for one sequence. It is not safe for concurrent use.
type Sampler struct {
	p     Params
	vocab int
	seed  uint64
	rng   rand.PCG

	// Penalty history: counts of each token in the window, the distinct
	// tokens with a count (lazily compacted; listed marks membership) and,
	// for a bounded window, the ring of the last RepeatLastN tokens.
	counts   []int32
	listed   []bool
	distinct []int32
	ring     []int32
	ringHead int
	ringLen  int

	// Buffers reused by every Sample.
	work  []float32
	cands []cand
	probs []float64

	// The full chain (chain.go): whether to use it, its stages, its
	// candidates, XTC's generator, mirostat's mu, DRY's history and
	// buffers, and the last draw's final candidates.
	useChain bool
	stages   []Stage
	arr      []tok
	ta       tokArr
	tbuf     []tok
	scores   []float32
	xrng     rand.PCG
	mu       float32
	dryHist  []int32
	dryCount []int
	dryMax   map[int32]int
	final    []tok
}

// New returns a sampler for a vocabulary of vocabSize tokens.
func New(p Params, vocabSize int) (*Sampler, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if vocabSize <= 0 {
		return nil, fmt.Errorf("sample: vocabulary size must be positive, got %d", vocabSize)
	}
	s := &Sampler{p: p, vocab: vocabSize}
	if p.penalized() {
		s.counts = make([]int32, vocabSize)
		s.listed = make([]bool, vocabSize)
		if p.RepeatLastN > 0 {
			s.ring = make([]int32, p.RepeatLastN)
			s.distinct = make([]int32, 0, 2*p.RepeatLastN+2)
		}
	}
	s.useChain = !p.fast()
	s.stages = p.Samplers
	if s.stages == nil {
		s.stages = DefaultStages()
	}
	if s.useChain && p.penalized() && s.counts == nil {
		s.counts = make([]int32, vocabSize)
		s.listed = make([]bool, vocabSize)
	}
	if p.dryOn() {
		s.dryMax = map[int32]int{}
	}
	s.grow(vocabSize)
	s.reseed()
	return s, nil
}

// Params returns the sampler's parameters.
func (s *Sampler) Params() Params { return s.p }

// Seed returns the seed in use (the random one drawn when Params.Seed is
// RandomSeed).
func (s *Sampler) Seed() uint64 { return s.seed }

func (s *Sampler) reseed() {
	s.seed = s.p.Seed
	if s.seed == RandomSeed {
		for s.seed == RandomSeed {
			s.seed = rand.Uint64() & 0xFFFFFFFF
		}
	}
	s.rng.Seed(s.seed, pcgStream)
	s.xrng.Seed(s.seed, pcgStream^0xD1B54A32D192ED03)
	s.mu = 2 * s.p.MirostatTau
}

// Reset forgets the history and restarts the random generator from the
// seed (a new random seed if Params.Seed is RandomSeed), as llama.cpp's
// llama_sampler_reset does.
func (s *Sampler) Reset() {
	for _, t := range s.distinct {
		s.counts[t] = 0
		s.listed[t] = false
	}
	s.distinct = s.distinct[:0]
	s.ringHead, s.ringLen = 0, 0
	s.dryHist = s.dryHist[:0]
	s.final = nil
	s.reseed()
}

// Accept records a token of the sequence (prompt or generated) for the
// penalties. Tokens outside the vocabulary are ignored.
func (s *Sampler) Accept(token int) {
	if token < 0 || token >= s.vocab {
		return
	}
	if s.dryMax != nil {
		if w := s.p.dryWindow(); w > 0 {
			if len(s.dryHist) >= 2*w {
				n := copy(s.dryHist, s.dryHist[len(s.dryHist)-w+1:])
				s.dryHist = s.dryHist[:n]
			}
			s.dryHist = append(s.dryHist, int32(token))
		}
	}
	if s.counts == nil {
		return
	}
	if s.ring != nil {
		if s.ringLen == len(s.ring) {
			old := s.ring[s.ringHead]
			s.counts[old]--
		} else {
			s.ringLen++
		}
		s.ring[s.ringHead] = int32(token)
		s.ringHead++
		if s.ringHead == len(s.ring) {
			s.ringHead = 0
		}
	}
	s.counts[token]++
	if !s.listed[token] {
		if s.ring != nil && len(s.distinct) > 2*len(s.ring) {
			s.compact()
		}
		s.listed[token] = true
		s.distinct = append(s.distinct, int32(token))
	}
}

// compact drops the tokens that have left the window from s.distinct.
func (s *Sampler) compact() {
	keep := s.distinct[:0]
	for _, t := range s.distinct {
		if s.counts[t] == 0 {
			s.listed[t] = false
			continue
		}
		keep = append(keep, t)
	}
	s.distinct = keep
}

func (s *Sampler) grow(n int) {
	if len(s.work) < n {
		s.work = make([]float32, n)
		s.cands = make([]cand, n)
		s.probs = make([]float64, n)
	}
}

// penalize copies logits to the work buffer and applies the penalties to
// it, exactly as llama.cpp's penalties sampler does.
func (s *Sampler) penalize(logits []float32) []float32 {
	w := s.work[:len(logits)]
	copy(w, logits)
	rp, fp, pp := s.p.RepeatPenalty, s.p.FrequencyPenalty, s.p.PresencePenalty
	s.compact()
	for _, t := range s.distinct {
		c := s.counts[t]
		if int(t) >= len(w) {
			continue
		}
		l := w[t]
		// Explicit float32 conversions keep the arithmetic unfused, so the
		// result is the same on every platform.
		if l <= 0 {
			l = float32(l * rp)
		} else {
			l /= rp
		}
		l -= float32(float32(c)*fp) + pp
		w[t] = l
	}
	return w
}

// Sample chooses the next token from logits (one per vocabulary entry; NaN
// counts as -Inf). It does not record the token: call Accept for that.
// It returns -1 only when logits is empty.
func (s *Sampler) Sample(logits []float32) int {
	if len(logits) == 0 {
		return -1
	}
	if s.useChain {
		s.compact()
		return s.chain(s.candidates(logits, nil))
	}
	s.grow(len(logits))
	src := logits
	if len(s.distinct) > 0 {
		src = s.penalize(logits)
	}
	if s.p.Temperature <= 0 {
		return argmax(src)
	}
	c := s.filter(src)
	return s.draw(c)
}

// SampleMasked is Sample restricted to the tokens whose bit is set in
// allowed (bit id%64 of word id/64; a nil mask allows every token, as
// Sample). Masked tokens are removed before the penalties' result reaches
// any filter, so no path can choose one. It returns -1 when the mask allows
// no token.
func (s *Sampler) SampleMasked(logits []float32, allowed []uint64) int {
	if allowed == nil {
		return s.Sample(logits)
	}
	n := len(logits)
	if n == 0 {
		return -1
	}
	if s.useChain {
		s.compact()
		a := s.candidates(logits, allowed)
		if len(a.d) == 0 {
			return -1
		}
		return s.chain(a)
	}
	s.grow(n)
	src := logits
	if len(s.distinct) > 0 {
		src = s.penalize(logits)
	}
	c := s.cands[:0]
	for w, bits := range allowed {
		for bits != 0 {
			i := w*64 + mbits.TrailingZeros64(bits)
			if i >= n {
				break
			}
			c = append(c, cand{int32(i), clean(src[i])})
			bits &= bits - 1
		}
	}
	if len(c) == 0 {
		return -1
	}
	if s.p.Temperature <= 0 {
		best := c[0]
		for _, x := range c[1:] {
			if x.logit > best.logit {
				best = x
			}
		}
		return int(best.id)
	}
	sorted := false
	if k := s.p.TopK; k > 0 && k < len(c) {
		c = selectTopCands(c, k)
		sorted = true
	}
	if s.p.TopP < 1 {
		c, sorted = s.topP(c, sorted)
	}
	if s.p.MinP > 0 {
		c, _ = s.minP(c, sorted)
	}
	return s.draw(c)
}

// selectTopCands is selectTop over candidates in id order: the k best move
// to c[:k], best first.
func selectTopCands(c []cand, k int) []cand {
	h := c[:k]
	for i := k/2 - 1; i >= 0; i-- {
		siftDown(h, i)
	}
	for i := k; i < len(c); i++ {
		// Later ids lose ties, so only a strictly greater logit gets in.
		if v := c[i]; v.logit > h[0].logit {
			h[0] = v
			siftDown(h, 0)
		}
	}
	slices.SortFunc(h, cmpCand)
	return h
}

func argmax(src []float32) int {
	best, bv := 0, clean(src[0])
	for i, v := range src {
		if v > bv {
			best, bv = i, v
		}
	}
	return best
}

// filter applies top-k, top-p and min-p (in that order) to src and returns
// the candidates left, which share s.cands.
func (s *Sampler) filter(src []float32) []cand {
	n := len(src)
	var c []cand
	sorted := false
	if k := s.p.TopK; k > 0 && k < n {
		c = selectTop(src, k, s.cands[:k])
		sorted = true
	} else {
		c = s.cands[:n]
		for i, v := range src {
			c[i] = cand{int32(i), clean(v)}
		}
	}
	if s.p.TopP < 1 {
		c, sorted = s.topP(c, sorted)
	}
	if s.p.MinP > 0 {
		c, _ = s.minP(c, sorted)
	}
	return c
}

// selectTop puts the k best of src, best first, in dst (len k): a bounded
// min-heap, one comparison per logit for the usual case.
func selectTop(src []float32, k int, dst []cand) []cand {
	for i := range k {
		dst[i] = cand{int32(i), clean(src[i])}
	}
	h := dst[:k]
	for i := k/2 - 1; i >= 0; i-- {
		siftDown(h, i)
	}
	for i := k; i < len(src); i++ {
		// Later ids lose ties, so only a strictly greater logit gets in
		// (NaN never does).
		if v := src[i]; v > h[0].logit {
			h[0] = cand{int32(i), v}
			siftDown(h, 0)
		}
	}
	slices.SortFunc(h, cmpCand)
	return h
}

// siftDown restores the heap property (the worst candidate at the root).
func siftDown(h []cand, i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		w := l
		if r := l + 1; r < len(h) && better(h[l], h[r]) {
			w = r
		}
		if !better(h[i], h[w]) {
			return
		}
		h[i], h[w] = h[w], h[i]
		i = w
	}
}

// sortPrefix rearranges c so that c[:m] holds the m best candidates, best
// first (the rest in no particular order). Quickselect, then a sort of the
// prefix.
func sortPrefix(c []cand, m int) {
	if m >= len(c) || m > len(c)/2 {
		slices.SortFunc(c, cmpCand)
		return
	}
	lo, hi := 0, len(c)
	for hi-lo > 1 {
		// Median of three as the pivot, moved to hi-1.
		medianToEnd(c, lo, lo+(hi-lo)/2, hi-1)
		pv := c[hi-1]
		st := lo
		for i := lo; i < hi-1; i++ {
			if better(c[i], pv) {
				c[i], c[st] = c[st], c[i]
				st++
			}
		}
		c[st], c[hi-1] = c[hi-1], c[st]
		// c[lo:st] beat the pivot, c[st] is the pivot, the rest lose.
		switch {
		case m <= st:
			hi = st
		case m == st+1:
			lo = hi
		default:
			lo = st + 1
		}
	}
	slices.SortFunc(c[:m], cmpCand)
}

func maxLogit(c []cand) float32 {
	m := c[0].logit
	for _, x := range c[1:] {
		if x.logit > m {
			m = x.logit
		}
	}
	return m
}

// weight is exp(l - max), with the infinite cases made well defined: if
// some logit is +Inf, the +Inf ones share all the mass; if all are -Inf,
// all weigh the same.
func weight(l, mx float32) float64 {
	switch {
	case math.IsInf(float64(mx), 1):
		if l == mx {
			return 1
		}
		return 0
	case math.IsInf(float64(mx), -1):
		return 1
	}
	return exp(widen(l) - widen(mx))
}

// expWeights sets w[i] to c[i]'s weight relative to the largest logit and
// returns their sum; w[i] is indexed by position, or by token id if byID.
func expWeights(c []cand, w []float64, byID bool) float64 {
	mx := maxLogit(c)
	var z float64
	if math.IsInf(float64(mx), 0) {
		for i, x := range c {
			v := weight(x.logit, mx)
			if byID {
				i = int(x.id)
			}
			w[i] = v
			z += v
		}
		return z
	}
	m := widen(mx)
	if byID {
		for _, x := range c {
			v := exp(widen(x.logit) - m)
			w[x.id] = v
			z += v
		}
		return z
	}
	w = w[:len(c)]
	for i, x := range c {
		v := exp(widen(x.logit) - m)
		w[i] = v
		z += v
	}
	return z
}

// topP keeps the smallest best-first prefix whose probability (softmax over
// c) reaches TopP and that has at least MinKeep tokens. When c is sorted the
// prefix is found by a running sum, as llama.cpp does; otherwise by a
// quickselect on probability mass, which finds the same set without sorting
// a large vocabulary (and leaves it unsorted).
func (s *Sampler) topP(c []cand, sorted bool) ([]cand, bool) {
	p := float64(s.p.TopP)
	if sorted {
		w := s.probs[:len(c)]
		z := expWeights(c, w, false)
		cum := 0.0
		for i := range c {
			cum += w[i] / z
			if cum >= p && i+1 >= s.p.MinKeep {
				return c[:i+1], true
			}
		}
		return c, true
	}
	w := s.probs[:len(s.work)]
	z := expWeights(c, w, true)
	n := nucleus(c, w, float64(p*z))
	if keep := min(s.p.MinKeep, len(c)); n < keep {
		sortPrefix(c, keep)
		return c[:keep], true
	}
	return c[:n], false
}

// nucleus rearranges c so that c[:n] holds the n best candidates, for the
// least n whose weights (w[id]) add up to at least target, and returns n
// (len(c) if they never do). Expected linear time.
func nucleus(c []cand, w []float64, target float64) int {
	lo, hi := 0, len(c)
	acc := 0.0 // weight of c[:lo], all in the nucleus
	for hi-lo > 32 {
		mid := lo + (hi-lo)/2
		medianToEnd(c, lo, mid, hi-1)
		pv := c[hi-1]
		st := lo
		mass := 0.0
		for i := lo; i < hi-1; i++ {
			if better(c[i], pv) {
				mass += w[c[i].id]
				c[i], c[st] = c[st], c[i]
				st++
			}
		}
		c[st], c[hi-1] = c[hi-1], c[st]
		switch {
		case st > lo && acc+mass >= target:
			hi = st
		case acc+mass+w[pv.id] >= target:
			return st + 1
		default:
			acc += mass + w[pv.id]
			lo = st + 1
		}
	}
	slices.SortFunc(c[lo:hi], cmpCand)
	for i := lo; i < hi; i++ {
		acc += w[c[i].id]
		if acc >= target {
			return i + 1
		}
	}
	return hi
}

// medianToEnd moves the median of c[a], c[b], c[d] to c[d].
func medianToEnd(c []cand, a, b, d int) {
	if better(c[b], c[a]) {
		a, b = b, a
	}
	// Now c[a] beats c[b].
	if better(c[d], c[b]) {
		b = d
		if better(c[b], c[a]) {
			b = a
		}
	}
	c[b], c[d] = c[d], c[b]
}

// minP keeps the tokens whose logit is at least max + log(MinP) (probability
// at least MinP times the best one's), and at least MinKeep tokens.
func (s *Sampler) minP(c []cand, sorted bool) ([]cand, bool) {
	mx := c[0].logit
	if !sorted {
		mx = maxLogit(c)
	}
	minLogit := mx + float32(math.Log(float64(s.p.MinP)))
	keep := max(1, min(s.p.MinKeep, len(c)))
	if !sorted {
		count := 0
		for _, x := range c {
			if x.logit >= minLogit {
				count++
			}
		}
		if count >= keep {
			out := c[:0]
			for _, x := range c {
				if x.logit >= minLogit {
					out = append(out, x)
				}
			}
			return out, false
		}
		// Too few above the threshold: keep the MinKeep best.
		sortPrefix(c, keep)
		return c[:keep], true
	}
	n := 1
	for n < len(c) && (c[n].logit >= minLogit || n < keep) {
		n++
	}
	return c[:n], true
}

// draw applies the temperature and picks a candidate with probability
// proportional to exp(logit).
func (s *Sampler) draw(c []cand) int {
	t := s.p.Temperature
	for i := range c {
		c[i].logit /= t
	}
	w := s.probs[:len(c)]
	z := expWeights(c, w, false)
	u := float64(s.rng.Uint64()>>11) * 0x1p-53
	target := float64(u * z)
	cum := 0.0
	last := 0
	for i, x := range w {
		if x > 0 {
			cum += x
			last = i
			if cum > target {
				return int(c[i].id)
			}
		}
	}
	return int(c[last].id) // rounding: the last token with any mass
}

// TokenProb is a token with its probability under the plain softmax of the
// logits (no penalties, temperature 1).
type TokenProb struct {
	ID      int
	Prob    float64
	LogProb float64
}

// TopProbs returns the n most probable tokens, most probable first (ties to
// the lower id), with their probabilities after the full softmax of logits,
// as llama-server's completion_probabilities and OpenAI's top_logprobs
// report them.
func TopProbs(logits []float32, n int) []TokenProb {
	n = min(n, len(logits))
	if n <= 0 {
		return nil
	}
	top := selectTop(logits, n, make([]cand, n))
	lse := LogSumExp(logits)
	out := make([]TokenProb, n)
	for i, c := range top {
		lp := logProb(float64(c.logit), lse, logits)
		out[i] = TokenProb{ID: int(c.id), Prob: exp(lp), LogProb: lp}
	}
	return out
}

// LogSumExp returns log(sum(exp(logits))), computed stably (NaN logits
// count as -Inf). A token's log-probability is its logit minus this (see
// LogProb for the infinite cases).
func LogSumExp(logits []float32) float64 {
	if len(logits) == 0 {
		return math.Inf(-1)
	}
	mx := clean(logits[0])
	for _, v := range logits {
		if v > mx {
			mx = v
		}
	}
	if math.IsInf(float64(mx), 0) {
		return float64(mx)
	}
	var z float64
	for _, v := range logits {
		z += exp(widen(clean(v)) - float64(mx))
	}
	return float64(mx) + math.Log(z)
}

// LogProb returns the log-probability of token under the softmax of logits
// (-Inf for a token outside them). If some logits are +Inf, they share all
// the probability equally.
func LogProb(logits []float32, token int) float64 {
	if token < 0 || token >= len(logits) {
		return math.Inf(-1)
	}
	return logProb(float64(clean(logits[token])), LogSumExp(logits), logits)
}

func logProb(l, lse float64, logits []float32) float64 {
	if !math.IsInf(lse, 0) {
		return l - lse
	}
	if l != lse {
		return math.Inf(-1)
	}
	// Every logit is -Inf (uniform) or l is one of the +Inf ones.
	n := 0
	for _, v := range logits {
		if float64(clean(v)) == lse {
			n++
		}
	}
	return -math.Log(float64(n))
}
