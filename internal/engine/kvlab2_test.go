package engine_test

// The offline study behind --cache-key-encode query (issue 18, fourth
// round): key quantizers compared by the attention they produce on a
// captured chunk (kvlab_test.go), KL divergence of each head's attention
// probabilities and relative output error, summed over layers:
//
//	KVSERVE_KVLAB_IN=/tmp/cap KVSERVE_KVLAB_QA=1 [KVSERVE_KVLAB_FIT=1] [KVSERVE_KVLAB_QA_OTHER=/tmp/cap1] \
//	  [KVSERVE_KVLAB_ONLY="cb4 search,cb4 qaware"] go test ./internal/engine -run 'KVLab$' -v

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/kvserve/kvserve/internal/kernels"
	"github.com/kvserve/kvserve/internal/kvcache"
	"github.com/kvserve/kvserve/internal/tensor"
)

type capture struct {
	L, T, nKV, g, D, Dv int
	K, V, Q             [][]float32
}

func readCapture(t *testing.T, path string) *capture {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := make([]int, 6)
	for i := range h {
		h[i] = int(int32(binary.LittleEndian.Uint32(b[4*i:])))
	}
	c := &capture{L: h[0], T: h[1], nKV: h[2], g: h[3], D: h[4], Dv: h[5]}
	off := 24
	get := func(n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = tensor.F16ToF32(tensor.F32ToF16(math.Float32frombits(binary.LittleEndian.Uint32(b[off+4*i:]))))
		}
		off += 4 * n
		return x
	}
	for l := 0; l < c.L; l++ {
		c.K = append(c.K, get(c.T*c.nKV*c.D))
		c.V = append(c.V, get(c.T*c.nKV*c.Dv))
		c.Q = append(c.Q, get(c.T*c.nKV*c.g*c.D))
	}
	return c
}

// labSigns are the codebook pages' signs S (the cache rotates them by H·S).
var labSigns = kvcache.CodebookSigns(1024)

func labRot(x []float32, signs bool) {
	if signs {
		for i := range x {
			x[i] *= labSigns[i]
		}
	}
	kernels.FWHT(x, len(x))
}

func labUnrot(x []float32, signs bool) {
	kernels.FWHT(x, len(x))
	if signs {
		for i := range x {
			x[i] *= labSigns[i]
		}
	}
}

func f16r(x float32) float32 { return tensor.F16ToF32(tensor.F32ToF16(x)) }

// rowQ quantizes one rotated row in place (decoded values written back);
// ctx gives the layer and head (for query-aware encoders).
type rowQ func(x []float32, l, h int)

// ggmlQ: the library's type, via QuantizeRow / dequantize.
func ggmlQ(tp tensor.Type) rowQ {
	return func(x []float32, l, h int) {
		buf := make([]byte, tp.RowSize(len(x)))
		tensor.QuantizeRow(tp, x, buf)
		tensor.DequantizeRow(tp, buf, x)
	}
}

// cbQ: a codebook with levels L over blocks of B, the search scales,
// weights w per value (nil: 1).
func cbEncode(L []float32, x []float32, w []float32, steps []float32, refits int) (float32, []int) {
	var amax float32
	for _, v := range x {
		amax = max(amax, float32(math.Abs(float64(v))))
	}
	if amax == 0 {
		return 0, nil
	}
	n := len(x)
	idx := make([]int, n)
	t := make([]int, n)
	best, bestE := float32(0), math.Inf(1)
	try := func(d float32) {
		d = f16r(d)
		if d == 0 {
			return
		}
		var e float64
		for i, v := range x {
			u := v / d
			k := sort.Search(len(L)-1, func(k int) bool { return u <= (L[k]+L[k+1])/2 })
			t[i] = k
			r := float64(v - d*L[k])
			if w != nil {
				r *= math.Sqrt(float64(w[i]))
			}
			e += r * r
		}
		if e < bestE {
			best, bestE = d, e
			copy(idx, t)
		}
	}
	lmax := L[len(L)-1]
	for _, f := range steps {
		try(amax / lmax * f)
	}
	for r := 0; r < refits && best != 0; r++ {
		var sxl, sll float64
		for i, v := range x {
			wi := 1.0
			if w != nil {
				wi = float64(w[i])
			}
			sxl += wi * float64(v*L[idx[i]])
			sll += wi * float64(L[idx[i]]*L[idx[i]])
		}
		if sll > 0 && sxl > 0 {
			try(float32(sxl / sll))
		}
	}
	for i := range x {
		x[i] = best * L[idx[i]]
	}
	return best, idx
}

