// Package ggmlref holds independent reference implementations of ggml's
// block formats, written from the format definitions, that tests of other
// packages compare against bit for bit. It is imported only by tests.
//
// Independent reference implementations of every format, written from the
// format definitions for the tests. They are deliberately structured
// differently from the package code: each format is described by an element
// addressing scheme (where the bits of element e live) used both to pack and
// to unpack, quantizers first compute integer levels and scales and only then
// pack, rounding is done with math.Round / math.RoundToEven on float64 (exact
// for float32 inputs) instead of bit tricks, and level search is a linear
// scan. Float32 arithmetic follows ggml's operation order, each product
// rounded (explicit float32 conversions), since bit-exactness is the point.
package ggmlref

import (
	"encoding/binary"
	"math"

	"github.com/kvserve/kvserve/internal/tensor"
)

// ---- scalar helpers ----

func rF16(b []byte) float32 { return tensor.F16ToF32(binary.LittleEndian.Uint16(b)) }
func wF16(b []byte, v float32) {
	binary.LittleEndian.PutUint16(b, tensor.F32ToF16(v))
}
func fabs(v float32) float32 { return float32(math.Abs(float64(v))) }

// rne is ggml's nearest_int (round half to even) for |v| < 2^22.
func rne(v float32) int { return int(math.RoundToEven(float64(v))) }

// roundf is C's roundf (half away from zero).
func roundf(v float32) int { return int(math.Round(float64(v))) }

// ctrunc is C's float → integer conversion (toward zero).
func ctrunc(v float32) int { return int(math.Trunc(float64(v))) }

func clampInt(v, lo, hi int) int {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}

// signedMax: the first element of largest magnitude and its magnitude.
func signedMax(x []float32) (float32, float32) {
	best, at := float32(0), -1
	for i, v := range x {
		if fabs(v) > best {
			best, at = fabs(v), i
		}
	}
	if at < 0 {
		return 0, 0
	}
	return x[at], best
}

// ---- element addressing ----

// nib4 addresses a 4-bit value: byte index and shift.
type nib4 struct{ byteIdx, shift int }

// legacyNibble: element e of a 32-block; qs[e%16], low nibble for e<16.
func legacyNibble(e int) nib4 { return nib4{e % 16, 4 * (e / 16)} }

// k4Nibble: element e of a 256-block of Q4_K/Q5_K: each 64 elements use 32
// bytes, the first 32 elements in the low nibbles.
func k4Nibble(e int) nib4 { return nib4{32*(e/64) + e%32, 4 * ((e % 64) / 32)} }

// q6Low and q6High: element e of a Q6_K block.
func q6Low(e int) nib4 {
	h, r := e/128, e%128
	g, l := r/32, r%32
	return nib4{64*h + l + 32*(g%2), 4 * (g / 2)}
}
func q6High(e int) (byteIdx, shift int) {
	h, r := e/128, e%128
	return 32*h + r%32, 2 * (r / 32)
}

func getNib(qs []byte, a nib4) int    { return int(qs[a.byteIdx]>>a.shift) & 15 }
func setNib(qs []byte, a nib4, v int) { qs[a.byteIdx] |= byte(v&15) << a.shift }

// Q4_K/Q5_K 6-bit scale and min of sub-block j, by definition of the
// 12-byte packing.
func k4ScaleMin(s []byte, j int) (int, int) {
	if j < 4 {
		return int(s[j] & 63), int(s[j+4] & 63)
	}
	lo := int(s[j+4])
	return lo&15 | int(s[j-4]>>6)<<4, lo>>4 | int(s[j]>>6)<<4
}

func k4PackScales(s []byte, sc, m [8]int) {
	for j := 0; j < 4; j++ {
		s[j] = byte(sc[j]&63) | byte(sc[j+4]>>4)<<6
		s[j+4] = byte(m[j]&63) | byte(m[j+4]>>4)<<6
		s[j+8] = byte(sc[j+4]&15) | byte(m[j+4]&15)<<4
	}
}

