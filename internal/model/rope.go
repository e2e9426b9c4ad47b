package model

import "math"

// ropeInvFreq returns, for each rotated pair j, base^(-2j/RopeDim) divided
// by the optional per-dimension frequency factor.
func ropeInvFreq(c *Config, factors []float32) []float64 {
	inv := make([]float64, c.RopeDim/2)
	for j := range inv {
		inv[j] = math.Pow(c.RopeBase, -2*float64(j)/float64(c.RopeDim))
		if factors != nil {
			inv[j] /= float64(factors[j])
		}
	}
	return inv
}

// ropeTask fills r.rope with each token's cos/sin pairs (item = token).
type ropeTask struct {
	r *Runner
	b *Batch
	n int
}

func (t *ropeTask) Do(i, _ int) {
	c := &t.r.M.Config
	cs := t.r.rope[i*c.RopeDim : (i+1)*c.RopeDim]
	ropeAngles(c, t.r.invFreq, t.b.Pos[i], cs)
}

// ropeAngles writes cos, sin (interleaved) of each pair's rotation angle at
// position pos, with linear or YaRN scaling as ggml's rope does.
func ropeAngles(c *Config, invFreq []float64, pos int, cs []float32) {
	rs := &c.Rope
	freqScale := 1 / rs.Factor
	extFactor := 0.0
	mscale := rs.AttnFact
	var lo, hi float64
	if rs.Type == "yarn" {
		extFactor = rs.ExtFactor
		if extFactor < 0 {
			extFactor = 1
		}
		lo, hi = yarnCorrDims(c.RopeDim, rs.OrigCtx, c.RopeBase, rs.BetaFast, rs.BetaSlow)
	}
	if extFactor != 0 {
		mscale *= 1 + 0.1*math.Log(1/freqScale)
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

// applyRope rotates the first RopeDim dimensions of each of nHeads heads of
// each of n tokens in x (rows of nHeads*HeadDim).
func (r *Runner) applyRope(x []float32, nHeads, n int) {
	c := &r.M.Config
	hd, half := c.HeadDim, c.RopeDim/2
	for i := 0; i < n; i++ {
		cs := r.rope[i*c.RopeDim : (i+1)*c.RopeDim]
		for h := 0; h < nHeads; h++ {
			v := x[(i*nHeads+h)*hd : (i*nHeads+h+1)*hd]
			if c.RopeNeox {
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
