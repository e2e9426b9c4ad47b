package kvcache

import (
	"math"

	"github.com/kvserve/kvserve/internal/kernels"
	"github.com/kvserve/kvserve/internal/tensor"
)

// attnScratch is one worker's attention scratch space.
type attnScratch struct {
	scores []float32 // [group][PageTokens]
	qrot   []float32 // rotated queries [group][HeadDimK]
	qq     []byte    // queries quantized to a page type's vec-dot type
	qqType tensor.Type
	qqRot  bool
	qqOK   bool
	accRot []float32 // V accumulator for rotated pages [group][HeadDimV]
	m, l   []float32 // running max and sum per query head
	vrow   []float32
}

func newAttnScratch(cfg *Config) *attnScratch {
	return &attnScratch{vrow: make([]float32, cfg.HeadDimV)}
}

func (s *attnScratch) grow(g int, cfg *Config) {
	if len(s.m) >= g {
		return
	}
	s.scores = make([]float32, g*cfg.PageTokens)
	s.qrot = make([]float32, g*cfg.HeadDimK)
	// Largest vec-dot row: q8_K's 292 bytes per 256 values, or q8_0/q8_1.
	s.qq = make([]byte, g*(tensor.Q8_1.RowSize(roundUp(cfg.HeadDimK, 32))+tensor.Q8_K.TypeSize()))
	s.accRot = make([]float32, g*cfg.HeadDimV)
	s.m = make([]float32, g)
	s.l = make([]float32, g)
}

func roundUp(n, m int) int { return (n + m - 1) / m * m }

// Attend computes attention of the query heads q (sharing KV head h; each
// HeadDimK long and pre-scaled) over positions 0..pos of seq in layer l,
// writing HeadDimV values per query head to out. It makes one pass over
// the sequence's pages, whatever their types, with an online softmax
// across pages. Rotated K pages are scored with rotated queries; the
// contributions of rotated V pages are summed apart and un-rotated once at
// the end (the normalized Hadamard transform is its own inverse), so
// rotated and plain pages can share a sequence.
func (c *Cache) Attend(l, seq, pos, h int, q, out []float32, worker int) {
	cfg := &c.cfg
	D, Dv, P := cfg.HeadDimK, cfg.HeadDimV, cfg.PageTokens
	g := len(q) / D
	s := c.scratch[worker]
	s.grow(g, cfg)
	s.qqOK = false
	ls := &c.seqs[seq][l]
	n := pos + 1
	m, lsum := s.m[:g], s.l[:g]
	accRot := s.accRot[:g*Dv]
	for i := range m {
		m[i] = float32(math.Inf(-1))
		lsum[i] = 0
	}
	clear(out[:g*Dv])
	clear(accRot)
	haveRot, anyRot := false, false
	for pi := 0; pi*P < n; pi++ {
		cnt := min(P, n-pi*P)
		kp, vp := ls.k.pages[pi], ls.v.pages[pi]
		qs := q[:g*D]
		if kp.Rotated {
			if !haveRot {
				copy(s.qrot[:g*D], qs)
				for gi := 0; gi < g; gi++ {
					fwht(s.qrot[gi*D : (gi+1)*D])
				}
				haveRot = true
			}
			qs = s.qrot[:g*D]
		}
		s.pageScores(kp, h, D, P, cnt, g, qs)
		// Online softmax: rescale what was accumulated so far.
		for gi := 0; gi < g; gi++ {
			sc := s.scores[gi*P : gi*P+cnt]
			pm := max(m[gi], kernels.Max(sc))
			if pm > m[gi] {
				f := float32(math.Exp(float64(m[gi] - pm)))
				lsum[gi] *= f
				scaleVec(out[gi*Dv:(gi+1)*Dv], f)
				scaleVec(accRot[gi*Dv:(gi+1)*Dv], f)
				m[gi] = pm
			}
			lsum[gi] += expSub(sc, pm)
		}
		acc := out
		if vp.Rotated {
			acc, anyRot = accRot, true
		}
		s.pageAccumulate(vp, h, Dv, P, cnt, g, acc)
	}
	for gi := 0; gi < g; gi++ {
		o := out[gi*Dv : (gi+1)*Dv]
		if anyRot {
			r := accRot[gi*Dv : (gi+1)*Dv]
			fwht(r)
			for i := range o {
				o[i] += r[i]
			}
		}
		scaleVec(o, 1/lsum[gi])
	}
}