// ---- reference dequantizers ----

func Dequantize(t tensor.Type, b []byte, n int) []float32 {
	y := make([]float32, n)
	bs, ts := t.BlockSize(), t.TypeSize()
	for ib := 0; ib < n/bs; ib++ {
		blk := b[ib*ts : (ib+1)*ts]
		out := y[ib*bs : (ib+1)*bs]
		switch t {
		case tensor.F32:
			out[0] = math.Float32frombits(binary.LittleEndian.Uint32(blk))
		case tensor.F16:
			out[0] = rF16(blk)
		case tensor.BF16:
			out[0] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(blk)) << 16)
		case tensor.Q4_0:
			for e := range out {
				out[e] = float32(getNib(blk[2:], legacyNibble(e))-8) * rF16(blk)
			}
		case tensor.Q4_1:
			for e := range out {
				out[e] = float32(float32(getNib(blk[4:], legacyNibble(e)))*rF16(blk)) + rF16(blk[2:])
			}
		case tensor.Q5_0:
			qh := binary.LittleEndian.Uint32(blk[2:])
			for e := range out {
				q := getNib(blk[6:], legacyNibble(e)) + 16*int(qh>>e&1)
				out[e] = float32(q-16) * rF16(blk)
			}
		case tensor.Q5_1:
			qh := binary.LittleEndian.Uint32(blk[4:])
			for e := range out {
				q := getNib(blk[8:], legacyNibble(e)) + 16*int(qh>>e&1)
				out[e] = float32(float32(q)*rF16(blk)) + rF16(blk[2:])
			}
		case tensor.Q8_0:
			for e := range out {
				out[e] = float32(int8(blk[2+e])) * rF16(blk)
			}
		case tensor.Q8_1:
			for e := range out {
				out[e] = float32(int8(blk[4+e])) * rF16(blk)
			}
		case tensor.IQ4_NL:
			for e := range out {
				out[e] = rF16(blk) * float32(iq4Levels[getNib(blk[2:], legacyNibble(e))])
			}
		case tensor.MXFP4:
			for e := range out {
				out[e] = float32(mxfp4Levels[getNib(blk[1:], legacyNibble(e))]) * e8m0Half(blk[0])
			}
		case tensor.Q4_K, tensor.Q5_K:
			d, dmin := rF16(blk), rF16(blk[2:])
			for e := range out {
				sc, m := k4ScaleMin(blk[4:16], e/32)
				var q int
				if t == tensor.Q4_K {
					q = getNib(blk[16:], k4Nibble(e))
				} else {
					q = getNib(blk[48:], k4Nibble(e)) + 16*int(blk[16+e%32]>>(e/32)&1)
				}
				out[e] = float32(float32(d*float32(sc))*float32(q)) - float32(dmin*float32(m))
			}
		case tensor.Q6_K:
			d := rF16(blk[208:])
			for e := range out {
				hb, hs := q6High(e)
				q := getNib(blk[0:128], q6Low(e)) | int(blk[128+hb]>>hs&3)<<4
				sc := int8(blk[192+e/16])
				out[e] = float32(d*float32(sc)) * float32(q-32)
			}
		case tensor.Q8_K:
			d := math.Float32frombits(binary.LittleEndian.Uint32(blk))
			for e := range out {
				out[e] = d * float32(int8(blk[4+e]))
			}
		default:
			panic("no reference dequantizer for " + t.String())
		}
	}
	return y
}

var iq4Levels = [16]int{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}

// mxfp4Levels are the E2M1 values ±{0, 0.5, 1, 1.5, 2, 3, 4, 6} times 2
// (code 8 is a negative zero), as ggml stores them.
var mxfp4Levels = func() (l [16]int) {
	mag := [8]float64{0, 0.5, 1, 1.5, 2, 3, 4, 6}
	for c := range l {
		v := int(2 * mag[c&7])
		if c&8 != 0 {
			v = -v
		}
		l[c] = v
	}
	return
}()

