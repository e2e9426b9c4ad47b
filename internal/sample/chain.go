package sample

import (
	"fmt"
	"math"
	mbits "math/bits"
	"math/rand/v2"
	"slices"
	"strings"
)

// The full sampler chain, as llama.cpp's common sampler builds it: logit
// bias first; then, without mirostat, the stages of Params.Samplers in
// their order (default: penalties, dry, top_n_sigma, top_k, typ_p, top_p,
// min_p, xtc, temperature) and a draw; with mirostat 1 or 2, temperature
// then mirostat. Each stage follows llama.cpp's llama-sampling.cpp: the
// same candidate sets, the same order of operations in float32, the same
// minimum-keep rules. Only the random draws differ (kvserve's generator is
// PCG, llama.cpp's mt19937), so a seed reproduces kvserve's own runs, not
// llama.cpp's.
//
// The chain is used when a request asks for anything beyond the default
// samplers; the default chain takes the fast path of sample.go, which
// chooses the same tokens without building and sorting the candidates.

// Stage is one sampler of the chain.
type Stage int

// The stages, with llama.cpp's names.
const (
	StagePenalties Stage = iota
	StageDRY
	StageTopNSigma
	StageTopK
	StageTypicalP
	StageTopP
	StageMinP
	StageXTC
	StageTemperature
	numStages
)

var stageNames = [numStages]string{"penalties", "dry", "top_n_sigma", "top_k", "typ_p", "top_p", "min_p", "xtc", "temperature"}

// stageChars are llama.cpp's one-letter names (--sampling-seq).
var stageChars = [numStages]byte{'e', 'd', 's', 'k', 'y', 'p', 'm', 'x', 't'}

// stageAlt are llama.cpp's other accepted names.
var stageAlt = map[string]Stage{
	"top-k": StageTopK, "top-p": StageTopP, "nucleus": StageTopP, "typical-p": StageTypicalP, "typical": StageTypicalP,
	"typ-p": StageTypicalP, "typ": StageTypicalP, "min-p": StageMinP, "temp": StageTemperature, "top-n-sigma": StageTopNSigma,
}

func (s Stage) String() string {
	if s >= 0 && s < numStages {
		return stageNames[s]
	}
	return fmt.Sprintf("stage(%d)", int(s))
}

// DefaultStages returns llama.cpp's default sampler order.
func DefaultStages() []Stage {
	return []Stage{StagePenalties, StageDRY, StageTopNSigma, StageTopK, StageTypicalP, StageTopP, StageMinP, StageXTC, StageTemperature}
}

// ParseStages reads sampler names (llama.cpp's, with its alternative
// names: "top-k", "nucleus", "temp", ...). "infill" is refused (it is
// for fill-in-the-middle, which this sampler does not do).
func ParseStages(names []string) ([]Stage, error) {
	out := make([]Stage, 0, len(names))
	for _, n := range names {
		st, ok := Stage(-1), false
		for i, sn := range stageNames {
			if n == sn {
				st, ok = Stage(i), true
			}
		}
		if !ok {
			st, ok = stageAlt[n]
		}
		if !ok {
			return nil, fmt.Errorf("%w: unknown sampler %q (known: %s)", ErrInvalidParams, n, strings.Join(stageNames[:], ", "))
		}
		out = append(out, st)
	}
	return out, nil
}

// ParseStageChars reads llama.cpp's one-letter sampler sequence (e.g.
// "edskypmxt", the default).
func ParseStageChars(seq string) ([]Stage, error) {
	out := make([]Stage, 0, len(seq))
	for i := 0; i < len(seq); i++ {
		j := slices.Index(stageChars[:], seq[i])
		if j < 0 {
			return nil, fmt.Errorf("%w: unknown sampler letter %q in %q (known: %s)", ErrInvalidParams, seq[i], seq, string(stageChars[:]))
		}
		out = append(out, Stage(j))
	}
	return out, nil
}

// StageNames returns the names of stages.
func StageNames(st []Stage) []string {
	out := make([]string, len(st))
	for i, s := range st {
		out[i] = s.String()
	}
	return out
}