// pageScores sets scores[gi*P+t] = q_gi · k_t for the page's first cnt
// rows of head h.
func (s *attnScratch) pageScores(kp *Page, h, D, P, cnt, g int, q []float32) {
	hb := kp.Type.RowSize(D)
	base := kp.mem.b[h*P*hb : (h*P+cnt)*hb]
	switch kp.Type {
	case tensor.F32:
		kernels.GemmF32(cnt, g, D, f32s(base), q, s.scores, P)
	case tensor.F16:
		kernels.GemmF16(cnt, g, D, u16s(base), q, s.scores, P)
	case tensor.BF16:
		kernels.GemmBF16(cnt, g, D, u16s(base), q, s.scores, P)
	default:
		// Quantize each query once to the page type's vec-dot type and
		// use integer dot products, as ggml's flash attention does.
		vt := kp.Type.VecDotType()
		qb := vt.RowSize(D)
		if !s.qqOK || s.qqType != vt || s.qqRot != kp.Rotated {
			for gi := 0; gi < g; gi++ {
				tensor.QuantizeRow(vt, q[gi*D:(gi+1)*D], s.qq[gi*qb:(gi+1)*qb])
			}
			s.qqOK, s.qqType, s.qqRot = true, vt, kp.Rotated
		}
		for t := 0; t < cnt; t++ {
			row := base[t*hb : (t+1)*hb]
			for gi := 0; gi < g; gi++ {
				s.scores[gi*P+t] = tensor.VecDot(kp.Type, D, row, s.qq[gi*qb:(gi+1)*qb])
			}
		}
	}
}

// pageAccumulate adds Σ_t p[gi][t]·v_t to acc[gi] for the page's first cnt
// rows of head h (p in scores).
func (s *attnScratch) pageAccumulate(vp *Page, h, Dv, P, cnt, g int, acc []float32) {
	hb := vp.Type.RowSize(Dv)
	base := vp.mem.b[h*P*hb : (h*P+cnt)*hb]
	switch vp.Type {
	case tensor.F32:
		kernels.AccumRowsF32Multi(acc[:g*Dv], Dv, s.scores, P, cnt, f32s(base), Dv)
	case tensor.F16:
		kernels.AccumRowsF16Multi(acc[:g*Dv], Dv, s.scores, P, cnt, u16s(base), Dv)
	case tensor.BF16:
		kernels.AccumRowsBF16Multi(acc[:g*Dv], Dv, s.scores, P, cnt, u16s(base), Dv)
	default:
		// Dequantize one row at a time into an L1-resident buffer and
		// add it to every query head's accumulator.
		for t := 0; t < cnt; t++ {
			decodeRow(vp.Type, base[t*hb:(t+1)*hb], s.vrow)
			for gi := 0; gi < g; gi++ {
				axpy(s.scores[gi*P+t], s.vrow, acc[gi*Dv:(gi+1)*Dv])
			}
		}
	}
}

func scaleVec(x []float32, f float32) { kernels.Scale(f, x) }

func axpy(a float32, x, y []float32) { kernels.Axpy(a, x, y) }

func axpyF16(a float32, x []uint16, y []float32) { kernels.AxpyF16(a, x, y) }

// expSub replaces x[i] by exp(x[i]-m) and returns their sum.
func expSub(x []float32, m float32) float32 { return kernels.ExpSub(x, m) }