// e8m0Half is half the E8M0 scale 2^(e-127), computed with Ldexp.
func e8m0Half(e uint8) float32 { return float32(math.Ldexp(1, int(e)-128)) }

// refMXFP4 is quantize_row_mxfp4_ref: the exponent from the block's
// largest magnitude, each value to the first nearest level.
func refMXFP4(xb []float32, blk []byte) {
	amax := 0.0
	for _, v := range xb {
		amax = math.Max(amax, math.Abs(float64(v)))
	}
	e := 0
	if amax > 0 {
		e = int(math.Floor(float64(float32(math.Log2(amax))))) + 125
	}
	blk[0] = uint8(e)
	d := e8m0Half(uint8(e))
	for k := 0; k < 32; k++ {
		best, bestErr := 0, float32(math.Inf(1))
		for c := 0; c < 16; c++ {
			err := float32(math.Abs(float64(float32(float32(mxfp4Levels[c])*d) - xb[k])))
			if err < bestErr {
				best, bestErr = c, err
			}
		}
		setNib(blk[1:], legacyNibble(k), best)
	}
}

// ---- reference quantizers ----

func Quantize(t tensor.Type, x []float32, cpu bool) []byte {
	bs, ts := t.BlockSize(), t.TypeSize()
	y := make([]byte, len(x)/bs*ts)
	for ib := 0; ib < len(x)/bs; ib++ {
		xb := x[ib*bs : (ib+1)*bs]
		blk := y[ib*ts : (ib+1)*ts]
		switch t {
		case tensor.F32:
			binary.LittleEndian.PutUint32(blk, math.Float32bits(xb[0]))
		case tensor.F16:
			wF16(blk, xb[0])
		case tensor.BF16:
			binary.LittleEndian.PutUint16(blk, refBF16(xb[0]))
		case tensor.Q4_0:
			refQ4_0(xb, blk)
		case tensor.Q4_1, tensor.Q5_1:
			refQx1(t, xb, blk)
		case tensor.Q5_0:
			refQ5_0(xb, blk)
		case tensor.Q8_0, tensor.Q8_1:
			refQ8(t, xb, blk, cpu)
		case tensor.IQ4_NL:
			refIQ4NL(xb, blk)
		case tensor.MXFP4:
			refMXFP4(xb, blk)
		case tensor.Q4_K, tensor.Q5_K:
			refK45(t, xb, blk)
		case tensor.Q6_K:
			refQ6K(xb, blk)
		case tensor.Q8_K:
			refQ8K(xb, blk)
		default:
			panic("no reference quantizer for " + t.String())
		}
	}
	return y
}

// refBF16: round to nearest even on the 16 dropped bits; NaN stays NaN
// (quiet bit set).
func refBF16(f float32) uint16 {
	u := math.Float32bits(f)
	if f != f {
		return uint16(u>>16) | 0x40
	}
	hi, lo := u>>16, u&0xffff
	if lo > 0x8000 || (lo == 0x8000 && hi&1 == 1) {
		hi++
	}
	return uint16(hi)
}

func refQ4_0(xb []float32, blk []byte) {
	m, _ := signedMax(xb)
	d := m / -8
	id := float32(0)
	if d != 0 {
		id = 1 / d
	}
	wF16(blk, d)
	for e, v := range xb {
		q := min(15, ctrunc(float32(v*id)+8.5))
		setNib(blk[2:], legacyNibble(e), q)
	}
}

func refQ5_0(xb []float32, blk []byte) {
	m, _ := signedMax(xb)
	d := m / -16
	id := float32(0)
	if d != 0 {
		id = 1 / d
	}
	wF16(blk, d)
	var qh uint32
	for e, v := range xb {
		q := min(31, ctrunc(float32(v*id)+16.5))
		setNib(blk[6:], legacyNibble(e), q)
		qh |= uint32(q>>4&1) << e
	}
	binary.LittleEndian.PutUint32(blk[2:], qh)
}