// LogitBias adds Bias to a token's logit (-Inf bans it).
type LogitBias struct {
	Token int32
	Bias  float32
}

// Breakers are DRY's processed sequence breakers: for a head token, the
// tails that complete a breaker after it (an empty tail: the token alone
// breaks). DRYBreakers builds them.
type Breakers map[int32][][]int32

// DRYBreakers processes DRY sequence breakers the way llama.cpp does: a
// token whose text contains a breaker is a breaker by itself; a token
// whose text ends with the start of a breaker is the head of a sequence
// whose tail is the tokenization of the breaker's rest (at most 20
// tokens). Breakers longer than 40 bytes are cut. piece returns a token's
// text (special tokens rendered); tokenize tokenizes plain text without
// special tokens.
func DRYBreakers(breakers []string, nVocab int, piece func(int) string, tokenize func(string) []int) Breakers {
	const maxChars, maxSeq = 40, 20
	out := Breakers{}
	var strs []string
	for _, b := range breakers {
		if b == "" {
			continue
		}
		if len(b) > maxChars {
			b = b[:maxChars]
		}
		strs = append(strs, b)
	}
	if len(strs) == 0 {
		return out
	}
	for id := 0; id < nVocab; id++ {
		word := piece(id)
		for _, str := range strs {
			if strings.Contains(word, str) {
				out.add(int32(id), nil)
				continue
			}
			for pos := 0; pos < len(word); pos++ {
				if word[pos] != str[0] {
					continue
				}
				i := 1
				match := true
				for ; i < len(str) && pos+i < len(word); i++ {
					if word[pos+i] != str[i] {
						match = false
						break
					}
				}
				if !match {
					continue
				}
				toks := tokenize(str[i:])
				if len(toks) > maxSeq {
					toks = toks[:maxSeq]
				}
				tail := make([]int32, len(toks))
				for k, t := range toks {
					tail[k] = int32(t)
				}
				out.add(int32(id), tail)
			}
		}
	}
	return out
}

func (b Breakers) add(head int32, tail []int32) {
	for _, t := range b[head] {
		if slices.Equal(t, tail) {
			return
		}
	}
	if tail == nil {
		tail = []int32{}
	}
	b[head] = append(b[head], tail)
}

// tok is a candidate of the chain: token, logit and probability (set by
// the stages that compute a softmax).
type tok struct {
	id    int32
	logit float32
	p     float32
}

// tokArr is llama_token_data_array: the candidates, and whether they are
// sorted by logit, highest first.
type tokArr struct {
	d      []tok
	sorted bool
}

func tokBetter(a, b tok) int {
	switch {
	case a.logit > b.logit:
		return -1
	case a.logit < b.logit:
		return 1
	case a.id < b.id:
		return -1
	case a.id > b.id:
		return 1
	}
	return 0
}

func (a *tokArr) sort() {
	if !a.sorted {
		slices.SortFunc(a.d, tokBetter)
		a.sorted = true
	}
}

func expf(x float32) float32 { return float32(exp(float64(x))) }
func logf(x float32) float32 { return float32(math.Log(float64(x))) }

// softmax sets p (llama_sampler_softmax_impl), sorting first if doSort.
func (a *tokArr) softmax(doSort bool) {
	if doSort {
		a.sort()
	}
	mx := a.d[0].logit
	if !a.sorted {
		for _, t := range a.d[1:] {
			mx = max(mx, t.logit)
		}
	}
	var sum float32
	for i := range a.d {
		p := expf(a.d[i].logit - mx)
		if a.d[i].logit == mx { // also when mx is infinite
			p = 1
		}
		a.d[i].p = p
		sum += p
	}
	for i := range a.d {
		a.d[i].p /= sum
	}
}

func (a *tokArr) topK(k int) {
	if k <= 0 {
		return
	}
	k = min(k, len(a.d))
	a.sort()
	a.d = a.d[:k]
}

func (a *tokArr) topP(p float32, minKeep int) {
	if p >= 1 {
		return
	}
	a.softmax(false)
	a.sort()
	var cum float32
	last := len(a.d)
	for i := range a.d {
		cum += a.d[i].p
		if cum >= p && i+1 >= minKeep {
			last = i + 1
			break
		}
	}
	a.d = a.d[:last]
}

