package synth

import (
	"hash/fnv"
	"math"
	"strings"
)

// The weights are random but shaped so that a forward pass behaves like a
// language model's, in every family and at every depth:
//
//   - Projections from the normalized residual (q, k, v, gate, up) have
//     std 1/sqrt(fan_in), so their outputs are about N(0, 1).
//   - The output projections (attn_output, ffn_down) are scaled so that
//     the residual stream's per-element RMS grows to residualRMS at the
//     last layer whatever the depth; gemma's post-norms, which fix the
//     sublayers' output size, get the matching weight instead.
//   - A few FFN channels ("DC channels") repeat their gate row in the up
//     row, so that act(a)·a ≥ 0 has a positive mean, and ffn_down writes
//     them along one fixed direction u: the residual gains a component
//     along u that every token shares (targetCos of it at the last layer).
//   - Each output row (output.weight, or token_embd when tied) is
//     noise·z_v/sqrt(d) + prior_v·u/(sqrt(d)·targetCos), so a logit is
//     context-dependent noise of std about logitNoise plus a Zipf-like
//     prior over the vocabulary's merge order (frequent merges, frequent
//     tokens), prior_v = zipfSlope·ln((maxRank+10)/(rank_v+10)): logits
//     are peaked, top-k lists depend on the context, and perplexity on
//     real text stays well under the vocabulary size times a few.
//   - Token embeddings are small (noise/sqrt(d) per element), so the last
//     residual is mostly the layers' work; with tied embeddings a token
//     does not predict itself.
//   - Norm weights are 1 ± 5% (gemma's stored weights already include the
//     +1 its converter adds); q, k, v biases are N(0, 0.2²).
//
// Values are drawn per row from a generator seeded by (seed, tensor name,
// row), so the bytes do not depend on the number of threads, and the same
// preset and seed give the same values in every file type.
const (
	logitNoise  = 1.6  // std of the context-dependent part of a logit
	zipfSlope   = 1.0  // prior slope in nats per e-fold of rank
	targetCos   = 0.5  // cosine between the last residual and u
	residualRMS = 3.0  // per-element RMS of the last residual (non-gemma)
	selfLogit   = 1.5  // gemma: bound on a token's tied self-logit (nats)
	normJitter  = 0.05 // norm weights are 1 ± this (std)
	biasStd     = 0.2
	actMeanSq   = 0.4 // E[act(a)·a] of a DC channel (a has variance about 0.8)
	downInRMS   = 0.6 // RMS of act(gate)·up, the input of ffn_down
)

// weights holds what the generator derives from a preset.
type weights struct {
	p     *Preset
	seed  uint64
	u     []float64 // the shared direction, unit norm
	prior []float32 // per token, nats
	gemma bool

	embStd, outStd float64 // token_embd, output noise std
	priorScale     float64 // u coefficient per nat of prior
	attnOutStd     float64
	downStd        float64
	nDC            int     // DC channels per layer
	dcCol          float64 // ffn_down weight along u for a DC channel
	postNorm       float64 // gemma post-norm weight
}

func newWeights(p *Preset, v *vocab, seed uint64) *weights {
	w := &weights{p: p, seed: seed, gemma: p.Arch == "gemma2" || p.Arch == "gemma3"}
	d := float64(p.NEmbd)
	L := float64(p.NLayer)
	sqd := math.Sqrt(d)

	st := rowState(seed, "synth.u", 0)
	w.u = make([]float64, p.NEmbd)
	var n2 float64
	for i := range w.u {
		w.u[i] = normal(&st)
		n2 += w.u[i] * w.u[i]
	}
	for i := range w.u {
		w.u[i] /= math.Sqrt(n2)
	}

	maxRank := int32(0)
	for _, r := range v.rank {
		maxRank = max(maxRank, r)
	}
	w.prior = make([]float32, p.NVocab)
	top := math.Log(float64(maxRank) + 10)
	for i, r := range v.rank {
		if r < 0 {
			w.prior[i] = -4 // control and padding tokens: below the rarest
		} else {
			w.prior[i] = float32(zipfSlope * (top - math.Log(float64(r)+10)))
		}
	}

	w.embStd = logitNoise / sqd
	w.outStd = logitNoise / sqd
	w.priorScale = 1 / (sqd * targetCos)

	// q: DC/random ratio of the last residual that gives targetCos.
	q := targetCos / math.Sqrt(1-targetCos*targetCos)
	w.nDC = max(1, min(16, p.ffn()/32))
	var rho, kappa float64
	if w.gemma {
		// Every sublayer adds postNorm per element (attention) or that
		// split between noise and DC (FFN).
		R := logitNoise * logitNoise * sqd / selfLogit
		w.postNorm = R / math.Sqrt(2*L*(1+q*q))
		rho = 1
		kappa = q * math.Sqrt(2/L)
	} else {
		rho = residualRMS / math.Sqrt(1.5*L*(1+q*q))
		kappa = q * math.Sqrt(1.5/L)
	}
	w.attnOutStd = rho / math.Sqrt(float64(p.NHead*p.HeadDim))
	w.downStd = rho / (downInRMS * math.Sqrt(float64(p.ffn())))
	// DC vector = actMeanSq·dcCol·nDC·u, per-element RMS kappa·rho.
	w.dcCol = kappa * rho * sqd / (actMeanSq * float64(w.nDC))
	return w
}