// refQx1: Q4_1 and Q5_1, min + scale over [min, max].
func refQx1(t tensor.Type, xb []float32, blk []byte) {
	lo, hi := xb[0], xb[0]
	for _, v := range xb {
		lo = min(lo, v)
		hi = max(hi, v)
	}
	levels := float32(15)
	if t == tensor.Q5_1 {
		levels = 31
	}
	d := (hi - lo) / levels
	id := float32(0)
	if d != 0 {
		id = 1 / d
	}
	wF16(blk, d)
	wF16(blk[2:], lo)
	var qh uint32
	for e, v := range xb {
		q := ctrunc(float32(float32(v-lo)*id) + 0.5)
		if t == tensor.Q4_1 {
			setNib(blk[4:], legacyNibble(e), min(15, q))
		} else {
			setNib(blk[8:], legacyNibble(e), q)
			qh |= uint32(q>>4&1) << e
		}
	}
	if t == tensor.Q5_1 {
		binary.LittleEndian.PutUint32(blk[4:], qh)
	}
}

func refQ8(t tensor.Type, xb []float32, blk []byte, cpu bool) {
	amax := float32(0)
	for _, v := range xb {
		amax = max(amax, fabs(v))
	}
	d := amax / 127
	var id float32
	switch {
	case cpu && amax != 0:
		id = 127 / amax
	case !cpu && d != 0:
		id = 1 / d
	}
	wF16(blk, d)
	off := 2
	if t == tensor.Q8_1 {
		off = 4
	}
	sum := 0
	for e, v := range xb {
		var q int
		if cpu {
			q = rne(v * id)
		} else {
			q = roundf(v * id)
		}
		blk[off+e] = byte(int8(q))
		sum += q
	}
	if t == tensor.Q8_1 {
		wF16(blk[2:], float32(sum)*d)
	}
}

func iq4Nearest(v float32) int {
	best := 0
	for i := 1; i < 16; i++ {
		// move up while v is at least as close to level i as to i-1
		if float64(v)-float64(iq4Levels[i-1]) >= float64(iq4Levels[i])-float64(v) {
			best = i
		}
	}
	return best
}

func refIQ4NL(xb []float32, blk []byte) {
	m, amax := signedMax(xb)
	var L [32]int
	var d float32
	if amax >= 1e-15 {
		id := 1 / (m / -127)
		var sqx, sq2 float32
		for e, v := range xb {
			L[e] = iq4Nearest(float32(id * v))
			q := float32(iq4Levels[L[e]])
			w := float32(v * v)
			sqx += float32(float32(w*q) * v)
			sq2 += float32(float32(w*q) * q)
		}
		if sq2 > 0 {
			d = sqx / sq2
		}
	}
	wF16(blk, d)
	for e := range xb {
		setNib(blk[2:], legacyNibble(e), L[e])
	}
}