var stepsSearch = []float32{1, 0.9, 0.8, 0.7, 0.6}
var stepsFine = []float32{1, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5}

func cbQ(L []float32, B int, steps []float32, refits int, W [][][]float32) rowQ {
	return func(x []float32, l, h int) {
		for b := 0; b < len(x); b += B {
			var w []float32
			if W != nil {
				w = W[l][h][b : b+B]
			}
			cbEncode(L, x[b:b+B], w, steps, refits)
		}
	}
}

// keys: the cache's k̂ rows for layer l, head h (T×D), encoded by q with
// centring per page of P (P 0: none), rotation with signs.
func (c *capture) quantKeys(l, h int, q rowQ, P int, signs bool, src [][]float32, D int) []float32 {
	T := c.T
	out := make([]float32, T*D)
	mu := make([]float32, D)
	row := make([]float32, D)
	step := P
	if P == 0 {
		step = T
	}
	for p0 := 0; p0 < T; p0 += step {
		p1 := min(T, p0+step)
		for i := range mu {
			mu[i] = 0
		}
		if P > 0 {
			for t := p0; t < p1; t++ {
				r := src[l][(t*c.nKV+h)*D:][:D]
				for i := range mu {
					mu[i] += r[i]
				}
			}
			for i := range mu {
				mu[i] = f16r(mu[i] / float32(p1-p0))
			}
		}
		for t := p0; t < p1; t++ {
			r := src[l][(t*c.nKV+h)*D:][:D]
			for i := range row {
				row[i] = r[i] - mu[i]
			}
			if q != nil {
				labRot(row, signs)
				q(row, l, h)
				labUnrot(row, signs)
			}
			o := out[t*D:][:D]
			for i := range o {
				o[i] = row[i] + mu[i]
			}
		}
	}
	return out
}

// attnErr: mean KL of attention probabilities and relative output error
// over sampled query positions (from T/2, every stride), all g heads.
func (c *capture) attnErr(l, h int, Kq, Vq []float32, stride int) (kl, oerr float64) {
	D, Dv, T := c.D, c.Dv, c.T
	Kx := make([]float32, T*D)
	Vx := make([]float32, T*Dv)
	for t := 0; t < T; t++ {
		copy(Kx[t*D:][:D], c.K[l][(t*c.nKV+h)*D:][:D])
		copy(Vx[t*Dv:][:Dv], c.V[l][(t*c.nKV+h)*Dv:][:Dv])
	}
	s := make([]float64, T)
	sq := make([]float64, T)
	n := 0
	for t := T / 2; t < T; t += stride {
		for j := 0; j < c.g; j++ {
			qv := c.Q[l][((t*c.nKV+h)*c.g+j)*D:][:D]
			m, mq := math.Inf(-1), math.Inf(-1)
			for k := 0; k <= t; k++ {
				var a, b float64
				kr, kq := Kx[k*D:][:D], Kq[k*D:][:D]
				for i, qi := range qv {
					a += float64(qi * kr[i])
					b += float64(qi * kq[i])
				}
				s[k], sq[k] = a, b
				m, mq = max(m, a), max(mq, b)
			}
			var z, zq float64
			for k := 0; k <= t; k++ {
				s[k] = math.Exp(s[k] - m)
				sq[k] = math.Exp(sq[k] - mq)
				z += s[k]
				zq += sq[k]
			}
			var d float64
			o := make([]float64, Dv)
			oq := make([]float64, Dv)
			for k := 0; k <= t; k++ {
				p, pq := s[k]/z, sq[k]/zq
				if p > 0 {
					d += p * math.Log(p/pq)
				}
				vr, vq := Vx[k*Dv:][:Dv], Vq[k*Dv:][:Dv]
				for i := range o {
					o[i] += p * float64(vr[i])
					oq[i] += pq * float64(vq[i])
				}
			}
			var num, den float64
			for i := range o {
				num += (o[i] - oq[i]) * (o[i] - oq[i])
				den += o[i] * o[i]
			}
			kl += d
			oerr += num / den
			n++
		}
	}
	return kl / float64(n), oerr / float64(n)
}