func (a *tokArr) minP(p float32, minKeep int) {
	if p <= 0 || len(a.d) == 0 {
		return
	}
	if !a.sorted {
		mx := float32(-math.MaxFloat32)
		for _, t := range a.d {
			mx = max(mx, t.logit)
		}
		minLogit := mx + logf(p)
		n := 0
		for _, t := range a.d {
			if t.logit >= minLogit {
				n++
			}
		}
		if n > 0 && n >= minKeep {
			out := a.d[:0]
			for _, t := range a.d {
				if t.logit >= minLogit {
					out = append(out, t)
				}
			}
			a.d = out
			return
		}
	}
	a.sort()
	minLogit := a.d[0].logit + logf(p)
	i := 1
	for ; i < len(a.d); i++ {
		if a.d[i].logit < minLogit && i >= minKeep {
			break
		}
	}
	a.d = a.d[:i]
}

func (a *tokArr) typical(p float32, minKeep int, buf *[]tok, scores *[]float32) {
	if p >= 1 || p <= 0 {
		return
	}
	a.softmax(true)
	var entropy float32
	for _, t := range a.d {
		entropy += -t.p * logf(t.p)
	}
	sc := (*scores)[:0]
	for _, t := range a.d {
		sc = append(sc, float32(math.Abs(float64(-logf(t.p)-entropy))))
	}
	*scores = sc
	idx := make([]int, len(a.d))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(x, y int) int {
		switch {
		case sc[x] < sc[y]:
			return -1
		case sc[x] > sc[y]:
			return 1
		}
		return 0
	})
	var cum float32
	last := len(idx)
	for i, j := range idx {
		cum += a.d[j].p
		if cum > p && (minKeep == 0 || i >= minKeep-1) {
			last = i + 1
			break
		}
	}
	nb := (*buf)[:0]
	for _, j := range idx[:last] {
		nb = append(nb, a.d[j])
	}
	*buf = nb
	a.d = a.d[:last]
	copy(a.d, nb)
	a.sorted = false
}

// temp is llama_sampler_temp_impl: divide, or for temp <= 0 keep only the
// first highest logit (the others become -Inf).
func (a *tokArr) temp(t float32) {
	if t <= 0 {
		mi := 0
		for i := 1; i < len(a.d); i++ {
			if a.d[i].logit > a.d[mi].logit {
				a.d[mi].logit = float32(math.Inf(-1))
				mi = i
			} else {
				a.d[i].logit = float32(math.Inf(-1))
			}
		}
		return
	}
	for i := range a.d {
		a.d[i].logit /= t
	}
}

// tempExt is the temperature stage with dynamic temperature (delta > 0:
// the temperature moves within temp±delta with the entropy).
func (a *tokArr) tempExt(t, delta, exponent float32) {
	if delta <= 0 {
		a.temp(t)
		return
	}
	minT, maxT := max(0, t-delta), t+delta
	if len(a.d) <= 1 {
		return
	}
	maxEntropy := -logf(1 / float32(len(a.d)))
	a.softmax(true)
	var entropy float32
	for _, x := range a.d {
		if x.p > 0 {
			entropy -= x.p * logf(x.p)
		}
	}
	norm := entropy / maxEntropy
	dyn := minT + (maxT-minT)*float32(math.Pow(float64(norm), float64(exponent)))
	a.temp(dyn)
	mx := float64(a.d[0].logit)
	var sum float64
	for i := range a.d {
		p := exp(float64(a.d[i].logit) - mx)
		a.d[i].p = float32(p)
		sum += p
	}
	for i := range a.d {
		a.d[i].p = float32(float64(a.d[i].p) / sum)
	}
}

func (a *tokArr) xtc(prob, threshold float32, minKeep int, rng *rand.PCG) {
	if prob <= 0 || threshold > 0.5 || len(a.d) < 2 {
		return
	}
	chance := float32(rng.Uint64()>>40) * 0x1p-24
	if chance > prob {
		return
	}
	a.softmax(true)
	last := 0
	for i, t := range a.d {
		if t.p >= threshold {
			last = i
		} else {
			break
		}
	}
	if len(a.d)-last >= minKeep && last > 0 {
		a.d = a.d[last:]
	}
}

