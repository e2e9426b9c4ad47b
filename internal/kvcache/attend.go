package kvcache

import (
	"fmt"
	"github.com/kvserve/kvserve/internal/attn"
	"math"

	"github.com/kvserve/kvserve/internal/kernels"
	"github.com/kvserve/kvserve/internal/ops"
	"github.com/kvserve/kvserve/internal/tensor"
)

// MaxRunTokens is the most tokens AttendRun takes at once.
const MaxRunTokens = attn.MaxRun

// attnScratch is one worker's attention scratch space, sized for R =
// MaxRunTokens × group query rows.
type attnScratch struct {
	g      int
	q      []float32 // gathered queries [R][HeadDimK]
	qrot   []float32 // rotated queries [R][HeadDimK]
	qrotS  []float32 // queries rotated with signs (codebook pages) [R][HeadDimK]
	scores []float32 // [R][PageTokens]
	qq     []byte    // buffer for the queries quantized to a page type's vec-dot type
	qx     []byte    // the queries in qqType (in qq, or q's own bytes for f32)
	qqType tensor.Type
	qqRot  int
	qqOK   bool
	acc    []float32 // plain-page V accumulators [R][HeadDimV]
	accRot []float32 // rotated-page V accumulators [R][HeadDimV]
	accRS  []float32 // sign-rotated (codebook) page V accumulators [R][HeadDimV]
	m, l   []float32 // running max and sum per query row
	lim    []int     // valid rows of the current page per token: [from, lim)
	from   []int
	vrow   []float32
	// K pages with channel statistics (keychan.go): the page's μ and s,
	// the queries scaled (and rotated) for it, and q·μ per query row.
	mu, sc, qchan, bias []float32
	psum                []float32 // each query row's sum of probabilities over the current page
	vmu, vsc            []float32 // a V page's means (ValueChannels)
}

func newAttnScratch(cfg *Config) *attnScratch {
	return &attnScratch{vrow: make([]float32, cfg.HeadDimV)}
}

func (s *attnScratch) grow(g int, cfg *Config) {
	if s.g >= g {
		return
	}
	s.g = g
	R := MaxRunTokens * g
	s.q = make([]float32, R*cfg.HeadDimK)
	s.qrot = make([]float32, R*cfg.HeadDimK)
	s.qrotS = make([]float32, R*cfg.HeadDimK)
	s.scores = make([]float32, R*cfg.PageTokens)
	s.qq = make([]byte, R*queryRowBytes(cfg.HeadDimK))
	s.acc = make([]float32, R*cfg.HeadDimV)
	s.accRot = make([]float32, R*cfg.HeadDimV)
	s.accRS = make([]float32, R*cfg.HeadDimV)
	s.m = make([]float32, R)
	s.l = make([]float32, R)
	s.mu = make([]float32, cfg.HeadDimK)
	s.sc = make([]float32, cfg.HeadDimK)
	s.qchan = make([]float32, R*cfg.HeadDimK)
	s.bias = make([]float32, R)
	s.psum = make([]float32, R)
	s.vmu = make([]float32, cfg.HeadDimV)
	s.vsc = make([]float32, cfg.HeadDimV)
	s.lim = make([]int, MaxRunTokens)
	s.from = make([]int, MaxRunTokens)
}

func roundUp(n, m int) int { return (n + m - 1) / m * m }

// queryRowBytes is the largest quantized query row of D values: the
// largest vec-dot row of the cache types (f32 queries are not copied).
func queryRowBytes(D int) int {
	n := 0
	for _, t := range Types {
		if vt := t.VecDotType(); vt != tensor.F32 {
			n = max(n, vt.RowSize(roundUp(D, vt.BlockSize())))
		}
	}
	return n
}

// Attend computes attention of the query heads q (sharing KV head h; each
// HeadDimK long and pre-scaled) over positions 0..pos of seq in layer l,
// writing HeadDimV values per query head to out. It is AttendRun for one
// token.
func (c *Cache) Attend(l, seq, pos, h int, q, out []float32, worker int) {
	c.AttendRun(l, seq, pos, 1, h, len(q)/c.cfg.HeadDimK, q, len(q), out, len(out), worker)
}