// affineFit is make_qkx2_quants without mad: levels 0..nmax for x with
// weights w; returns the levels, scale and min (≤ 0, as an offset).
func affineFit(x, w []float32, nmax int, rmin, rdelta float32, nstep int) ([]int, float32, float32) {
	lo, hi := x[0], x[0]
	for _, v := range x[1:] {
		lo = min(lo, v)
		hi = max(hi, v)
	}
	sw := float32(0)
	sx := float32(0)
	for i, v := range x {
		sw += w[i]
		sx += float32(w[i] * v)
	}
	lo = min(lo, 0)
	levels := func(is float32) []int {
		L := make([]int, len(x))
		for i, v := range x {
			L[i] = clampInt(rne(float32(is*float32(v-lo))), 0, nmax)
		}
		return L
	}
	errOf := func(L []int, s, m float32) float32 {
		e := float32(0)
		for i, v := range x {
			diff := float32(float32(s*float32(L[i]))+m) - v
			e += float32(w[i] * float32(diff*diff))
		}
		return e
	}
	if hi == lo {
		return make([]int, len(x)), 0, lo
	}
	is := float32(nmax) / (hi - lo)
	bestL, bestS, bestM := levels(is), 1/is, lo
	bestE := errOf(bestL, bestS, bestM)
	// Note: as in ggml, once a better fit is found its min replaces the
	// data minimum for the following trial scales (levels and the range
	// hi - lo are then measured from it).
	for step := 0; step <= nstep; step++ {
		is := (float32(rmin+float32(rdelta*float32(step))) + float32(nmax)) / (hi - lo)
		L := levels(is)
		var sl, sl2, sxl float32
		for i, v := range x {
			wl := float32(w[i] * float32(L[i]))
			sl += wl
			sl2 += float32(wl * float32(L[i]))
			sxl += float32(wl * v)
		}
		D := float32(sw*sl2) - float32(sl*sl)
		if !(D > 0) {
			continue
		}
		s := (float32(sw*sxl) - float32(sx*sl)) / D
		m := (float32(sl2*sx) - float32(sl*sxl)) / D
		if m > 0 {
			m, s = 0, sxl/sl2
		}
		if e := errOf(L, s, m); e < bestE {
			bestL, bestS, bestM, bestE = L, s, m, e
			lo = m
		}
	}
	return bestL, bestS, bestM
}

func refK45(t tensor.Type, xb []float32, blk []byte) {
	nmax, rmin, nstep := 15, float32(-1), 20
	if t == tensor.Q5_K {
		nmax, rmin, nstep = 31, -0.5, 15
	}
	var scales, mins [8]float32
	L := make([]int, 256)
	for j := 0; j < 8; j++ {
		x := xb[32*j : 32*j+32]
		s2 := float32(0)
		for _, v := range x {
			s2 += float32(v * v)
		}
		av := float32(math.Sqrt(float64(s2 / 32)))
		w := make([]float32, 32)
		for i, v := range x {
			w[i] = av + fabs(v)
		}
		lv, s, m := affineFit(x, w, nmax, rmin, 0.1, nstep)
		copy(L[32*j:], lv)
		scales[j], mins[j] = s, -m
	}
	maxS, maxM := float32(0), float32(0)
	for j := 0; j < 8; j++ {
		maxS = max(maxS, scales[j])
		maxM = max(maxM, mins[j])
	}
	var isc, imn float32
	if maxS > 0 {
		isc = 63 / maxS
	}
	if maxM > 0 {
		imn = 63 / maxM
	}
	var sc6, m6 [8]int
	for j := 0; j < 8; j++ {
		sc6[j] = min(63, int(uint8(rne(float32(isc*scales[j])))))
		m6[j] = min(63, int(uint8(rne(float32(imn*mins[j])))))
	}
	wF16(blk, maxS/63)
	wF16(blk[2:], maxM/63)
	k4PackScales(blk[4:16], sc6, m6)
	d, dmin := rF16(blk), rF16(blk[2:])
	for j := 0; j < 8; j++ {
		dd := d * float32(sc6[j])
		if dd == 0 {
			continue
		}
		dm := dmin * float32(m6[j])
		for i := 32 * j; i < 32*j+32; i++ {
			L[i] = clampInt(rne((xb[i]+dm)/dd), 0, nmax)
		}
	}
	for e, q := range L {
		if t == tensor.Q4_K {
			setNib(blk[16:], k4Nibble(e), q)
		} else {
			setNib(blk[48:], k4Nibble(e), q&15)
			blk[16+e%32] |= byte(q>>4) << (e / 32)
		}
	}
}

