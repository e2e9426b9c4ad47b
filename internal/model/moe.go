package model

import (
	"math"

	"github.com/kvserve/kvserve/internal/kernels"
	"github.com/kvserve/kvserve/internal/ops"
	"github.com/kvserve/kvserve/internal/tensor"
)

// The mixture-of-experts FFN, as llama.cpp's build_moe_ffn computes it:
//
//  1. router logits = ffn_gate_inp · x (f32 weights, as the converter and
//     llama-quantize keep them), one per expert;
//  2. probabilities: softmax over all experts (or a sigmoid per expert);
//  3. the NExpertUsed most probable experts, in decreasing order, with
//     their probabilities as weights (renormalised to sum to 1 when the
//     architecture or file says so, the sum clamped below at 2^-14 as
//     llama.cpp does; optionally scaled);
//  4. each selected expert's SwiGLU FFN on the token, its output
//     multiplied by its weight, and the weighted outputs added in
//     selection order (then the shared expert, when there is one).
//
// Tokens are grouped by expert: each expert's rows are multiplied with
// the rows of all the tokens routed to it in one product, so a prefill
// batch streams each selected expert's weights once, and a decoded token
// reads only its NExpertUsed experts' rows. The products are the same
// batch-invariant kernels as the dense path: a token's output does not
// depend on which other tokens share its expert.

// moeScratch holds the buffers of the MoE FFN for batches of up to
// maxBatch tokens.
type moeScratch struct {
	logits []float32 // [token][expert]
	sel    []int32   // [token][slot] selected expert
	wts    []float32 // [token][slot] its weight
	pair   []int32   // [token][slot] row of the gathered buffers
	count  []int     // tokens per expert
	off    []int     // first gathered row of each expert
	xg     []float32 // gathered inputs [pair][NEmbd]; then the experts' outputs
	g, u   []float32 // [pair][NFFExp]
	xq, gq []byte    // xg / g converted to the experts' vec-dot types
	xnq    []byte    // the batch's rows converted once, before gathering
	uq     []byte    // xg for the up experts when their vec-dot type differs from gate's
	shG    []float32 // shared expert: [token][NFFShared]
	shU    []float32
	shD    []float32 // [token][NEmbd]
	shW    []float32 // [token] the shared expert's gate
}

func newMoeScratch(c *Config, maxBatch int) *moeScratch {
	k := c.NExpertUsed
	s := &moeScratch{
		logits: make([]float32, maxBatch*c.NExpert),
		sel:    make([]int32, maxBatch*k),
		wts:    make([]float32, maxBatch*k),
		pair:   make([]int32, maxBatch*k),
		count:  make([]int, c.NExpert),
		off:    make([]int, c.NExpert+1),
		xg:     make([]float32, maxBatch*k*max(c.NEmbd, c.NFFExp)),
		g:      make([]float32, maxBatch*k*c.NFFExp),
		u:      make([]float32, maxBatch*k*c.NFFExp),
	}
	return s
}

