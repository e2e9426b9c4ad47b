package cbkernels

import (
	"math"
	"sync"

	"github.com/kvserve/kvserve/internal/tensor"
)

// The SIMD encoder (issue 18: requantizing into a codebook tier at a
// speed near q4_0's). It writes exactly the bytes of tensor.QuantizeRow:
// for each block the kernels (encode_amd64.s) code the values with the
// same five candidate scales, then the least-squares refit, each term of
// every sum being the reference's own IEEE operation; only the order of
// the sums differs (a tree instead of a running sum). So a choice is
// taken from the kernels' sums only when it is the same for any order:
// both orders are within γ₆₃·Σ|terms| (γₙ = n·2⁻²⁴/(1 − n·2⁻²⁴), under
// 3.8e-6 of the sum for 64 terms; the tree is within γ₇) of the exact
// sum (4.4e-6 together, AVX2's γ₁₀ included), so with encEps = 5e-6
//
//   - candidate c replaces the best b when e_c(1+ε) < e_b(1−ε), and not
//     when e_c(1−ε) ≥ e_b(1+ε) (equal scales: equal terms, never
//     replaced, as the reference's strict "<" keeps the first); in
//     between (a near-tie, common for the refit, whose scale is close to
//     the best's) both errors are summed again in the reference's order;
//   - the refit scale binary16(Σx·L / ΣL²) is taken when the roundings of
//     both ends of its interval agree, else its two sums are summed again
//     in the reference's order;
//
// and a block holding a NaN or an infinity, or with a huge error, is
// encoded by tensor.EncodeCodebookBlock itself. The tests
// compare whole rows with QuantizeRow on random, heavy-tailed, constant,
// tiny, huge and tie-prone data at every CPU level.

// encEps bounds the relative difference between the kernels' tree sums
// and the reference's running sums (see above).
const encEps = 5e-6

// encTables is what the kernels read (offsets fixed by
// scripts/gen-cb-encode.py).
type encTables struct {
	mids    [16]float32    // cell edges (L[k]+L[k+1])/2, ascending
	levels  [16]float32    // the levels (AVX-512 VPERMPS table)
	fr      [8]float32     // the five fractions; fr[7] = lmax
	mids8   [15][8]float32 // AVX2: each edge 8 times
	levels8 [16]float32    // AVX2: the levels (cb2's four twice)
	shuf    [32]byte       // AVX2: byte 0 of each dword to the lane's front
	perm    [8]int32       // AVX2: dwords 0 and 4 to the front
	sevens  [8]int32       // AVX2: 7 (cb4's upper half of levels)
	steps   [4][16]float32 // AVX-512: steps[log2 s][i] = mids[i+s-1]
	f64     [3]float64     // 1+encEps, 1-encEps, encEps
	big     float32        // 1e37: larger errors are left to the reference
}

// encOut is what the kernels write: per slot (0..4 the fractions, 5 the
// refit) the indices, the scale and its inverse, and the sums.
type encOut struct {
	idx                       [6][64]uint8
	d, inv, e, sxl, sll, sabs [8]float32
	amax                      float32
	bad                       int32
	best, status              int32 // mode 8: the block's slot kept; 0 keep, 2 refit, 1 undecided
	// Mode 8, the row (first encOut of the chunk's): the last block's
	// indices, the next block's bytes, blocks left and done, the chunk's
	// values, its block and blocks, 0 when every block was decided.
	state      [64]uint8
	dst        uintptr
	left, done int
	xb         uintptr
	ci, cn     int
	rstatus    int
}

// encOutPool holds the kernels' scratch (5.7 KB a call: the kernel is
// called through a function value, so a local would escape).
var encOutPool = sync.Pool{New: func() any { return new([encChunk]encOut) }}

// encChunk is the number of blocks mode 8 works on at once (CHUNK in
// scripts/gen-cb-encode.py): its out is an array of that many encOut.
const encChunk = 8