// symFit is make_qx_quants(rmse_type 1, no weights): levels -nmax..nmax-1.
func symFit(x []float32, nmax int) ([]int, float32) {
	m, amax := signedMax(x)
	if amax < 1e-15 {
		// ggml stores level code 0 (i.e. -nmax) for an all-zero group.
		L := make([]int, len(x))
		for i := range L {
			L[i] = -nmax
		}
		return L, 0
	}
	fit := func(is float32) ([]int, float32, float32) {
		L := make([]int, len(x))
		var slx, sl2 float32
		for i, v := range x {
			L[i] = clampInt(rne(float32(is*v)), -nmax, nmax-1)
			w := float32(v * v)
			slx += float32(float32(w*v) * float32(L[i]))
			sl2 += float32(float32(w*float32(L[i])) * float32(L[i]))
		}
		return L, slx, sl2
	}
	L, slx, sl2 := fit(float32(-nmax) / m)
	var s float32
	if sl2 != 0 {
		s = slx / sl2
	}
	best := float32(s * slx)
	for k := -9; k <= 9; k++ {
		if k == 0 {
			continue
		}
		L2, slx2, sl22 := fit(-(float32(nmax) + float32(0.1*float32(k))) / m)
		if sl22 > 0 && float32(slx2*slx2) > float32(best*sl22) {
			L, s = L2, slx2/sl22
			best = float32(s * slx2)
		}
	}
	return L, s
}

func refQ6K(xb []float32, blk []byte) {
	var scales [16]float32
	L := make([]int, 256) // signed levels -32..31
	var maxS, maxAbs float32
	for j := 0; j < 16; j++ {
		lv, s := symFit(xb[16*j:16*j+16], 32)
		copy(L[16*j:], lv)
		scales[j] = s
		if fabs(s) > maxAbs {
			maxAbs, maxS = fabs(s), s
		}
	}
	if maxAbs < 1e-15 {
		return // all zero
	}
	is := -128 / maxS
	wF16(blk[208:], 1/is)
	d := rF16(blk[208:])
	for j := 0; j < 16; j++ {
		sc := int8(min(127, rne(float32(is*scales[j]))))
		blk[192+j] = byte(sc)
		dd := d * float32(sc)
		if dd == 0 {
			continue
		}
		for i := 16 * j; i < 16*j+16; i++ {
			L[i] = clampInt(rne(xb[i]/dd), -32, 31)
		}
	}
	for e, l := range L {
		q := l + 32
		setNib(blk[0:128], q6Low(e), q&15)
		hb, hs := q6High(e)
		blk[128+hb] |= byte(q>>4) << hs
	}
}

func refQ8K(xb []float32, blk []byte) {
	m, amax := signedMax(xb)
	if amax == 0 {
		return
	}
	is := -127 / m
	for e, v := range xb {
		blk[4+e] = byte(int8(min(127, rne(float32(is*v)))))
	}
	for g := 0; g < 16; g++ {
		s := 0
		for e := 16 * g; e < 16*g+16; e++ {
			s += int(int8(blk[4+e]))
		}
		binary.LittleEndian.PutUint16(blk[4+256+2*g:], uint16(int16(s)))
	}
	binary.LittleEndian.PutUint32(blk, math.Float32bits(1/is))
}

// ---- reference dot products (the contract documented on VecDot) ----

