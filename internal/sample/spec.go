package sample

import "math"

// Speculative decoding: the distribution a Sampler draws from, and the
// acceptance rule that keeps a drafted token's distribution exactly the
// sampler's own (Leviathan et al. 2023, "Fast Inference from Transformers
// via Speculative Decoding"; Chen et al. 2023).

// Dist is a probability distribution over a few tokens: the candidates a
// sampler keeps after its penalties and filters, with the probabilities its
// draw gives them (they add up to 1). A greedy sampler's is one token with
// probability 1.
type Dist struct {
	IDs []int32
	P   []float64
}

// Prob returns the probability of tok (0 when it is not a candidate).
func (d *Dist) Prob(tok int) float64 {
	for i, id := range d.IDs {
		if int(id) == tok {
			return d.P[i]
		}
	}
	return 0
}

// Max returns the most probable token's probability (0 when empty).
func (d *Dist) Max() float64 {
	m := 0.0
	for _, p := range d.P {
		m = max(m, p)
	}
	return m
}

// Distribution returns the distribution Sample would draw the next token
// from, given logits and the history accepted so far: penalties, top-k,
// top-p, min-p and temperature exactly as Sample applies them. It consumes
// no randomness. The result reuses dst's slices.
func (s *Sampler) Distribution(logits []float32, dst Dist) Dist {
	dst.IDs, dst.P = dst.IDs[:0], dst.P[:0]
	if len(logits) == 0 {
		return dst
	}
	s.grow(len(logits))
	src := logits
	if len(s.distinct) > 0 {
		src = s.penalize(logits)
	}
	if s.p.Temperature <= 0 {
		dst.IDs = append(dst.IDs, int32(argmax(src)))
		dst.P = append(dst.P, 1)
		return dst
	}
	c := s.filter(src)
	t := s.p.Temperature
	for i := range c {
		c[i].logit /= t
	}
	w := s.probs[:len(c)]
	z := expWeights(c, w, false)
	for i, x := range c {
		if w[i] > 0 {
			dst.IDs = append(dst.IDs, x.id)
			dst.P = append(dst.P, w[i]/z)
		}
	}
	return dst
}

// uniform returns a draw in [0, 1) from the sampler's generator.
func (s *Sampler) uniform() float64 { return float64(s.rng.Uint64()>>11) * 0x1p-53 }

// DrawFrom draws a token from d with the sampler's generator (-1 when d is
// empty). A one-token distribution is returned without a draw.
func (s *Sampler) DrawFrom(d Dist) int {
	switch len(d.IDs) {
	case 0:
		return -1
	case 1:
		return int(d.IDs[0])
	}
	u := s.uniform()
	cum := 0.0
	last := -1
	for i, p := range d.P {
		if p > 0 {
			cum += p
			last = i
			if cum > u {
				return int(d.IDs[i])
			}
		}
	}
	return int(d.IDs[last])
}

// Verify decides a drafted token by the speculative sampling rule. p is the
// target's distribution at this position (Distribution of the target's
// logits), draft the drafted token and q the distribution it was drawn from
// (nil: a deterministic draft, probability 1, as prompt lookup's). The
// draft is accepted with probability min(1, p(draft)/q(draft)); otherwise
// the token is drawn from the residual max(0, p-q), normalised. Either way
// the returned token is distributed exactly as p: speculation changes the
// speed, never the output's distribution. When p is one token (greedy) the
// result is that token, with no randomness used.
func (s *Sampler) Verify(p Dist, q *Dist, draft int) (tok int, accepted bool) {
	if len(p.IDs) == 1 {
		return int(p.IDs[0]), int(p.IDs[0]) == draft
	}
	pd := p.Prob(draft)
	qd := 1.0
	if q != nil {
		qd = q.Prob(draft)
	}
	if pd > 0 && (pd >= qd || s.uniform()*qd < pd) {
		return draft, true
	}
	// Rejected: draw from the residual. The residual's weights are
	// p(y) - q(y) where positive; the total is 1 - sum(min(p, q)).
	qOf := pointMass(draft)
	if q != nil {
		qOf = q.lookup()
	}
	z := 0.0
	for i, id := range p.IDs {
		z += max(0, p.P[i]-qOf(id))
	}
	if !(z > 0) || math.IsInf(z, 0) {
		// p == q up to rounding (a rejection then has probability ~0):
		// fall back to p itself.
		return s.DrawFrom(p), false
	}
	u := s.uniform() * z
	cum := 0.0
	last := -1
	for i, id := range p.IDs {
		if r := max(0, p.P[i]-qOf(id)); r > 0 {
			cum += r
			last = i
			if cum > u {
				return int(id), false
			}
		}
	}
	return int(p.IDs[last]), false
}

// pointMass is the probability function of a deterministic draft.
func pointMass(draft int) func(int32) float64 {
	return func(id int32) float64 {
		if int(id) == draft {
			return 1
		}
		return 0
	}
}

// lookup returns d's probability function: a scan for a few candidates,
// a map for many.
func (d *Dist) lookup() func(int32) float64 {
	if len(d.IDs) <= 64 {
		return func(id int32) float64 {
			for i, x := range d.IDs {
				if x == id {
					return d.P[i]
				}
			}
			return 0
		}
	}
	m := make(map[int32]float64, len(d.IDs))
	for i, x := range d.IDs {
		m[x] = d.P[i]
	}
	return func(id int32) float64 { return m[id] }
}
