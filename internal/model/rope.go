package model

import "math"

// ropeInvFreq returns, for each rotated pair j, base^(-2j/Dim) divided by
// the optional per-dimension frequency factor.
func ropeInvFreq(rp *Rope, factors []float32) []float64 {
	inv := make([]float64, rp.Dim/2)
	for j := range inv {
		inv[j] = math.Pow(rp.Base, -2*float64(j)/float64(rp.Dim))
		if factors != nil {
			inv[j] /= float64(factors[j])
		}
	}
	return inv
}

// ropeTask fills the RoPE tables with each token's cos/sin pairs, one
// table per RoPE the model's layers use (item = token).
type ropeTask struct {
	r *Runner
	b *Batch
	n int
}

func (t *ropeTask) Do(i, _ int) {
	r := t.r
	for s := range r.M.Ropes {
		rp := &r.M.Ropes[s]
		cs := r.rope[s][i*rp.Dim : (i+1)*rp.Dim]
		ropeAngles(rp, r.invFreq[s], t.b.Pos[i], cs)
	}
}

// ropeAngles writes cos, sin (interleaved) of each pair's rotation angle at
// position pos, with linear or YaRN scaling as ggml's rope does.
func ropeAngles(rp *Rope, invFreq []float64, pos int, cs []float32) {
	rs := &rp.Scaling
	freqScale := 1 / rs.Factor
	extFactor := rs.ext()
	mscale := rs.magnitude()
	var lo, hi float64
	if extFactor != 0 {
		lo, hi = yarnCorrDims(rp.Dim, rs.OrigCtx, rp.Base, rs.BetaFast, rs.BetaSlow)
	}
	for j, f := range invFreq {
		extrap := float64(pos) * f
		theta := extrap * freqScale
		if extFactor != 0 {
			y := (float64(j) - lo) / math.Max(0.001, hi-lo)
			ramp := (1 - math.Min(1, math.Max(0, y))) * extFactor
			theta = theta*(1-ramp) + extrap*ramp
		}
		s, co := math.Sincos(theta)
		cs[2*j] = float32(co * mscale)
		cs[2*j+1] = float32(s * mscale)
	}
}

func yarnCorrDims(nDims, origCtx int, base, betaFast, betaSlow float64) (float64, float64) {
	dim := func(nRot float64) float64 {
		return float64(nDims) * math.Log(float64(origCtx)/(nRot*2*math.Pi)) / (2 * math.Log(base))
	}
	start := math.Floor(dim(betaFast))
	end := math.Ceil(dim(betaSlow))
	return math.Max(0, start), math.Min(float64(nDims-1), end)
}

// applyRope rotates the first Dim dimensions of each of nHeads heads of
// each of n tokens in x (rows of nHeads*HeadDim) with RoPE number set.
func (r *Runner) applyRope(x []float32, nHeads, n, set int) {
	c := &r.M.Config
	rp := &c.Ropes[set]
	hd, half := c.HeadDim, rp.Dim/2
	for i := 0; i < n; i++ {
		cs := r.rope[set][i*rp.Dim : (i+1)*rp.Dim]
		for h := 0; h < nHeads; h++ {
			v := x[(i*nHeads+h)*hd : (i*nHeads+h+1)*hd]
			if rp.Neox {
				for j := 0; j < half; j++ {
					co, s := cs[2*j], cs[2*j+1]
					a, b := v[j], v[j+half]
					v[j] = a*co - b*s
					v[j+half] = a*s + b*co
				}
			} else {
				for j := 0; j < half; j++ {
					co, s := cs[2*j], cs[2*j+1]
					a, b := v[2*j], v[2*j+1]
					v[2*j] = a*co - b*s
					v[2*j+1] = a*s + b*co
				}
			}
		}
	}
}
