package perplexity

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
)

// DefaultTopK is the default number of log-probabilities a base file keeps
// per scored position: 0, the whole distribution.
const DefaultTopK = 0

// Base file format (little-endian), written by a base run and read by a
// compared run:
//
//	magic "KVSKLD03", ctx uint32, chunks uint32, k uint32, first scored position uint32, vocab uint32
//	per chunk: ctx token ids (int32), then per scored position:
//	  logprob of the actual next token (f32), then
//	  k = 0 (the default): the whole distribution as llama-perplexity keeps
//	    it — min and step (f32 each) and vocab × uint16 levels, log-prob =
//	    min + step·level (65536 levels over the position's range: a log-prob
//	    error below 2e-4, far under the differences measured);
//	  k > 0: the top k as (token id uint32, logprob f32), most probable
//	    first. The mass outside the top k is then one more outcome, which
//	    makes the KL divergence a lower bound (26% low for q5_1 on
//	    kvtest-27m with k = 32): use it only to save space.
const klMagic = "KVSKLD03"

type klWriter struct {
	w   *bufio.Writer
	k   int
	idx []int
	lp  []float64
	buf []byte
}

func newKLWriter(w io.Writer, ctx, chunks, k, from, vocab int) (*klWriter, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	hdr := make([]byte, 8+20)
	copy(hdr, klMagic)
	for i, v := range []int{ctx, chunks, k, from, vocab} {
		binary.LittleEndian.PutUint32(hdr[8+4*i:], uint32(v))
	}
	if _, err := bw.Write(hdr); err != nil {
		return nil, err
	}
	kw := &klWriter{w: bw, k: k}
	if k == 0 {
		kw.buf = make([]byte, 12+2*vocab)
		kw.lp = make([]float64, vocab)
	} else {
		kw.buf = make([]byte, 4+8*k)
	}
	return kw, nil
}

func (kw *klWriter) writeTokens(toks []int) error {
	b := make([]byte, 4*len(toks))
	for i, t := range toks {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(int32(t)))
	}
	_, err := kw.w.Write(b)
	return err
}

func (kw *klWriter) writePos(logits []float32, next int) error {
	logZ := logSumExp(logits)
	binary.LittleEndian.PutUint32(kw.buf, math.Float32bits(float32(float64(logits[next])-logZ)))
	if kw.k == 0 {
		lo, hi := math.Inf(1), math.Inf(-1)
		for i, v := range logits {
			kw.lp[i] = float64(v) - logZ
			lo, hi = math.Min(lo, kw.lp[i]), math.Max(hi, kw.lp[i])
		}
		step := (hi - lo) / 65535
		if step == 0 {
			step = 1
		}
		binary.LittleEndian.PutUint32(kw.buf[4:], math.Float32bits(float32(lo)))
		binary.LittleEndian.PutUint32(kw.buf[8:], math.Float32bits(float32(step)))
		lo32, step32 := float64(float32(lo)), float64(float32(step))
		for i, v := range kw.lp {
			q := math.Round((v - lo32) / step32)
			binary.LittleEndian.PutUint16(kw.buf[12+2*i:], uint16(max(0, min(65535, q))))
		}
	} else {
		kw.idx = topK(logits, kw.k, kw.idx)
		for j, id := range kw.idx {
			binary.LittleEndian.PutUint32(kw.buf[4+8*j:], uint32(id))
			binary.LittleEndian.PutUint32(kw.buf[8+8*j:], math.Float32bits(float32(float64(logits[id])-logZ)))
		}
	}
	_, err := kw.w.Write(kw.buf)
	return err
}

func (kw *klWriter) flush() error { return kw.w.Flush() }

// klRecord is one scored position of the base: either its whole
// distribution (full) or its top k.
type klRecord struct {
	nextLP float32
	full   []float64 // log-probs of every token (k = 0)
	ids    []uint32  // top k (k > 0)
	lps    []float32
}

// top1 returns the base's most probable token.
func (r *klRecord) top1() uint32 {
	if r.full == nil {
		return r.ids[0]
	}
	best := 0
	for i, v := range r.full {
		if v > r.full[best] {
			best = i
		}
	}
	return uint32(best)
}

type klReader struct {
	r                           *bufio.Reader
	ctx, chunks, k, from, vocab int
	rec                         klRecord
	buf                         []byte
}