// AttendRun computes attention for nTok (≤ MaxRunTokens) consecutive
// tokens of seq at positions pos0, pos0+1, ...: token i's g query heads
// for KV head h are q[i*qStride:][:g*HeadDimK] (pre-scaled), and it
// attends causally over positions 0..pos0+i, writing g rows of HeadDimV to
// out[i*outStride:].
//
// It makes one pass over the sequence's pages, whatever their types, with
// an online softmax across pages; each page's keys are scored against all
// the run's queries at once. Rotated K pages are scored with rotated
// queries; the contributions of rotated V pages are summed apart and
// un-rotated once at the end (the normalized Hadamard transform is its own
// inverse), so rotated and plain pages can share a sequence.
//
// Every token's result is bit-identical whatever run it is part of (the
// score GEMM is batch-invariant and softmax and V accumulation are per
// row), so attention, like the matrix products, does not depend on how a
// prompt was split into batches.
func (c *Cache) AttendRun(l, seq, pos0, nTok, h, g int, q []float32, qStride int, out []float32, outStride int, worker int) {
	cfg := &c.cfg
	D, Dv, P := cfg.HeadDimK, cfg.HeadDimV, cfg.PageTokens
	s := c.scratch[worker]
	s.grow(g, cfg)
	s.qqOK = false
	R := nTok * g
	for i := 0; i < nTok; i++ {
		copy(s.q[i*g*D:(i+1)*g*D], q[i*qStride:i*qStride+g*D])
	}
	ls := &c.seqs[seq][l]
	a := c.attn(l)
	last := pos0 + nTok - 1
	m, lsum := s.m[:R], s.l[:R]
	acc, accRot, accRS := s.acc[:R*Dv], s.accRot[:R*Dv], s.accRS[:R*Dv]
	for i := range m {
		m[i] = float32(math.Inf(-1))
		lsum[i] = 0
	}
	clear(acc)
	clear(accRot)
	clear(accRS)
	haveRot, haveRotS, anyRot, anyRS := false, false, false, false
	for pi := a.WindowStart(pos0) / P; pi*P <= last; pi++ {
		cnt := min(P, last+1-pi*P)
		kp, vp := ls.k.pages[pi], ls.v.pages[pi]
		if kp == nil || vp == nil {
			panic(fmt.Sprintf("kvcache: layer %d of sequence %d: attention at %d needs page %d, which was released", l, seq, pos0, pi))
		}
		qs := s.q[:R*D]
		if kp.meta != 0 {
			s.chanQueries(c, kp, h, D, R, qs)
			s.qqOK = false
			s.pageScores(kp, h, D, P, cnt, R, s.qchan[:R*D])
			s.qqOK = false
			for r := 0; r < R; r++ {
				addScalar(s.scores[r*P:r*P+cnt], s.bias[r])
			}
		} else if kp.rotKind() == 1 {
			if !haveRot {
				copy(s.qrot[:R*D], qs)
				rotateRows(s.qrot[:R*D], D)
				haveRot = true
			}
			s.pageScores(kp, h, D, P, cnt, R, s.qrot[:R*D])
		} else if kp.rotKind() == 2 {
			if !haveRotS {
				copy(s.qrotS[:R*D], qs)
				kp.rotate(s.qrotS[:R*D], D)
				haveRotS = true
			}
			s.pageScores(kp, h, D, P, cnt, R, s.qrotS[:R*D])
		} else {
			s.pageScores(kp, h, D, P, cnt, R, qs)
		}
		// Online softmax per row over the rows of the page it may see:
		// [from, lim) — causal, and within the window of a window layer.
		for i := 0; i < nTok; i++ {
			s.lim[i] = min(cnt, pos0+i+1-pi*P)
			s.from[i] = min(max(0, a.WindowStart(pos0+i)-pi*P), max(s.lim[i], 0))
			if s.lim[i] <= s.from[i] {
				for gi := 0; gi < g; gi++ {
					s.psum[i*g+gi] = 0
				}
				continue
			}
			for gi := 0; gi < g; gi++ {
				r := i*g + gi
				sc := s.scores[r*P+s.from[i] : r*P+s.lim[i]]
				if a.Softcap > 0 {
					softcap(sc, a.Softcap)
				}
				pm := max(m[r], kernels.Max(sc))
				if pm > m[r] {
					f := float32(math.Exp(float64(m[r] - pm)))
					lsum[r] *= f
					scaleVec(acc[r*Dv:(r+1)*Dv], f)
					scaleVec(accRot[r*Dv:(r+1)*Dv], f)
					scaleVec(accRS[r*Dv:(r+1)*Dv], f)
					m[r] = pm
				}
				s.psum[r] = expSub(sc, pm)
				lsum[r] += s.psum[r]
			}
		}
		dst := acc
		switch vp.rotKind() {
		case 1:
			dst, anyRot = accRot, true
		case 2:
			dst, anyRS = accRS, true
		}
		for i := 0; i < nTok; i++ {
			if f := s.from[i]; s.lim[i] > f {
				s.pageAccumulate(vp, h, Dv, P, f, s.lim[i], g, s.scores[i*g*P:], dst[i*g*Dv:(i+1)*g*Dv])
			}
		}
		if vp.meta != 0 {
			// Σ p·v = Σ p·v' + (Σ p)·μ: the page's means, in the
			// model's basis, go to the plain accumulator.
			mu := s.vmu[:Dv]
			c.chanStats(vp, h, mu, s.vsc[:Dv])
			for r := 0; r < R; r++ {
				if s.psum[r] != 0 {
					kernels.Axpy(s.psum[r], mu, acc[r*Dv:(r+1)*Dv])
				}
			}
		}
	}
	if a.Sinks != nil {
		// A sink is one more logit in each head's softmax, with no value:
		// it only adds exp(sink - max) to the denominator.
		for i := 0; i < nTok; i++ {
			for gi := 0; gi < g; gi++ {
				r := i*g + gi
				sink := a.Sinks[h*g+gi]
				if sink > m[r] {
					f := float32(math.Exp(float64(m[r] - sink)))
					lsum[r] *= f
					scaleVec(acc[r*Dv:(r+1)*Dv], f)
					scaleVec(accRot[r*Dv:(r+1)*Dv], f)
					scaleVec(accRS[r*Dv:(r+1)*Dv], f)
					m[r] = sink
				}
				lsum[r] += float32(math.Exp(float64(sink - m[r])))
			}
		}
	}
	for i := 0; i < nTok; i++ {
		for gi := 0; gi < g; gi++ {
			r := i*g + gi
			o := out[i*outStride+gi*Dv : i*outStride+(gi+1)*Dv]
			copy(o, acc[r*Dv:(r+1)*Dv])
			if anyRot {
				rr := accRot[r*Dv : (r+1)*Dv]
				unrotateRows(rr, Dv)
				kernels.Add(o, o, rr)
			}
			if anyRS {
				rr := accRS[r*Dv : (r+1)*Dv]
				unrotateKind(2, rr, Dv)
				kernels.Add(o, o, rr)
			}
			scaleVec(o, 1/lsum[r])
		}
	}
}