func newEncTables(t tensor.Type) *encTables {
	L := tensor.CodebookLevels(t)
	tb := &encTables{}
	for k := 0; k+1 < len(L); k++ {
		m := (L[k] + L[k+1]) * 0.5
		tb.mids[k] = m
		for i := range tb.mids8[k] {
			tb.mids8[k][i] = m
		}
	}
	for k := len(L) - 1; k < 16; k++ {
		tb.mids[k] = float32(math.Inf(1))
	}
	for lg := range tb.steps {
		for i := range tb.steps[lg] {
			tb.steps[lg][i] = tb.mids[min(i+1<<lg-1, 15)]
		}
	}
	copy(tb.levels[:], L)
	copy(tb.levels8[:], L)
	if len(L) == 4 {
		copy(tb.levels8[4:], L)
	}
	copy(tb.fr[:], tensor.CodebookScaleSteps())
	tb.fr[7] = L[len(L)-1]
	for i := range tb.shuf {
		tb.shuf[i] = 0x80
	}
	for lane := 0; lane < 2; lane++ {
		for j := 0; j < 4; j++ {
			tb.shuf[16*lane+j] = byte(4 * j)
		}
	}
	tb.f64 = [3]float64{1 + encEps, 1 - encEps, encEps}
	tb.big = 1e37
	tb.perm = [8]int32{0, 4, 1, 1, 1, 1, 1, 1}
	tb.sevens = [8]int32{7, 7, 7, 7, 7, 7, 7, 7}
	return tb
}

// encFallback encodes a block the kernels' sums cannot decide (a
// variable so tests can count the calls).
var encFallback = tensor.EncodeCodebookBlock

// encKernel works on block x with out's slots: mode 1 finds amax, fills
// slots 0..4 and sets their indices and squared errors; mode 0 does the
// same for slot 5 with out.d[5], out.inv[5]; mode 2+j sets slot j's refit
// sums (sxl, sll, sabs) from its indices. Mode 8 encodes up to nb blocks
// from x into dst, out pointing to encChunk encOut (one per block of a
// chunk): for each block, search, choice of the best slot, its sums, the
// refit scale, the refit's evaluation and comparison — taking
// encodeBlockFast's decisions where the sums decide them — then packs
// the block and keeps its indices in out.state; it stops at the first
// block it cannot decide (rstatus 1, done = its number; encodeBlockFast
// does it with out.state as the carried indices, then calls mode 9, which
// goes on after that block) or after nb (rstatus 0).
type encKernel func(x *float32, tab *encTables, out *encOut, mode int, dst *byte, nb int)

// encodeRowFast is QuantizeRow(t) with the kernel k.
func encodeRowFast(t tensor.Type, k encKernel, tab *encTables, dst []byte, src []float32) {
	bs, ts := t.BlockSize(), t.TypeSize()
	L := tensor.CodebookLevels(t)
	nb := len(src) / bs
	if nb == 0 {
		return
	}
	_ = dst[nb*ts-1]
	// outs[0].state: the indices carried from block to block, as
	// QuantizeRow does (zero at the start).
	op := encOutPool.Get().(*[encChunk]encOut)
	defer encOutPool.Put(op)
	outs := op
	outs[0].state = [64]uint8{}
	k(&src[0], tab, &outs[0], 8, &dst[0], nb)
	for outs[0].rstatus != 0 {
		b := outs[0].done
		x := src[b*bs : (b+1)*bs : (b+1)*bs]
		// The block's search is in its encOut of the chunk.
		d := encodeBlockFast(t, L, k, tab, x, &outs[0].state, &outs[outs[0].ci], true)
		packBlock(t, dst[b*ts:(b+1)*ts], d, &outs[0].state)
		k(&src[0], tab, &outs[0], 9, &dst[0], nb)
	}
}

// blockState is one block's candidates: the kernels' sums and, computed
// on demand, the reference's own (running-sum) squared errors.
type blockState struct {
	L     []float32
	x     []float32
	out   *encOut
	exact [6]float32
	have  [6]bool
}