func newKLReader(r io.Reader) (*klReader, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	hdr := make([]byte, 28)
	if _, err := io.ReadFull(br, hdr); err != nil || string(hdr[:8]) != klMagic {
		return nil, errors.New("KL base file is not a kvserve KL-divergence base of this version (bad header): make it again with --kl-divergence-base")
	}
	v := func(i int) int { return int(binary.LittleEndian.Uint32(hdr[8+4*i:])) }
	kr := &klReader{r: br, ctx: v(0), chunks: v(1), k: v(2), from: v(3), vocab: v(4)}
	if kr.k < 0 || kr.k > 1<<16 || kr.ctx <= 1 || kr.ctx > 1<<24 || kr.vocab <= 0 || kr.vocab > 1<<22 {
		return nil, errors.New("KL base file header is corrupt")
	}
	if kr.k == 0 {
		kr.buf = make([]byte, 12+2*kr.vocab)
		kr.rec.full = make([]float64, kr.vocab)
	} else {
		kr.buf = make([]byte, 4+8*kr.k)
		kr.rec.ids = make([]uint32, kr.k)
		kr.rec.lps = make([]float32, kr.k)
	}
	return kr, nil
}

func (kr *klReader) checkTokens(chunk int, toks []int) error {
	b := make([]byte, 4*len(toks))
	if _, err := io.ReadFull(kr.r, b); err != nil {
		return fmt.Errorf("KL base file truncated at chunk %d", chunk)
	}
	for i, t := range toks {
		if int32(binary.LittleEndian.Uint32(b[4*i:])) != int32(t) {
			return fmt.Errorf("KL base was computed on different tokens (chunk %d, position %d): use the same text, -c and model vocabulary", chunk, i)
		}
	}
	return nil
}

func (kr *klReader) next() (*klRecord, error) {
	if _, err := io.ReadFull(kr.r, kr.buf); err != nil {
		return nil, errors.New("KL base file truncated")
	}
	kr.rec.nextLP = math.Float32frombits(binary.LittleEndian.Uint32(kr.buf))
	if kr.k == 0 {
		lo := float64(math.Float32frombits(binary.LittleEndian.Uint32(kr.buf[4:])))
		step := float64(math.Float32frombits(binary.LittleEndian.Uint32(kr.buf[8:])))
		mx := math.Inf(-1)
		for i := range kr.rec.full {
			kr.rec.full[i] = lo + step*float64(binary.LittleEndian.Uint16(kr.buf[12+2*i:]))
			mx = math.Max(mx, kr.rec.full[i])
		}
		// Renormalise: the 16-bit levels' rounding would otherwise leave
		// the probabilities summing to 1±1e-4, a first-order KLD bias.
		var sum float64
		for _, v := range kr.rec.full {
			sum += math.Exp(v - mx)
		}
		norm := mx + math.Log(sum)
		for i := range kr.rec.full {
			kr.rec.full[i] -= norm
		}
		return &kr.rec, nil
	}
	for j := 0; j < kr.k; j++ {
		kr.rec.ids[j] = binary.LittleEndian.Uint32(kr.buf[4+8*j:])
		kr.rec.lps[j] = math.Float32frombits(binary.LittleEndian.Uint32(kr.buf[8+8*j:]))
	}
	return &kr.rec, nil
}

func logSumExp(x []float32) float64 {
	mx := float64(x[0])
	for _, v := range x {
		mx = math.Max(mx, float64(v))
	}
	var s float64
	for _, v := range x {
		s += math.Exp(float64(v) - mx)
	}
	return mx + math.Log(s)
}

// topK returns the indices of the k largest values, largest first (ties:
// lower index first).
func topK(x []float32, k int, idx []int) []int {
	k = min(k, len(x))
	idx = idx[:0]
	for i, v := range x {
		if len(idx) < k {
			idx = append(idx, i)
			for j := len(idx) - 1; j > 0 && x[idx[j]] > x[idx[j-1]]; j-- {
				idx[j], idx[j-1] = idx[j-1], idx[j]
			}
			continue
		}
		if v <= x[idx[k-1]] {
			continue
		}
		idx[k-1] = i
		for j := k - 1; j > 0 && x[idx[j]] > x[idx[j-1]]; j-- {
			idx[j], idx[j-1] = idx[j-1], idx[j]
		}
	}
	return idx
}

type klAccum struct {
	err      error
	pos      []int // position in its chunk of each scored token
	kld      []float64
	dp       []float64
	same     int
	sameAt   []bool
	lnQ, lnP []float64 // per position -log prob of the actual token
}