// pageScores sets scores[r*P+t] = q_r · k_t for the R query rows and the
// page's first cnt rows of head h. The queries are converted once per run
// (and rotation) to the page type's vec-dot type: quantized pages take
// them quantized and use integer dot products, as ggml's flash attention
// does; float pages take them as they are.
func (s *attnScratch) pageScores(kp *Page, h, D, P, cnt, R int, q []float32) {
	hb := kp.Type.RowSize(D)
	base := kp.mem.b[h*P*hb : (h*P+cnt)*hb]
	vt := kp.Type.VecDotType()
	if !s.qqOK || s.qqType != vt || s.qqRot != kp.rotKind() {
		s.qx = ops.Activations(vt, s.qq, q[:R*D])
		s.qqOK, s.qqType, s.qqRot = true, vt, kp.rotKind()
	}
	ops.Gemm(kp.Type, cnt, R, D, base, hb, s.qx, vt.RowSize(D), s.scores, P)
}

// pageAccumulate adds Σ_t p[gi][t]·v_t to acc[gi] for the page's rows
// [from, to) of head h (p[gi] = scores[gi*P:]). Each row is read (and, for
// quantized pages, dequantized in registers) once for all the group's
// query heads; no f32 copy of the page is made.
func (s *attnScratch) pageAccumulate(vp *Page, h, Dv, P, from, to, g int, scores, acc []float32) {
	hb := vp.Type.RowSize(Dv)
	base := vp.mem.b[(h*P+from)*hb : (h*P+to)*hb]
	ops.AccumRows(vp.Type, acc[:g*Dv], Dv, scores[from:], P, to-from, base, hb)
}

func scaleVec(x []float32, f float32) { kernels.Scale(f, x) }

// softcap replaces each logit s by c·tanh(s/c).
func softcap(x []float32, c float32) {
	for i, v := range x {
		x[i] = c * float32(math.Tanh(float64(v/c)))
	}
}

// expSub replaces x[i] by exp(x[i]-m) and returns their sum.
func expSub(x []float32, m float32) float32 { return kernels.ExpSub(x, m) }