// sse is the reference's squared error of slot j (tensor's codebookSSE:
// terms in order, each rounded to float32).
func (s *blockState) sse(j int) float32 {
	if !s.have[j] {
		d, idx := s.out.d[j], &s.out.idx[j]
		var e float32
		for i, v := range s.x {
			r := v - float32(d*s.L[idx[i]])
			e += float32(r * r)
		}
		s.exact[j], s.have[j] = e, true
	}
	return s.exact[j]
}

// less reports whether the reference's squared error of slot c is below
// that of slot b: from the kernels' sums when they decide it for any
// order of the terms, else from the reference's sums.
func (s *blockState) less(c, b int) bool {
	c64, b64 := float64(s.out.e[c]), float64(s.out.e[b])
	if c64*(1+encEps) < b64*(1-encEps) {
		return true
	}
	if c64*(1-encEps) >= b64*(1+encEps) {
		return false
	}
	return s.sse(c) < s.sse(b)
}

func usable(d float32) bool { return d != 0 && !math.IsInf(float64(d), 0) }

// encodeBlockFast returns the scale of block x and sets idx to its
// indices (or leaves it, as the reference does, when no scale is usable);
// searched: out already holds the block's search (mode 1).
func encodeBlockFast(t tensor.Type, L []float32, k encKernel, tab *encTables, x []float32, idx *[64]uint8, out *encOut, searched bool) float32 {
	if !searched {
		k(&x[0], tab, out, 1, nil, 0)
	}
	if out.bad != 0 {
		return encFallback(t, x, idx)
	}
	if out.amax == 0 {
		for i := range x {
			idx[i] = uint8(len(L) / 2)
		}
		return 0
	}
	s := blockState{L: L, x: x, out: out}
	best := -1
	for j := 0; j < 5; j++ {
		d := out.d[j]
		if !usable(d) {
			continue
		}
		if !(out.e[j] < 1e37) {
			return encFallback(t, x, idx)
		}
		if best < 0 {
			best = j
			continue
		}
		if d != out.d[best] && s.less(j, best) {
			best = j
		}
	}
	if best < 0 {
		return 0
	}
	k(&x[0], tab, out, 2+best, nil, 0)
	if d, ok := refitScale(L, x, out, best); ok && usable(d) && d != out.d[best] {
		out.d[5], out.inv[5] = d, 1/d
		k(&x[0], tab, out, 0, nil, 0)
		if !(out.e[5] < 1e37) {
			return encFallback(t, x, idx)
		}
		if s.less(5, best) {
			best = 5
		}
	}
	copy(idx[:len(x)], out.idx[best][:len(x)])
	return out.d[best]
}

// refitScale returns the reference's refit scale binary16(Σx·L / ΣL²) of
// slot j's indices, and false when the reference tries none (Σx·L ≤ 0).
func refitScale(L []float32, x []float32, out *encOut, j int) (float32, bool) {
	sxl, sll, sa := float64(out.sxl[j]), float64(out.sll[j]), float64(out.sabs[j])
	dx, dl := encEps*sa, encEps*sll
	if sxl-dx > 0 {
		lo := float32((sxl - dx) / (sll + dl))
		hi := float32((sxl + dx) / (sll - dl))
		if h := tensor.F32ToF16(lo); h == tensor.F32ToF16(hi) {
			return tensor.F16ToF32(h), true
		}
	} else if sxl+dx <= 0 {
		return 0, false
	}
	// Undecided: the two sums in the reference's order.
	var s1, s2 float32
	for i, v := range x {
		l := L[out.idx[j][i]]
		s1 += float32(v * l)
		s2 += float32(l * l)
	}
	if s2 > 0 && s1 > 0 {
		return tensor.F16ToF32(tensor.F32ToF16(s1 / s2)), true
	}
	return 0, false
}
