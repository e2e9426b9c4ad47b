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
		ropeAngles(rp, r.invFreq[s], t.b.Pos[i], cs, rp.Scaling.magnitude())
	}
}

// ropeAngles writes cos, sin (interleaved) of each pair's rotation angle at
// position pos, with linear or YaRN scaling as ggml's rope does, times
// mscale. The angle is linear in pos, so a position change of delta is the
// rotation ropeAngles(delta) with mscale 1.
func ropeAngles(rp *Rope, invFreq []float64, pos int, cs []float32, mscale float64) {
	rs := &rp.Scaling
	freqScale := 1 / rs.Factor
	extFactor := rs.ext()
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

// ReRope rotates rows of one K head of layer l (rows of HeadDim values)
// as a change of position by delta would: what a context shift applies to
// the keys it keeps (kvcache.ReRope). It must not run concurrently with
// Forward.
func (r *Runner) ReRope(l int, rows []float32, delta int) {
	c := &r.M.Config
	set := c.ropeOf(l)
	rp := &c.Ropes[set]
	cs := r.shiftCS[:rp.Dim]
	ropeAngles(rp, r.invFreq[set], delta, cs, 1)
	rotateHeads(rows, c.HeadDim, rp, cs)
}

// applyRope rotates the first Dim dimensions of each of nHeads heads of
// each of n tokens in x (rows of nHeads*HeadDim) with RoPE number set.
func (r *Runner) applyRope(x []float32, nHeads, n, set int) {
	c := &r.M.Config
	rp := &c.Ropes[set]
	hd := c.HeadDim
	for i := 0; i < n; i++ {
		cs := r.rope[set][i*rp.Dim : (i+1)*rp.Dim]
		rotateHeads(x[i*nHeads*hd:(i+1)*nHeads*hd], hd, rp, cs)
	}
}

// rotateHeads rotates the first rp.Dim dimensions of every head of hd
// values in x by the cos/sin pairs cs.
func rotateHeads(x []float32, hd int, rp *Rope, cs []float32) {
	half := rp.Dim / 2
	for off := 0; off+hd <= len(x); off += hd {
		v := x[off : off+hd]
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