func (a *klAccum) add(rec *klRecord, logits []float32, next, pos int) {
	a.pos = append(a.pos, pos)
	logZ := logSumExp(logits)
	var kl float64
	if rec.full != nil {
		if len(rec.full) != len(logits) {
			a.err = fmt.Errorf("KL base has a vocabulary of %d, the model %d", len(rec.full), len(logits))
			return
		}
		for i, lp := range rec.full {
			kl += math.Exp(lp) * (lp - (float64(logits[i]) - logZ))
		}
	} else {
		var pTop, qTop float64
		for j, id := range rec.ids {
			lp := float64(rec.lps[j])
			lq := float64(logits[id]) - logZ
			p := math.Exp(lp)
			kl += p * (lp - lq)
			pTop += p
			qTop += math.Exp(lq)
		}
		if pRest := 1 - pTop; pRest > 1e-12 {
			qRest := math.Max(1-qTop, 1e-30)
			kl += pRest * (math.Log(pRest) - math.Log(qRest))
		}
	}
	a.kld = append(a.kld, math.Max(kl, 0))
	best := 0
	for i, v := range logits {
		if v > logits[best] {
			best = i
		}
	}
	if uint32(best) == rec.top1() {
		a.same++
		a.sameAt = append(a.sameAt, true)
	} else {
		a.sameAt = append(a.sameAt, false)
	}
	lq := float64(logits[next]) - logZ
	a.dp = append(a.dp, math.Exp(lq)-math.Exp(float64(rec.nextLP)))
	a.lnQ = append(a.lnQ, -lq)
	a.lnP = append(a.lnP, -float64(rec.nextLP))
}

// KLStats summarises a comparison with a base run.
type KLStats struct {
	N                         int
	PPLBase                   float64
	MeanLnRatio, MeanLnRatioE float64
	CorLnPPL                  float64
	MeanKLD, MeanKLDErr       float64
	MaxKLD, MinKLD            float64
	KLDQuantiles              map[float64]float64 // 0.999, 0.99, 0.95, 0.9, 0.5, 0.1, 0.05, 0.01
	MeanDp, MeanDpErr         float64
	RMSDp, RMSDpErr           float64
	MaxDp, MinDp              float64
	DpQuantiles               map[float64]float64
	SameTop, SameTopErr       float64 // fractions
	Segments                  []Segment
}

// Segment is the KL divergence over a range of positions (in chunks).
type Segment struct {
	From, To int // positions [From, To)
	N        int
	MeanKLD  float64
	SameTop  float64
}

// segments groups the scored positions into ranges of size positions.
func (a *klAccum) segments(size int) []Segment {
	var out []Segment
	for i, p := range a.pos {
		si := p / size
		for len(out) <= si {
			out = append(out, Segment{From: len(out) * size, To: (len(out) + 1) * size})
		}
		s := &out[si]
		s.N++
		s.MeanKLD += a.kld[i]
		if a.sameAt[i] {
			s.SameTop++
		}
	}
	for i := range out {
		if out[i].N > 0 {
			out[i].MeanKLD /= float64(out[i].N)
			out[i].SameTop /= float64(out[i].N)
		}
	}
	return out
}

var quantileLevels = []float64{0.999, 0.99, 0.95, 0.9, 0.5, 0.1, 0.05, 0.01, 0.001}

func meanErr(x []float64) (float64, float64) {
	var s, s2 float64
	for _, v := range x {
		s += v
		s2 += v * v
	}
	n := float64(len(x))
	m := s / n
	v := s2/n - m*m
	if v < 0 || n < 2 {
		return m, 0
	}
	return m, math.Sqrt(v / (n - 1))
}

func quantiles(x []float64) map[float64]float64 {
	s := append([]float64(nil), x...)
	sort.Float64s(s)
	q := map[float64]float64{}
	for _, l := range quantileLevels {
		pos := l * float64(len(s)-1)
		i := int(pos)
		f := pos - float64(i)
		v := s[i]
		if i+1 < len(s) {
			v = s[i]*(1-f) + s[i+1]*f
		}
		q[l] = v
	}
	return q
}

func (a *klAccum) stats() *KLStats {
	st := &KLStats{N: len(a.kld)}
	if st.N == 0 {
		return st
	}
	st.MeanKLD, st.MeanKLDErr = meanErr(a.kld)
	st.KLDQuantiles = quantiles(a.kld)
	st.MaxKLD, st.MinKLD = a.kld[0], a.kld[0]
	for _, v := range a.kld {
		st.MaxKLD = math.Max(st.MaxKLD, v)
		st.MinKLD = math.Min(st.MinKLD, v)
	}
	st.MeanDp, st.MeanDpErr = meanErr(a.dp)
	sq := make([]float64, len(a.dp))
	st.MaxDp, st.MinDp = a.dp[0], a.dp[0]
	for i, v := range a.dp {
		sq[i] = v * v
		st.MaxDp = math.Max(st.MaxDp, v)
		st.MinDp = math.Min(st.MinDp, v)
	}
	ms, msErr := meanErr(sq)
	st.RMSDp = math.Sqrt(ms)
	if st.RMSDp > 0 {
		st.RMSDpErr = msErr / (2 * st.RMSDp)
	}
	st.DpQuantiles = quantiles(a.dp)
	n := float64(st.N)
	st.SameTop = float64(a.same) / n
	st.SameTopErr = math.Sqrt(st.SameTop * (1 - st.SameTop) / math.Max(n-1, 1))
	mp, _ := meanErr(a.lnP)
	st.PPLBase = math.Exp(mp)
	ratio := make([]float64, len(a.lnQ))
	for i := range ratio {
		ratio[i] = a.lnQ[i] - a.lnP[i]
	}
	st.MeanLnRatio, st.MeanLnRatioE = meanErr(ratio)
	st.CorLnPPL = correlation(a.lnQ, a.lnP)
	return st
}