// moeFFN computes the mixture-of-experts FFN of layer L for the n tokens
// of xn (normalised residual rows) and writes its output over xn.
func (r *Runner) moeFFN(L *Layer, xn []float32, n int) {
	c := &r.M.Config
	s := r.moe
	E, F, N, K := c.NEmbd, c.NFFExp, c.NExpert, c.NExpertUsed

	// Router logits and, with a gated shared expert, its gate and up.
	logits := s.logits[:n*N]
	r.mm.reset(n)
	r.mm.add(L.Router, xn, logits, N)
	if L.ShUp != nil {
		r.ensureShared(n)
		r.mm.add(L.ShGate, xn, s.shG[:n*c.NFFShared], c.NFFShared)
		r.mm.add(L.ShUp, xn, s.shU[:n*c.NFFShared], c.NFFShared)
	}
	r.mm.run()
	addBias(logits, L.RouterB)
	if L.ShRouter != nil {
		for t := 0; t < n; t++ {
			s.shW[t] = sigmoid(kernels.DotF32(L.ShRouter, xn[t*E:(t+1)*E]))
		}
	}

	// Selection and weights, per token.
	clear(s.count)
	for t := 0; t < n; t++ {
		route(c, logits[t*N:(t+1)*N], s.sel[t*K:(t+1)*K], s.wts[t*K:(t+1)*K])
		for _, e := range s.sel[t*K : (t+1)*K] {
			s.count[e]++
		}
	}
	// Group (token, slot) pairs by expert, tokens in batch order.
	s.off[0] = 0
	for e := 0; e < N; e++ {
		s.off[e+1] = s.off[e] + s.count[e]
	}
	next := s.count // reused as a cursor per expert
	for e := 0; e < N; e++ {
		next[e] = s.off[e]
	}
	P := n * K
	xg := s.xg[:P*E]
	for t := 0; t < n; t++ {
		for j := 0; j < K; j++ {
			e := s.sel[t*K+j]
			p := next[e]
			next[e]++
			s.pair[t*K+j] = int32(p)
			copy(xg[p*E:(p+1)*E], xn[t*E:(t+1)*E])
		}
	}

	// Gate and up of every expert in use, one product per expert over its
	// tokens; the inputs are converted once for all experts.
	g, u := s.g[:P*F], s.u[:P*F]
	gate0, up0 := L.GateExps[0], L.UpExps[0]
	xq := s.gatherConverted(&s.xq, gate0.Type, xn, xg, n, K)
	uq := xq
	if vecDotType(up0.Type) != vecDotType(gate0.Type) {
		uq = s.gatherConverted(&s.uq, up0.Type, xn, xg, n, K)
	}
	r.mm.reset(n)
	for e := 0; e < N; e++ {
		a, b := s.off[e], s.off[e+1]
		r.mm.addRows(L.GateExps[e], xg[a*E:b*E], rowsOf(xq, gate0, a, b), g[a*F:b*F], F, b-a)
		r.mm.addRows(L.UpExps[e], xg[a*E:b*E], rowsOf(uq, up0, a, b), u[a*F:b*F], F, b-a)
	}
	r.mm.run()
	if L.GateExpsB != nil {
		for e := 0; e < N; e++ {
			a, b := s.off[e], s.off[e+1]
			addBias(g[a*F:b*F], L.GateExpsB[e*F:(e+1)*F])
			addBias(u[a*F:b*F], L.UpExpsB[e*F:(e+1)*F])
		}
	}
	r.glu(g, g, u)
	if L.ShUp != nil {
		sg := s.shG[:n*c.NFFShared]
		r.glu(sg, sg, s.shU[:n*c.NFFShared])
	}

	// Down of every expert in use (outputs over the gathered inputs).
	down0 := L.DownExps[0]
	gq := convertRows(&s.gq, down0.Type, g, P)
	d := xg
	r.mm.reset(n)
	for e := 0; e < N; e++ {
		a, b := s.off[e], s.off[e+1]
		r.mm.addRows(L.DownExps[e], g[a*F:b*F], rowsOf(gq, down0, a, b), d[a*E:b*E], E, b-a)
	}
	if L.ShUp != nil {
		r.mm.add(L.ShDown, s.shG[:n*c.NFFShared], s.shD[:n*E], E)
	}
	r.mm.run()
	if L.DownExpsB != nil {
		for e := 0; e < N; e++ {
			a, b := s.off[e], s.off[e+1]
			addBias(d[a*E:b*E], L.DownExpsB[e*E:(e+1)*E])
		}
	}

	// Weighted sum in selection order, then the shared expert.
	for t := 0; t < n; t++ {
		out := xn[t*E : (t+1)*E]
		for j := 0; j < K; j++ {
			p := int(s.pair[t*K+j])
			w := s.wts[t*K+j]
			src := d[p*E : (p+1)*E]
			if j == 0 {
				for i, v := range src {
					out[i] = v * w
				}
				continue
			}
			for i, v := range src {
				out[i] += v * w
			}
		}
		if L.ShUp != nil {
			sh := s.shD[t*E : (t+1)*E]
			if L.ShRouter != nil {
				gate := s.shW[t]
				for i, v := range sh {
					out[i] += v * gate
				}
			} else {
				kernels.Add(out, out, sh)
			}
		}
	}
}