func (a *tokArr) topNSigma(n float32) {
	if n <= 0 || len(a.d) <= 1 {
		return
	}
	ninf := float32(math.Inf(-1))
	mx := a.d[0].logit
	var sum float32
	valid := 0
	for _, t := range a.d {
		if t.logit != ninf {
			mx = max(mx, t.logit)
			sum += t.logit
			valid++
		}
	}
	var mean float32
	if valid > 0 {
		mean = sum / float32(valid)
	}
	var acc float32
	for _, t := range a.d {
		if t.logit != ninf {
			d := float64(t.logit - mean)
			acc += float32(d * d)
		}
	}
	var std float32
	if valid > 0 {
		std = float32(math.Sqrt(float64(acc / float32(valid))))
	}
	for i := range a.d {
		if a.d[i].logit < mx-n*std {
			a.d[i].logit = ninf
		}
	}
	a.softmax(true)
}

func (a *tokArr) bias(lb []LogitBias) {
	for _, b := range lb {
		if int(b.Token) < len(a.d) && a.d[b.Token].id == b.Token {
			a.d[b.Token].logit += b.Bias
			continue
		}
		for i := range a.d {
			if a.d[i].id == b.Token {
				a.d[i].logit += b.Bias
				break
			}
		}
	}
}

// drawP picks an index with probability p (std::discrete_distribution
// over the candidates' p).
func (a *tokArr) drawP(rng *rand.PCG) int {
	var z float64
	for _, t := range a.d {
		z += float64(t.p)
	}
	u := float64(rng.Uint64()>>11) * 0x1p-53 * z
	var cum float64
	last := 0
	for i, t := range a.d {
		if t.p > 0 {
			cum += float64(t.p)
			last = i
			if cum > u {
				return i
			}
		}
	}
	return last
}

// dist is llama_sampler_dist: softmax over the candidates and a draw.
func (a *tokArr) dist(rng *rand.PCG) int {
	if len(a.d) == 1 {
		a.d[0].p = 1
		return 0
	}
	a.softmax(false)
	return a.drawP(rng)
}

// chain runs the configured chain on the candidates and returns the
// chosen token.
func (s *Sampler) chain(a *tokArr) int {
	p := &s.p
	if len(p.LogitBias) > 0 {
		a.bias(p.LogitBias)
	}
	switch p.Mirostat {
	case 1:
		a.temp(p.Temperature)
		return s.mirostat1(a)
	case 2:
		a.temp(p.Temperature)
		return s.mirostat2(a)
	}
	for _, st := range s.stages {
		if len(a.d) == 0 {
			break
		}
		switch st {
		case StagePenalties:
			s.penalizeArr(a)
		case StageDRY:
			s.dry(a)
		case StageTopNSigma:
			a.topNSigma(p.TopNSigma)
		case StageTopK:
			a.topK(p.TopK)
		case StageTypicalP:
			a.typical(p.TypicalP, p.MinKeep, &s.tbuf, &s.scores)
		case StageTopP:
			a.topP(p.TopP, p.MinKeep)
		case StageMinP:
			a.minP(p.MinP, p.MinKeep)
		case StageXTC:
			a.xtc(p.XTCProbability, p.XTCThreshold, p.MinKeep, &s.xrng)
		case StageTemperature:
			a.tempExt(p.Temperature, p.DynatempRange, p.DynatempExponent)
		}
	}
	if len(a.d) == 0 {
		return -1
	}
	i := a.dist(&s.rng)
	s.final = a.d
	return int(a.d[i].id)
}