// fill writes row r of tensor s into dst (len = s.dims[0]).
func (w *weights) fill(s *spec, r int, dst []float32) {
	p := w.p
	n := len(dst)
	switch s.role {
	case roleRopeFreqs:
		copy(dst, llama3RopeFactors(p))
		return
	case roleRopeLong:
		copy(dst, p.LongRope.Long)
		return
	case roleRopeShort:
		copy(dst, p.LongRope.Short)
		return
	}
	name, row := s.name, r
	dc := false
	if s.role == roleIn && isExperts(s.name) {
		// Each expert has its DC channels (the first rows of its slab);
		// up_exps repeats gate_exps' rows there.
		if r%p.NFFExp < w.nDC {
			dc = true
			if s.gate != "" {
				name = s.gate
			}
		}
	} else if s.role == roleIn && (s.gate != "" || p.Arch == "phi3") && isFFNUp(s.name) {
		// The up rows of DC channels repeat the gate rows.
		ff := p.NFF
		switch {
		case s.gate != "" && r < w.nDC:
			name, dc = s.gate, true
		case s.gate == "" && r >= ff && r-ff < w.nDC:
			row, dc = r-ff, true
		case s.gate == "" && r < w.nDC:
			dc = true
		}
	}
	if s.role == roleIn && isFFNGate(s.name) && r < w.nDC {
		dc = true
	}
	st := rowState(w.seed, name, row)
	switch s.role {
	case roleEmbd, roleOutput:
		std := w.outStd
		if s.role == roleEmbd {
			std = w.embStd
		}
		a := 0.0
		if s.role == roleOutput || p.Tied {
			a = float64(w.prior[r]) * w.priorScale
		}
		for i := range dst {
			dst[i] = float32(std*normal(&st) + a*w.u[i])
		}
	case roleConv:
		// A convolution tap mix of unit gain (std 1/sqrt(taps)).
		std := 1 / math.Sqrt(float64(n))
		for i := range dst {
			dst[i] = float32(std * normal(&st))
		}
	case roleSSMDt:
		for i := range dst {
			dst[i] = float32(0.5 * normal(&st))
		}
	case roleSSMA:
		// A = −exp(A_log): decays of a few to a few dozen tokens.
		for i := range dst {
			dst[i] = float32(-math.Exp(-1.5 + 0.7*normal(&st)))
		}
	case roleSink:
		for i := range dst {
			dst[i] = float32(normal(&st))
		}
	case roleRouter:
		std := 1 / math.Sqrt(float64(n))
		for i := range dst {
			dst[i] = float32(std * normal(&st))
		}
	case roleIn:
		std := 1 / math.Sqrt(float64(n))
		if !dc {
			for i := range dst {
				dst[i] = float32(std * normal(&st))
			}
			return
		}
		// DC channel: orthogonal to u, so the shared component does not
		// feed back into its own activation.
		tmp := make([]float64, n)
		var dot float64
		for i := range tmp {
			tmp[i] = std * normal(&st)
			dot += tmp[i] * w.u[i]
		}
		for i := range dst {
			dst[i] = float32(tmp[i] - dot*w.u[i])
		}
	case roleAttnOut:
		for i := range dst {
			dst[i] = float32(w.attnOutStd * normal(&st))
		}
	case roleDown:
		for i := range dst {
			dst[i] = float32(w.downStd * normal(&st))
		}
		for j := 0; j < w.nDC && j < n; j++ {
			dst[j] += float32(w.dcCol * w.u[r%p.NEmbd])
		}
	case roleNorm:
		for i := range dst {
			dst[i] = float32(1 + normJitter*normal(&st))
		}
	case rolePostNorm:
		for i := range dst {
			dst[i] = float32(w.postNorm * (1 + normJitter*normal(&st)))
		}
	case roleBias:
		for i := range dst {
			dst[i] = float32(biasStd * normal(&st))
		}
	}
}

func isFFNUp(name string) bool   { return strings.HasSuffix(name, ".ffn_up.weight") }
func isExperts(name string) bool { return strings.HasSuffix(name, "_exps.weight") }
func isFFNGate(name string) bool { return strings.HasSuffix(name, ".ffn_gate.weight") }

// rowState seeds the generator of one row.
func rowState(seed uint64, name string, row int) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	s := seed ^ h.Sum64()
	s = splitmix(&s) ^ uint64(row)*0x9e3779b97f4a7c15
	splitmix(&s)
	return s
}

// splitmix is SplitMix64: advances the state and returns the next value.
func splitmix(s *uint64) uint64 {
	*s += 0x9e3779b97f4a7c15
	z := *s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// normal returns an approximately standard normal value: the sum of eight
// uniform 16-bit integers, centred and scaled (Irwin–Hall, within ±4.9σ).
// Integer arithmetic and one division: the same on every platform.
func normal(s *uint64) float64 {
	a, b := splitmix(s), splitmix(s)
	sum := (a & 0xffff) + (a >> 16 & 0xffff) + (a >> 32 & 0xffff) + (a >> 48) +
		(b & 0xffff) + (b >> 16 & 0xffff) + (b >> 32 & 0xffff) + (b >> 48)
	const mean = 8 * 65535.0 / 2
	return (float64(sum) - mean) / normalStd
}

// normalStd is the std of the sum: sqrt(8·(65536²−1)/12).
var normalStd = math.Sqrt(8 * (65536*65536 - 1) / 12.0)

func pow(x, y float64) float64 { return math.Pow(x, y) }