func TestKVLab(t *testing.T) {
	in := os.Getenv("KVSERVE_KVLAB_IN")
	if in == "" {
		t.Skip("KVSERVE_KVLAB_IN not set")
	}
	c := readCapture(t, in)
	stride := 16
	L16 := tensor.CodebookLevels(tensor.CB4)
	type kcase struct {
		name  string
		q     rowQ
		P     int
		signs bool
	}
	cases := []kcase{
		{"f16", nil, 0, false},
		{"cb4 search", cbQ(L16, 64, stepsSearch, 1, nil), 256, true},
		{"cb4 lib", ggmlQ(tensor.CB4), 256, true},
		{"cb4 fine", cbQ(L16, 64, stepsFine, 2, nil), 256, true},
		{"q5_0", ggmlQ(tensor.Q5_0), 256, false},
		{"q4_0", ggmlQ(tensor.Q4_0), 256, false},
		{"cb4 B32", cbQ(L16, 32, stepsSearch, 1, nil), 256, true},
		{"cb4 P64", cbQ(L16, 64, stepsSearch, 1, nil), 64, true},
		{"cb4 P128", cbQ(L16, 64, stepsSearch, 1, nil), 128, true},
		{"cb4 fine P128", cbQ(L16, 64, stepsFine, 2, nil), 128, true},
	}
	if os.Getenv("KVSERVE_KVLAB_QA") != "" {
		C := c.qCov(true)
		cases = append(cases, kcase{"cb4 qaware", cbQAware(L16, 64, C, 4, stepsSearch, 1), 256, true})
		cases = append(cases, kcase{"cb4 qaware fine", cbQAware(L16, 64, C, 4, stepsFine, 2), 256, true})
		cases = append(cases, kcase{"cb4 qascale", cbQAwareScale(L16, 64, C, 4, stepsSearch), 256, true})
		cases = append(cases, kcase{"cb4 qascale fine", cbQAwareScale(L16, 64, C, 4, stepsFine), 256, true})
		cases = append(cases, kcase{"cb4 qaware p1", cbQAware(L16, 64, C, 1, stepsSearch, 1), 256, true})
		cases = append(cases, kcase{"cb4 qaware p12", cbQAware(L16, 64, C, 12, stepsSearch, 1), 256, true})
		cases = append(cases, kcase{"cb4 qaware P128", cbQAware(L16, 64, C, 4, stepsSearch, 1), 128, true})
		cases = append(cases, kcase{"cb4 qaware B32", cbQAware(L16, 32, C, 4, stepsSearch, 1), 256, true})
		cases = append(cases, kcase{"cb3 qaware", cbQAware(tensor.CodebookLevels(tensor.CB3), 64, C, 4, stepsSearch, 1), 256, true})
		cases = append(cases, kcase{"cb3 search", cbQ(tensor.CodebookLevels(tensor.CB3), 64, stepsSearch, 1, nil), 256, true})
		if o := os.Getenv("KVSERVE_KVLAB_QA_OTHER"); o != "" {
			C2 := readCapture(t, o).qCov(true)
			cases = append(cases, kcase{"cb4 qaware other", cbQAware(L16, 64, C2, 4, stepsSearch, 1), 256, true})
			// mean only: C = m mᵀ + (tr/D)·I from the other chunk
			Cm := readCapture(t, o).qMean(true)
			cases = append(cases, kcase{"cb4 qaware mean", cbQAware(L16, 64, Cm, 4, stepsSearch, 1), 256, true})
		}
	}
	if os.Getenv("KVSERVE_KVLAB_FIT") != "" {
		Lf := c.fitLevels(L16, 64, 256, 8)
		t.Logf("fitted levels: %v", Lf)
		cases = append(cases, kcase{"cb4 refit", cbQ(Lf, 64, stepsSearch, 1, nil), 256, true})
	}
	if s := os.Getenv("KVSERVE_KVLAB_ONLY"); s != "" {
		var keep []kcase
		for _, k := range cases {
			if strings.Contains(s, k.name) {
				keep = append(keep, k)
			}
		}
		cases = keep
	}
	for _, kc := range cases {
		var line strings.Builder
		var skl, soe float64
		for l := 0; l < c.L; l++ {
			var lkl float64
			for h := 0; h < c.nKV; h++ {
				var Kq []float32
				if kc.q == nil {
					Kq = c.quantKeys(l, h, nil, 0, false, c.K, c.D)
				} else {
					Kq = c.quantKeys(l, h, kc.q, kc.P, kc.signs, c.K, c.D)
				}
				Vq := c.quantKeys(l, h, nil, 0, false, c.V, c.Dv)
				kl, oe := c.attnErr(l, h, Kq, Vq, stride)
				lkl += kl
				soe += oe
			}
			skl += lkl
			fmt.Fprintf(&line, " %.2e", lkl)
		}
		t.Logf("%-12s KLsum %.4e oerr %.4e | per layer%s", kc.name, skl, soe, line.String())
	}
}