func (s *Sampler) mirostat1(a *tokArr) int {
	p := &s.p
	a.softmax(true)
	const m = 100
	var sumTiBi, sumTiSq float32
	for i := 0; i < m-1 && i < len(a.d)-1; i++ {
		ti := logf(float32(i+2) / float32(i+1))
		bi := logf(a.d[i].p / a.d[i+1].p)
		sumTiBi += ti * bi
		sumTiSq += ti * ti
	}
	sHat := sumTiBi / sumTiSq
	eps := sHat - 1
	k := float32(math.Pow(float64((eps*float32(math.Pow(2, float64(s.mu))))/(1-float32(math.Pow(float64(s.vocab), float64(-eps))))), float64(1/sHat)))
	kk := 1
	if k == k && k >= 1 { // int(k) of a NaN or huge value: keep it in range
		kk = int(min(k, float32(len(a.d))))
	}
	a.topK(max(kk, 1))
	a.softmax(true)
	i := a.drawP(&s.rng)
	surprise := -float32(math.Log2(float64(a.d[i].p)))
	s.mu -= p.MirostatEta * (surprise - p.MirostatTau)
	s.final = a.d
	return int(a.d[i].id)
}

func (s *Sampler) mirostat2(a *tokArr) int {
	p := &s.p
	a.softmax(true)
	n := 0
	for n < len(a.d) && !(-float32(math.Log2(float64(a.d[n].p))) > s.mu) {
		n++
	}
	a.d = a.d[:max(n, 1)]
	a.softmax(true)
	i := a.drawP(&s.rng)
	surprise := -float32(math.Log2(float64(a.d[i].p)))
	s.mu -= p.MirostatEta * (surprise - p.MirostatTau)
	s.final = a.d
	return int(a.d[i].id)
}

// penalizeArr is the penalties stage on chain candidates.
func (s *Sampler) penalizeArr(a *tokArr) {
	if s.counts == nil {
		return
	}
	rp, fp, pp := s.p.RepeatPenalty, s.p.FrequencyPenalty, s.p.PresencePenalty
	for i := range a.d {
		c := s.counts[a.d[i].id]
		if c == 0 {
			continue
		}
		l := a.d[i].logit
		if l <= 0 {
			l = float32(l * rp)
		} else {
			l /= rp
		}
		l -= float32(float32(c)*fp) + pp
		a.d[i].logit = l
	}
	a.sorted = false
}

// dryOn reports whether DRY can change anything.
func (p *Params) dryOn() bool {
	return p.DRYMultiplier != 0 && p.DRYBase >= 1 && p.DRYPenaltyLastN != 0
}

// dryWindow is DRY's effective window.
func (p *Params) dryWindow() int {
	if p.DRYPenaltyLastN == -1 {
		return max(p.ContextSize, 0)
	}
	return max(p.DRYPenaltyLastN, 0)
}

// dryAt returns the i-th most recent token of DRY's history (0: last).
func (s *Sampler) dryAt(i int) int32 {
	return s.dryHist[len(s.dryHist)-1-i]
}

