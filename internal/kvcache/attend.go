package kvcache

import (
	"math"

	"github.com/kvserve/kvserve/internal/tensor"
)

// attnScratch is one worker's attention scratch space.
type attnScratch struct {
	scores []float32 // [group][PageTokens]
	qrot   []float32 // rotated queries [group][HeadDimK]
	accRot []float32 // V accumulator for rotated pages [group][HeadDimV]
	m, l   []float32 // running max and sum per query head
	krow   []float32
	vrow   []float32
}

func newAttnScratch(cfg *Config) *attnScratch {
	// The group size (query heads per KV head) is not known here; grow
	// on first use.
	return &attnScratch{krow: make([]float32, cfg.HeadDimK), vrow: make([]float32, cfg.HeadDimV)}
}

func (s *attnScratch) grow(g int, cfg *Config) {
	if len(s.m) >= g {
		return
	}
	s.scores = make([]float32, g*cfg.PageTokens)
	s.qrot = make([]float32, g*cfg.HeadDimK)
	s.accRot = make([]float32, g*cfg.HeadDimV)
	s.m = make([]float32, g)
	s.l = make([]float32, g)
}

// Attend computes attention of the query heads q (sharing KV head h; each
// HeadDimK long and pre-scaled) over positions 0..pos of seq in layer l,
// writing HeadDimV values per query head to out. It makes one pass over
// the sequence's pages, whatever their types, with an online softmax
// across pages.
func (c *Cache) Attend(l, seq, pos, h int, q, out []float32, worker int) {
	cfg := &c.cfg
	D, Dv, P := cfg.HeadDimK, cfg.HeadDimV, cfg.PageTokens
	g := len(q) / D
	s := c.scratch[worker]
	s.grow(g, cfg)
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
	haveRot := false
	anyRot := false
	for pi := 0; pi*P < n; pi++ {
		cnt := min(P, n-pi*P)
		kp, vp := ls.k.pages[pi], ls.v.pages[pi]
		qs := q
		if kp.Rotated {
			if !haveRot {
				copy(s.qrot[:g*D], q[:g*D])
				for gi := 0; gi < g; gi++ {
					fwht(s.qrot[gi*D : (gi+1)*D])
				}
				haveRot = true
			}
			qs = s.qrot[:g*D]
		}
		// Scores of this page's rows.
		rsK := kp.Type.RowSize(c.rowK)
		hbK := kp.Type.RowSize(D)
		for t := 0; t < cnt; t++ {
			seg := kp.mem.b[t*rsK+h*hbK : t*rsK+(h+1)*hbK]
			decodeRow(kp.Type, seg, s.krow)
			for gi := 0; gi < g; gi++ {
				var d float32
				qg := qs[gi*D : (gi+1)*D]
				for i, kv := range s.krow {
					d += kv * qg[i]
				}
				s.scores[gi*P+t] = d
			}
		}
		// Online softmax: rescale what was accumulated so far.
		for gi := 0; gi < g; gi++ {
			sc := s.scores[gi*P : gi*P+cnt]
			pm := m[gi]
			for _, v := range sc {
				pm = max(pm, v)
			}
			if pm > m[gi] {
				f := float32(math.Exp(float64(m[gi] - pm)))
				lsum[gi] *= f
				scaleVec(out[gi*Dv:(gi+1)*Dv], f)
				scaleVec(accRot[gi*Dv:(gi+1)*Dv], f)
				m[gi] = pm
			}
			var sum float32
			for i, v := range sc {
				e := float32(math.Exp(float64(v - pm)))
				sc[i] = e
				sum += e
			}
			lsum[gi] += sum
		}
		// Weighted sum of V rows.
		acc := out
		if vp.Rotated {
			acc = accRot
			anyRot = true
		}
		rsV := vp.Type.RowSize(c.rowV)
		hbV := vp.Type.RowSize(Dv)
		for t := 0; t < cnt; t++ {
			seg := vp.mem.b[t*rsV+h*hbV : t*rsV+(h+1)*hbV]
			decodeRow(vp.Type, seg, s.vrow)
			for gi := 0; gi < g; gi++ {
				p := s.scores[gi*P+t]
				a := acc[gi*Dv : (gi+1)*Dv]
				for i, v := range s.vrow {
					a[i] += p * v
				}
			}
		}
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

func scaleVec(x []float32, f float32) {
	for i := range x {
		x[i] *= f
	}
}

var _ = tensor.F32