// qCov: per layer and head, the second moment E[(Rq)(Rq)ᵀ] of the rotated
// queries (D×D), over all positions and query heads.
func (c *capture) qCov(signs bool) [][][]float64 {
	D := c.D
	out := make([][][]float64, c.L)
	row := make([]float32, D)
	for l := 0; l < c.L; l++ {
		out[l] = make([][]float64, c.nKV)
		for h := 0; h < c.nKV; h++ {
			C := make([]float64, D*D)
			n := 0
			for t := 0; t < c.T; t += 2 {
				for j := 0; j < c.g; j++ {
					copy(row, c.Q[l][((t*c.nKV+h)*c.g+j)*D:][:D])
					labRot(row, signs)
					for a := 0; a < D; a++ {
						ra := float64(row[a])
						for b := 0; b < D; b++ {
							C[a*D+b] += ra * float64(row[b])
						}
					}
					n++
				}
			}
			for i := range C {
				C[i] /= float64(n)
			}
			out[l][h] = C
		}
	}
	return out
}

// cbQAware: nearest-level codebook (search scales), then greedy index moves
// (±1 level, scale kept) lowering eᵀCe over the whole row.
func cbQAware(L []float32, B int, C [][][]float64, passes int, steps []float32, refits int) rowQ {
	return func(x []float32, l, h int) {
		D := len(x)
		orig := append([]float32(nil), x...)
		ds := make([]float32, D/B)
		idx := make([]int, D)
		for b := 0; b < D; b += B {
			d, id := cbEncode(L, x[b:b+B], nil, steps, refits)
			ds[b/B] = d
			copy(idx[b:], id)
			if id == nil {
				for i := b; i < b+B; i++ {
					idx[i] = -1
				}
			}
		}
		CC := C[l][h]
		e := make([]float64, D)
		for i := range e {
			e[i] = float64(x[i] - orig[i])
		}
		Ce := make([]float64, D)
		for a := 0; a < D; a++ {
			for b := 0; b < D; b++ {
				Ce[a] += CC[a*D+b] * e[b]
			}
		}
		for p := 0; p < passes; p++ {
			moved := false
			for i := 0; i < D; i++ {
				if idx[i] < 0 {
					continue
				}
				d := ds[i/B]
				bestK, bestG := idx[i], 0.0
				for _, k := range []int{idx[i] - 1, idx[i] + 1} {
					if k < 0 || k >= len(L) {
						continue
					}
					delta := float64(d*L[k] - d*L[idx[i]])
					g := 2*delta*Ce[i] + delta*delta*CC[i*D+i]
					if g < bestG {
						bestK, bestG = k, g
					}
				}
				if bestK != idx[i] {
					delta := float64(d*L[bestK] - d*L[idx[i]])
					for a := 0; a < D; a++ {
						Ce[a] += CC[a*D+i] * delta
					}
					idx[i] = bestK
					x[i] = d * L[bestK]
					moved = true
				}
			}
			if !moved {
				break
			}
		}
	}
}

// fitLevels: Lloyd's iteration of n symmetric levels on the capture's
// rotated centred keys (all layers), under the search encoder.
func (c *capture) fitLevels(L0 []float32, B, P, iters int) []float32 {
	L := append([]float32(nil), L0...)
	D := c.D
	var rows [][]float32
	for l := 0; l < c.L; l++ {
		for h := 0; h < c.nKV; h++ {
			// centred rotated rows: quantKeys with an identity quantizer capturing rows
			c.quantKeys(l, h, func(x []float32, l, h int) { rows = append(rows, append([]float32(nil), x...)) }, P, true, c.K, D)
		}
	}
	n := len(L)
	for it := 0; it < iters; it++ {
		sum := make([]float64, n)
		cnt := make([]float64, n)
		for ri, r := range rows {
			if ri%3 != 0 {
				continue
			}
			for b := 0; b < D; b += B {
				x := append([]float32(nil), r[b:b+B]...)
				d, idx := cbEncode(L, x, nil, stepsSearch, 1)
				if d == 0 {
					continue
				}
				for i, k := range idx {
					sum[k] += float64(r[b+i] / d)
					cnt[k]++
				}
			}
		}
		NL := make([]float32, n)
		for k := range NL {
			NL[k] = float32(sum[k] / cnt[k])
		}
		// symmetrise, largest 1
		for k := 0; k < n/2; k++ {
			m := (NL[n-1-k] - NL[k]) / 2
			NL[k], NL[n-1-k] = -m, m
		}
		top := NL[n-1]
		for k := range NL {
			NL[k] /= top
		}
		L = NL
	}
	return L
}