// dry is llama.cpp's DRY ("don't repeat yourself") stage: a token that
// would extend a repetition of at least DRYAllowedLength tokens of the
// recent history is penalized by multiplier·base^(length-allowed);
// sequence breakers cut the repetitions it looks at.
func (s *Sampler) dry(a *tokArr) {
	p := &s.p
	if !p.dryOn() {
		return
	}
	n := min(len(s.dryHist), p.dryWindow())
	if p.ContextSize > 0 {
		n = min(n, p.ContextSize)
	}
	if n <= p.DRYAllowedLength {
		return
	}
	// Step 1: the latest restart sequence limits the repetition length.
	repLimit := n
	for i := 0; i < n; i++ {
		tails, ok := p.DRYBreakers[s.dryAt(i)]
		if !ok {
			continue
		}
		longest := -1
		for _, tail := range tails {
			sl := len(tail)
			if sl > longest && sl <= i {
				match := true
				for off := 0; off < sl; off++ {
					if tail[off] != s.dryAt(i-off-1) {
						match = false
						break
					}
				}
				if match {
					longest = sl
				}
			}
		}
		if longest >= 0 {
			repLimit = i - longest
			break
		}
	}
	if repLimit < p.DRYAllowedLength {
		return
	}
	// Step 2: for each position, the length of the suffix of the history
	// that also ends there (Z-algorithm over the reversed history).
	rc := s.dryCount[:0]
	for range n {
		rc = append(rc, 0)
	}
	s.dryCount = rc
	last := n - 1
	lt, rt := 0, 0
	for k := 1; k < n; k++ {
		if k > rt {
			m := 0
			for m+k < n && s.dryAt(m) == s.dryAt(m+k) {
				m++
			}
			rc[last-k] = min(m, repLimit)
			if m > 0 {
				lt, rt = k, k+m-1
			}
		} else {
			pi := k - lt
			right := rt - k + 1
			if rc[last-pi] < right {
				rc[last-k] = min(rc[last-pi], repLimit)
			} else {
				i := rt + 1
				for i < n && s.dryAt(i) == s.dryAt(i-k) {
					i++
				}
				rc[last-k] = min(i-k, repLimit)
				lt, rt = k, i-1
			}
		}
	}
	// Step 3: the token after each repetition would extend it.
	clear(s.dryMax)
	for i := 0; i < n-1; i++ {
		rl := rc[i]
		if rl >= p.DRYAllowedLength {
			t := s.dryAt(n - 2 - i)
			if cur, ok := s.dryMax[t]; !ok || cur < rl {
				s.dryMax[t] = rl
			}
		}
	}
	// Step 4: penalties.
	const floatMaxLog = 88.7228391
	maxExp := 0
	if p.DRYBase > 1.000001 {
		maxExp = int(floatMaxLog / float32(math.Log(float64(p.DRYBase))))
	}
	for i := range a.d {
		rl, ok := s.dryMax[a.d[i].id]
		if !ok {
			continue
		}
		single := false
		for _, tail := range p.DRYBreakers[a.d[i].id] {
			if len(tail) == 0 {
				single = true
				break
			}
		}
		if single {
			continue
		}
		e := rl - p.DRYAllowedLength
		if maxExp > 0 && e > maxExp {
			e = maxExp
		}
		a.d[i].logit -= p.DRYMultiplier * float32(math.Pow(float64(p.DRYBase), float64(e)))
	}
	a.sorted = false
}

// candidates fills the chain's array with every token (allowed nil) or
// the allowed ones, in id order.
func (s *Sampler) candidates(logits []float32, allowed []uint64) *tokArr {
	n := len(logits)
	if cap(s.arr) < n {
		s.arr = make([]tok, 0, n)
	}
	d := s.arr[:0]
	if allowed == nil {
		for i, v := range logits {
			d = append(d, tok{id: int32(i), logit: clean(v)})
		}
	} else {
		for w, bits := range allowed {
			for bits != 0 {
				i := w*64 + mbits.TrailingZeros64(bits)
				if i >= n {
					break
				}
				d = append(d, tok{id: int32(i), logit: clean(logits[i])})
				bits &= bits - 1
			}
		}
	}
	s.ta = tokArr{d: d}
	return &s.ta
}

// PostProbs returns up to n of the candidates left by the last Sample's
// chain with their probabilities after every stage (llama-server's
// post_sampling_probs), most probable first; chosen is always among them.
// It returns nil when the last sample was greedy (temperature <= 0 on
// the fast path: the chosen token had probability 1).
func (s *Sampler) PostProbs(n int, chosen int) []TokenProb {
	if n <= 0 {
		return nil
	}
	if s.final == nil {
		return []TokenProb{{ID: chosen, Prob: 1, LogProb: 0}}
	}
	c := slices.Clone(s.final)
	slices.SortFunc(c, func(a, b tok) int {
		switch {
		case a.p > b.p:
			return -1
		case a.p < b.p:
			return 1
		}
		return int(a.id - b.id)
	})
	out := make([]TokenProb, 0, min(n, len(c)))
	for _, t := range c {
		if len(out) == n {
			break
		}
		out = append(out, TokenProb{ID: int(t.id), Prob: float64(t.p), LogProb: math.Log(float64(t.p))})
	}
	return out
}

// PostLogProb returns the log of tok's probability among the last draw's
// final candidates (-Inf if it was not among them; 0 after a fast-path
// greedy draw).
func (s *Sampler) PostLogProb(tok int) float64 {
	if s.final == nil {
		return 0
	}
	for _, t := range s.final {
		if int(t.id) == tok {
			return math.Log(float64(t.p))
		}
	}
	return math.Inf(-1)
}