// glu applies the FFN activation: dst = act(gate)·up.
func (r *Runner) glu(dst, gate, up []float32) {
	switch r.M.Architecture.Act {
	case GELU:
		geluMul(dst, gate, up)
	case SwiGLUOAI:
		swigluOAI(dst, gate, up)
	default:
		siluMul(dst, gate, up)
	}
}

// ensureShared sizes the shared expert's buffers.
func (r *Runner) ensureShared(n int) {
	c := &r.M.Config
	s := r.moe
	if len(s.shG) < r.MaxBatch*c.NFFShared {
		s.shG = make([]float32, r.MaxBatch*c.NFFShared)
		s.shU = make([]float32, r.MaxBatch*c.NFFShared)
		s.shD = make([]float32, r.MaxBatch*c.NEmbd)
		s.shW = make([]float32, r.MaxBatch)
	}
}

// route selects a token's experts from its router logits (overwritten
// with the probabilities) and computes their weights.
func route(c *Config, logits []float32, sel []int32, wts []float32) {
	probs := logits
	switch c.ExpertGating {
	case GatingSoftmax:
		softmaxInPlace(probs)
	case GatingSigmoid:
		for i, v := range probs {
			probs[i] = sigmoid(v)
		}
	}
	// Top-k in decreasing order (the lower index first among equals).
	for j := range sel {
		best := -1
		for e, v := range probs {
			if taken(sel[:j], e) {
				continue
			}
			if best < 0 || v > probs[best] {
				best = e
			}
		}
		sel[j] = int32(best)
		wts[j] = probs[best]
	}
	if c.ExpertGating == GatingSoftmaxWeight {
		softmaxInPlace(wts)
	}
	if c.ExpertNorm {
		var sum float32
		for _, w := range wts {
			sum += w
		}
		sum = max(sum, 6.103515625e-5)
		for j := range wts {
			wts[j] /= sum
		}
	}
	if c.ExpertScale != 0 {
		for j := range wts {
			wts[j] *= c.ExpertScale
		}
	}
}

func taken(sel []int32, e int) bool {
	for _, s := range sel {
		if int(s) == e {
			return true
		}
	}
	return false
}

// softmaxInPlace is ggml's soft_max of one row: exp(x - max), normalised
// by the sum's reciprocal.
func softmaxInPlace(x []float32) {
	m := kernels.Max(x)
	sum := kernels.ExpSub(x, m)
	kernels.Scale(1/sum, x)
}

func sigmoid(x float32) float32 { return float32(1 / (1 + math.Exp(float64(-x)))) }

// convertRows converts n rows of x to the vec-dot type of weight type wt
// into *buf (grown as needed), or returns x's own bytes when that type is
// f32.
func convertRows(buf *[]byte, wt tensor.Type, x []float32, n int) []byte {
	vt := vecDotType(wt)
	if vt == tensor.F32 {
		return tensor.F32Bytes(x)
	}
	need := vt.RowSize(len(x)/n) * n
	if len(*buf) < need {
		*buf = make([]byte, need)
	}
	return ops.Activations(vt, *buf, x)
}

// gatherConverted returns the gathered rows xg (pair order) in the vec-dot
// type of weight type wt: the n token rows of xn are converted once and
// their bytes copied to each of the token's K pairs (f32: xg itself).
func (s *moeScratch) gatherConverted(buf *[]byte, wt tensor.Type, xn, xg []float32, n, K int) []byte {
	vt := vecDotType(wt)
	if vt == tensor.F32 {
		return tensor.F32Bytes(xg)
	}
	E := len(xn) / n
	rs := vt.RowSize(E)
	src := convertRows(&s.xnq, wt, xn, n)
	if len(*buf) < n*K*rs {
		*buf = make([]byte, n*K*rs)
	}
	dst := (*buf)[:n*K*rs]
	for t := 0; t < n; t++ {
		for j := 0; j < K; j++ {
			p := int(s.pair[t*K+j])
			copy(dst[p*rs:(p+1)*rs], src[t*rs:(t+1)*rs])
		}
	}
	return dst
}

// rowsOf returns rows [a, b) of activations converted for weight w.
func rowsOf(q []byte, w *Linear, a, b int) []byte {
	rs := vecDotType(w.Type).RowSize(w.In)
	return q[a*rs : b*rs]
}