// qMean: m mᵀ + σ²·I with m the mean rotated query and σ² the mean
// residual energy per coordinate.
func (c *capture) qMean(signs bool) [][][]float64 {
	D := c.D
	out := make([][][]float64, c.L)
	row := make([]float32, D)
	for l := 0; l < c.L; l++ {
		out[l] = make([][]float64, c.nKV)
		for h := 0; h < c.nKV; h++ {
			m := make([]float64, D)
			var e2 float64
			n := 0
			for t := 0; t < c.T; t += 2 {
				for j := 0; j < c.g; j++ {
					copy(row, c.Q[l][((t*c.nKV+h)*c.g+j)*D:][:D])
					labRot(row, signs)
					for a := range m {
						m[a] += float64(row[a])
						e2 += float64(row[a] * row[a])
					}
					n++
				}
			}
			var mm float64
			for a := range m {
				m[a] /= float64(n)
				mm += m[a] * m[a]
			}
			s2 := (e2/float64(n) - mm) / float64(D)
			C := make([]float64, D*D)
			for a := 0; a < D; a++ {
				for b := 0; b < D; b++ {
					C[a*D+b] = m[a] * m[b]
				}
				C[a*D+a] += s2
			}
			out[l][h] = C
		}
	}
	return out
}

// cbQAwareScale: per block, every candidate scale (search steps and the
// LS refit) is tried with nearest levels plus greedy moves, keeping the
// scale of least eᵀCe.
func cbQAwareScale(L []float32, B int, C [][][]float64, passes int, steps []float32) rowQ {
	return func(x []float32, l, h int) {
		D := len(x)
		CC := C[l][h]
		orig := append([]float32(nil), x...)
		cost := func(y []float32) float64 {
			var s float64
			for a := 0; a < D; a++ {
				ea := float64(y[a] - orig[a])
				if ea == 0 {
					continue
				}
				for b := 0; b < D; b++ {
					s += ea * CC[a*D+b] * float64(y[b]-orig[b])
				}
			}
			return s
		}
		// start: plain nearest search
		y := append([]float32(nil), orig...)
		cbQ(L, B, stepsSearch, 1, nil)(y, l, h)
		for b := 0; b < D; b += B {
			var amax float32
			for _, v := range orig[b : b+B] {
				amax = max(amax, float32(math.Abs(float64(v))))
			}
			if amax == 0 {
				continue
			}
			bestY := append([]float32(nil), y...)
			bestC := math.Inf(1)
			for _, f := range steps {
				d := f16r(amax / L[len(L)-1] * f)
				cand := append([]float32(nil), y...)
				for i := b; i < b+B; i++ {
					u := orig[i] / d
					k := sort.Search(len(L)-1, func(k int) bool { return u <= (L[k]+L[k+1])/2 })
					cand[i] = d * L[k]
				}
				greedyBlock(L, cand, orig, CC, D, b, B, d, passes)
				if cc := cost(cand); cc < bestC {
					bestC, bestY = cc, cand
				}
			}
			y = bestY
		}
		copy(x, y)
	}
}

func greedyBlock(L []float32, y, x []float32, CC []float64, D, b, B int, d float32, passes int) {
	e := make([]float64, D)
	for i := range e {
		e[i] = float64(y[i] - x[i])
	}
	Ce := make([]float64, D)
	for a := 0; a < D; a++ {
		for c := 0; c < D; c++ {
			Ce[a] += CC[a*D+c] * e[c]
		}
	}
	idx := func(v float32) int {
		for k := range L {
			if d*L[k] == v {
				return k
			}
		}
		return -1
	}
	for p := 0; p < passes; p++ {
		moved := false
		for i := b; i < b+B; i++ {
			k0 := idx(y[i])
			if k0 < 0 {
				continue
			}
			bestK, bestG := k0, 0.0
			for _, k := range []int{k0 - 1, k0 + 1} {
				if k < 0 || k >= len(L) {
					continue
				}
				delta := float64(d*L[k] - y[i])
				if g := delta * (2*Ce[i] + delta*CC[i*D+i]); g < bestG {
					bestK, bestG = k, g
				}
			}
			if bestK != k0 {
				delta := float64(d*L[bestK] - y[i])
				for a := 0; a < D; a++ {
					Ce[a] += CC[a*D+i] * delta
				}
				y[i] = d * L[bestK]
				moved = true
			}
		}
		if !moved {
			break
		}
	}
}