// levels returns, for a quantized row, each element's integer level and
// the block structure needed by the dot contract.
func VecDot(t tensor.Type, n int, w, x []byte) float32 {
	switch t {
	case tensor.F32, tensor.F16, tensor.BF16:
		wf := Dequantize(t, w, n)
		xf := Dequantize(tensor.F32, x, n)
		s := 0.0
		for i := range wf {
			s += float64(wf[i] * xf[i])
		}
		return float32(s)
	}
	acc := float32(0)
	bs := t.BlockSize()
	wt, xt := t.TypeSize(), t.VecDotType().TypeSize()
	for ib := 0; ib < n/bs; ib++ {
		bw := w[ib*wt : (ib+1)*wt]
		bx := x[ib*xt : (ib+1)*xt]
		switch t {
		case tensor.Q8_0, tensor.Q4_0, tensor.Q5_0, tensor.IQ4_NL:
			isum := 0
			for e := 0; e < 32; e++ {
				isum += legacyLevel(t, bw, e) * int(int8(bx[2+e]))
			}
			dw, dx := rF16(bw), rF16(bx)
			switch t {
			case tensor.Q8_0:
				acc += float32(float32(isum) * float32(dw*dx))
			case tensor.Q4_0:
				acc += float32(float32(float32(isum)*dw) * dx)
			case tensor.Q5_0:
				acc += float32(float32(dw*dx) * float32(isum))
			default:
				acc += float32(float32(dx*dw) * float32(isum))
			}
		case tensor.MXFP4:
			isum := 0
			for e := 0; e < 32; e++ {
				isum += mxfp4Levels[getNib(bw[1:], legacyNibble(e))] * int(int8(bx[2+e]))
			}
			acc += float32(float32(rF16(bx)*e8m0Half(bw[0])) * float32(isum))
		case tensor.Q4_1, tensor.Q5_1:
			isum := 0
			for e := 0; e < 32; e++ {
				isum += legacyLevel(t, bw, e) * int(int8(bx[4+e]))
			}
			acc += float32(float32(float32(rF16(bw)*rF16(bx))*float32(isum)) + float32(rF16(bw[2:])*rF16(bx[2:])))
		case tensor.Q4_K, tensor.Q5_K:
			isum, imin := 0, 0
			for s := 0; s < 8; s++ {
				sc, m := k4ScaleMin(bw[4:16], s)
				part := 0
				for e := 32 * s; e < 32*s+32; e++ {
					var q int
					if t == tensor.Q4_K {
						q = getNib(bw[16:], k4Nibble(e))
					} else {
						q = getNib(bw[48:], k4Nibble(e)) + 16*int(bw[16+e%32]>>(e/32)&1)
					}
					part += q * int(int8(bx[4+e]))
				}
				isum += sc * part
				for g := 2 * s; g < 2*s+2; g++ {
					imin += m * int(int16(binary.LittleEndian.Uint16(bx[260+2*g:])))
				}
			}
			dx := math.Float32frombits(binary.LittleEndian.Uint32(bx))
			acc += float32(float32(rF16(bw)*dx) * float32(isum))
			acc -= float32(float32(rF16(bw[2:])*dx) * float32(imin))
		case tensor.Q6_K:
			isum := 0
			for s := 0; s < 16; s++ {
				part := 0
				for e := 16 * s; e < 16*s+16; e++ {
					hb, hs := q6High(e)
					q := getNib(bw[0:128], q6Low(e)) | int(bw[128+hb]>>hs&3)<<4
					part += (q - 32) * int(int8(bx[4+e]))
				}
				isum += int(int8(bw[192+s])) * part
			}
			dx := math.Float32frombits(binary.LittleEndian.Uint32(bx))
			acc += float32(float32(rF16(bw[208:])*dx) * float32(isum))
		default:
			panic("no reference dot for " + t.String())
		}
	}
	return acc
}

// legacyLevel is the signed integer level of element e of a 32-block
// (what multiplies d).
func legacyLevel(t tensor.Type, b []byte, e int) int {
	switch t {
	case tensor.Q8_0:
		return int(int8(b[2+e]))
	case tensor.Q4_0:
		return getNib(b[2:], legacyNibble(e)) - 8
	case tensor.Q4_1:
		return getNib(b[4:], legacyNibble(e))
	case tensor.Q5_0:
		return getNib(b[6:], legacyNibble(e)) + 16*int(binary.LittleEndian.Uint32(b[2:])>>e&1) - 16
	case tensor.Q5_1:
		return getNib(b[8:], legacyNibble(e)) + 16*int(binary.LittleEndian.Uint32(b[4:])>>e&1)
	case tensor.IQ4_NL:
		return iq4Levels[getNib(b[2:], legacyNibble(e))]
	}
	panic("not a 32-block type")
}

// F16At reads a little-endian f16 value as float32.
func F16At(b []byte) float32 { return rF16(b) }