func correlation(x, y []float64) float64 {
	mx, _ := meanErr(x)
	my, _ := meanErr(y)
	var sxy, sxx, syy float64
	for i := range x {
		dx, dy := x[i]-mx, y[i]-my
		sxy += dx * dy
		sxx += dx * dx
		syy += dy * dy
	}
	if sxx == 0 || syy == 0 {
		return 1
	}
	return sxy / math.Sqrt(sxx*syy)
}

func (st *KLStats) report(w io.Writer, r *Result) {
	fmt.Fprintf(w, "====== Perplexity statistics ======\n")
	fmt.Fprintf(w, "Mean PPL(Q)                   : %10.6f ± %10.6f\n", r.PPL, r.PPLErr)
	fmt.Fprintf(w, "Mean PPL(base)                : %10.6f\n", st.PPLBase)
	fmt.Fprintf(w, "Cor(ln(PPL(Q)), ln(PPL(base))): %6.2f%%\n", 100*st.CorLnPPL)
	fmt.Fprintf(w, "Mean ln(PPL(Q)/PPL(base))     : %10.6f ± %10.6f\n", st.MeanLnRatio, st.MeanLnRatioE)
	fmt.Fprintf(w, "Mean PPL(Q)/PPL(base)         : %10.6f ± %10.6f\n", math.Exp(st.MeanLnRatio), math.Exp(st.MeanLnRatio)*st.MeanLnRatioE)
	fmt.Fprintf(w, "\n====== KL divergence statistics ======\n")
	fmt.Fprintf(w, "Mean    KLD: %10.6f ± %10.6f\n", st.MeanKLD, st.MeanKLDErr)
	fmt.Fprintf(w, "Maximum KLD: %10.6f\n", st.MaxKLD)
	for _, l := range quantileLevels {
		label := fmt.Sprintf("%4.1f%%", 100*l)
		if l == 0.5 {
			label = "Median"
		}
		if l == 0.999 || l == 0.001 {
			label = fmt.Sprintf("%4.1f%%", 100*l)
		}
		fmt.Fprintf(w, "%-7s KLD: %10.6f\n", label, st.KLDQuantiles[l])
	}
	fmt.Fprintf(w, "Minimum KLD: %10.6f\n", st.MinKLD)
	fmt.Fprintf(w, "\n====== Token probability statistics ======\n")
	fmt.Fprintf(w, "Mean    Δp: %7.3f ± %5.3f %%\n", 100*st.MeanDp, 100*st.MeanDpErr)
	fmt.Fprintf(w, "Maximum Δp: %7.3f%%\n", 100*st.MaxDp)
	for _, l := range quantileLevels {
		label := fmt.Sprintf("%4.1f%%", 100*l)
		if l == 0.5 {
			label = "Median"
		}
		fmt.Fprintf(w, "%-7s Δp: %7.3f%%\n", label, 100*st.DpQuantiles[l])
	}
	fmt.Fprintf(w, "Minimum Δp: %7.3f%%\n", 100*st.MinDp)
	fmt.Fprintf(w, "RMS Δp    : %7.3f ± %5.3f %%\n", 100*st.RMSDp, 100*st.RMSDpErr)
	fmt.Fprintf(w, "Same top p: %7.3f ± %5.3f %%\n\n", 100*st.SameTop, 100*st.SameTopErr)
	if len(st.Segments) > 0 {
		fmt.Fprintf(w, "====== KL divergence by position ======\n")
		for _, sg := range st.Segments {
			fmt.Fprintf(w, "positions %5d-%5d: mean KLD %10.6f, same top p %7.3f %%\n", sg.From, sg.To-1, sg.MeanKLD, 100*sg.SameTop)
		}
		fmt.Fprintln(w)
	}
}
