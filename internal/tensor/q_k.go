package tensor

import (
	"encoding/binary"
	"math"
)

// The K-quant formats: super-blocks of 256 elements. Layouts (little-endian,
// d and dmin binary16 unless noted):
//
//	Q4_K (144 B): d, dmin, scales[12], qs[128]
//	   eight sub-blocks of 32 with a 6-bit scale sc and 6-bit min m each,
//	   packed in scales[12] (get_scale_min_k4); x = d·sc·q - dmin·m, q 4 bits;
//	   qs[32k+l] holds element 64k+l in its low nibble, 64k+32+l in its high.
//	Q5_K (176 B): d, dmin, scales[12], qh[32], qs[128]
//	   as Q4_K with a fifth bit: bit 2k of qh[l] for element 64k+l, bit 2k+1
//	   for element 64k+32+l.
//	Q6_K (210 B): ql[128], qh[64], scales[16] int8, d
//	   sixteen sub-blocks of 16, x = d·scales[i]·(q-32), q 6 bits: per half
//	   of 128, ql[l] holds elements l (low) and l+64 (high nibble), ql[l+32]
//	   elements l+32 and l+96, qh[l] their top two bits in bits 0-1, 2-3,
//	   4-5, 6-7 (elements l, l+32, l+64, l+96).
//	Q8_K (292 B): d float32, qs[256] int8, bsums[16] int16 (sums of 16 qs)

const (
	qkK      = 256
	sizeQ4_K = 144
	sizeQ5_K = 176
	sizeQ6_K = 210
	sizeQ8_K = 292

	groupMaxEps = 1e-15
)

func sqrt32(v float32) float32 { return float32(math.Sqrt(float64(v))) }

// makeQKX2 is ggml's make_qkx2_quants: an affine (scale, min) fit of x to
// levels 0..nmax minimizing the weighted squared error (useMad: the
// weighted absolute error) over a small grid of trial scales. It fills L
// and returns the scale and the (positive) min.
func makeQKX2(nmax int32, x, w []float32, L, Laux []uint8, rmin, rdelta float32, nstep int, useMad bool) (scale, theMin float32) {
	n := len(x)
	w, L, Laux = w[:n], L[:n], Laux[:n] // bounds-check elimination
	min_ := x[0]
	max_ := x[0]
	sumW := w[0]
	sumX := float32(sumW * x[0])
	for i := 1; i < n; i++ {
		if x[i] < min_ {
			min_ = x[i]
		}
		if x[i] > max_ {
			max_ = x[i]
		}
		sumW += w[i]
		sumX += float32(w[i] * x[i])
	}
	if min_ > 0 {
		min_ = 0
	}
	if max_ == min_ {
		for i := range L[:n] {
			L[i] = 0
		}
		return 0, -min_
	}
	fmax := float32(nmax)
	iscale := fmax / (max_ - min_)
	scale = 1 / iscale
	var bestErr float32
	for i := 0; i < n; i++ {
		l := nearestInt(float32(iscale * float32(x[i]-min_)))
		l = max(0, min(nmax, l))
		L[i] = uint8(l)
		diff := float32(float32(scale*float32(l))+min_) - x[i]
		if useMad {
			diff = abs32(diff)
		} else {
			diff = diff * diff
		}
		bestErr += float32(w[i] * diff)
	}
	if nstep < 1 {
		return scale, -min_
	}
	for is := 0; is <= nstep; is++ {
		iscale = (float32(rmin+float32(rdelta*float32(is))) + fmax) / (max_ - min_)
		var sumL, sumL2, sumXL float32
		for i := 0; i < n; i++ {
			l := nearestInt(float32(iscale * float32(x[i]-min_)))
			l = max(0, min(nmax, l))
			Laux[i] = uint8(l)
			fl := float32(l)
			wl := float32(w[i] * fl)
			sumL += wl
			sumL2 += float32(wl * fl)
			sumXL += float32(wl * x[i])
		}
		D := float32(sumW*sumL2) - float32(sumL*sumL)
		if D > 0 {
			thisScale := (float32(sumW*sumXL) - float32(sumX*sumL)) / D
			thisMin := (float32(sumL2*sumX) - float32(sumL*sumXL)) / D
			if thisMin > 0 {
				thisMin = 0
				thisScale = sumXL / sumL2
			}
			var curErr float32
			for i := 0; i < n; i++ {
				diff := float32(float32(thisScale*float32(Laux[i]))+thisMin) - x[i]
				if useMad {
					diff = abs32(diff)
				} else {
					diff = diff * diff
				}
				curErr += float32(w[i] * diff)
			}
			if curErr < bestErr {
				copy(L[:n], Laux[:n])
				bestErr = curErr
				scale = thisScale
				min_ = thisMin
			}
		}
	}
	return scale, -min_
}

// makeQX is ggml's make_qx_quants with rmse_type = 1 and no importance
// weights (weights x²): a symmetric fit of x to levels -nmax..nmax-1 (stored
// as L = level+nmax), trying 18 scales around the one that maps the largest
// magnitude to -nmax. It returns the scale.
func makeQX(nmax int32, x []float32, L []int8) float32 {
	max_, amax := absMax(x)
	if amax < groupMaxEps {
		for i := range L[:len(x)] {
			L[i] = 0
		}
		return 0
	}
	fmax := float32(nmax)
	iscale := float32(-nmax) / max_
	var sumlx, suml2 float32
	for i, v := range x {
		l := nearestInt(float32(iscale * v))
		l = max(-nmax, min(nmax-1, l))
		L[i] = int8(l + nmax)
		w := float32(v * v)
		fl := float32(l)
		sumlx += float32(float32(w*v) * fl)
		suml2 += float32(float32(w*fl) * fl)
	}
	var scale float32
	if suml2 != 0 {
		scale = sumlx / suml2
	}
	best := float32(scale * sumlx)
	for is := -9; is <= 9; is++ {
		if is == 0 {
			continue
		}
		iscale = -(fmax + float32(0.1*float32(is))) / max_
		sumlx, suml2 = 0, 0
		for _, v := range x {
			l := nearestInt(float32(iscale * v))
			l = max(-nmax, min(nmax-1, l))
			w := float32(v * v)
			fl := float32(l)
			sumlx += float32(float32(w*v) * fl)
			suml2 += float32(float32(w*fl) * fl)
		}
		if suml2 > 0 && float32(sumlx*sumlx) > float32(best*suml2) {
			for i, v := range x {
				l := nearestInt(float32(iscale * v))
				L[i] = int8(nmax + max(-nmax, min(nmax-1, l)))
			}
			scale = sumlx / suml2
			best = float32(scale * sumlx)
		}
	}
	return scale
}

// scaleMinK4 is ggml's get_scale_min_k4: the 6-bit scale and min of
// sub-block j from the 12 packed bytes q.
func scaleMinK4(j int, q []byte) (sc, m uint8) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&0x0f | (q[j-4]>>6)<<4, q[j+4]>>4 | (q[j]>>6)<<4
}

// packScalesK4 packs eight 6-bit scales and mins as quantize_row_q4_K_ref.
func packScalesK4(s []byte, ls, lm *[8]uint8) {
	for j := 0; j < 8; j++ {
		if j < 4 {
			s[j] = ls[j]
			s[j+4] = lm[j]
		} else {
			s[j+4] = ls[j]&0x0f | (lm[j]&0x0f)<<4
			s[j-4] |= (ls[j] >> 4) << 6
			s[j] |= (lm[j] >> 4) << 6
		}
	}
}

// quantizeK45 is the body shared by quantize_row_q4_K_ref and
// quantize_row_q5_K_ref: it fills L (levels 0..nmax) and the block header
// (d, dmin, scales at hdr[0:16]).
func quantizeK45(xb []float32, hdr []byte, L *[qkK]uint8, nmax int32, rmin, rdelta float32, nstep int) {
	var (
		weights     [32]float32
		Laux        [32]uint8
		mins, scs   [8]float32
		maxScale    float32
		maxMin      float32
		ls, lm      [8]uint8
		invS, invMn float32
	)
	for j := 0; j < 8; j++ {
		xs := xb[32*j : 32*j+32]
		var sumX2 float32
		for _, v := range xs {
			sumX2 += float32(v * v)
		}
		avX := sqrt32(sumX2 / 32)
		for l, v := range xs {
			weights[l] = avX + abs32(v)
		}
		scs[j], mins[j] = makeQKX2(nmax, xs, weights[:], L[32*j:32*j+32], Laux[:], rmin, rdelta, nstep, false)
		if scs[j] > maxScale {
			maxScale = scs[j]
		}
		if mins[j] > maxMin {
			maxMin = mins[j]
		}
	}
	if maxScale > 0 {
		invS = 63 / maxScale
	}
	if maxMin > 0 {
		invMn = 63 / maxMin
	}
	for j := 0; j < 8; j++ {
		ls[j] = min(63, uint8(nearestInt(float32(invS*scs[j]))))
		lm[j] = min(63, uint8(nearestInt(float32(invMn*mins[j]))))
	}
	putF16(hdr[0:], maxScale/63)
	putF16(hdr[2:], maxMin/63)
	packScalesK4(hdr[4:16], &ls, &lm)
	d, dmin := f16(hdr[0:]), f16(hdr[2:])
	for j := 0; j < 8; j++ {
		sc, m := scaleMinK4(j, hdr[4:16])
		dd := d * float32(sc)
		if dd == 0 {
			continue
		}
		dm := dmin * float32(m)
		for ii := 0; ii < 32; ii++ {
			l := nearestInt((xb[32*j+ii] + dm) / dd)
			L[32*j+ii] = uint8(max(0, min(nmax, l)))
		}
	}
}

func quantizeQ4_K(x []float32, y []byte) {
	var L [qkK]uint8
	for ib := 0; ib < len(x)/qkK; ib++ {
		xb := x[ib*qkK : ib*qkK+qkK]
		b := y[ib*sizeQ4_K : ib*sizeQ4_K+sizeQ4_K]
		quantizeK45(xb, b, &L, 15, -1, 0.1, 20)
		q := b[16:]
		for j := 0; j < qkK; j += 64 {
			for l := 0; l < 32; l++ {
				q[l] = L[j+l] | L[j+l+32]<<4
			}
			q = q[32:]
		}
	}
}

func quantizeQ5_K(x []float32, y []byte) {
	var L [qkK]uint8
	for ib := 0; ib < len(x)/qkK; ib++ {
		xb := x[ib*qkK : ib*qkK+qkK]
		b := y[ib*sizeQ5_K : ib*sizeQ5_K+sizeQ5_K]
		quantizeK45(xb, b, &L, 31, -0.5, 0.1, 15)
		qh := b[16:48]
		ql := b[48:]
		clear(qh)
		m1, m2 := uint8(1), uint8(2)
		for n := 0; n < qkK; n += 64 {
			for j := 0; j < 32; j++ {
				l1 := L[n+j]
				if l1 > 15 {
					l1 -= 16
					qh[j] |= m1
				}
				l2 := L[n+j+32]
				if l2 > 15 {
					l2 -= 16
					qh[j] |= m2
				}
				ql[j] = l1 | l2<<4
			}
			m1 <<= 2
			m2 <<= 2
			ql = ql[32:]
		}
	}
}

func quantizeQ6_K(x []float32, y []byte) {
	var (
		L      [qkK]int8
		scales [16]float32
	)
	for ib := 0; ib < len(x)/qkK; ib++ {
		xb := x[ib*qkK : ib*qkK+qkK]
		b := y[ib*sizeQ6_K : ib*sizeQ6_K+sizeQ6_K]
		var maxScale, maxAbsScale float32
		for is := 0; is < 16; is++ {
			s := makeQX(32, xb[16*is:16*is+16], L[16*is:16*is+16])
			scales[is] = s
			if as := abs32(s); as > maxAbsScale {
				maxAbsScale = as
				maxScale = s
			}
		}
		if maxAbsScale < groupMaxEps {
			clear(b)
			continue
		}
		iscale := -128 / maxScale
		putF16(b[208:], 1/iscale)
		sc := b[192:208]
		for is := 0; is < 16; is++ {
			sc[is] = uint8(int8(min(127, nearestInt(float32(iscale*scales[is])))))
		}
		d := f16(b[208:])
		for j := 0; j < 16; j++ {
			dd := d * float32(int8(sc[j]))
			if dd == 0 {
				continue
			}
			for ii := 0; ii < 16; ii++ {
				l := nearestInt(xb[16*j+ii] / dd)
				L[16*j+ii] = int8(max(-32, min(31, l)) + 32)
			}
		}
		ql := b[0:128]
		qh := b[128:192]
		for j := 0; j < qkK; j += 128 {
			for l := 0; l < 32; l++ {
				q1 := uint8(L[j+l]) & 0xf
				q2 := uint8(L[j+l+32]) & 0xf
				q3 := uint8(L[j+l+64]) & 0xf
				q4 := uint8(L[j+l+96]) & 0xf
				ql[l] = q1 | q3<<4
				ql[l+32] = q2 | q4<<4
				qh[l] = uint8(L[j+l])>>4 | (uint8(L[j+l+32])>>4)<<2 | (uint8(L[j+l+64])>>4)<<4 | (uint8(L[j+l+96])>>4)<<6
			}
			ql = ql[64:]
			qh = qh[32:]
		}
	}
}

func quantizeQ8_K(x []float32, y []byte) {
	for ib := 0; ib < len(x)/qkK; ib++ {
		xb := x[ib*qkK : ib*qkK+qkK]
		b := y[ib*sizeQ8_K : ib*sizeQ8_K+sizeQ8_K]
		max_, amax := absMax(xb)
		if amax == 0 {
			// ggml leaves bsums untouched here; they are zeroed so that
			// the output is a function of the input.
			clear(b)
			continue
		}
		iscale := -127 / max_
		qs := b[4 : 4+qkK]
		for j, v := range xb {
			qs[j] = uint8(int8(min(127, nearestInt(float32(iscale*v)))))
		}
		for j := 0; j < 16; j++ {
			var sum int32
			for _, q := range qs[16*j : 16*j+16] {
				sum += int32(int8(q))
			}
			binary.LittleEndian.PutUint16(b[4+qkK+2*j:], uint16(int16(sum)))
		}
		binary.LittleEndian.PutUint32(b, math.Float32bits(1/iscale))
	}
}

func dequantizeQ4_K(x []byte, y []float32) {
	for ib := 0; ib < len(y)/qkK; ib++ {
		b := x[ib*sizeQ4_K : ib*sizeQ4_K+sizeQ4_K]
		yb := y[ib*qkK : ib*qkK+qkK]
		d, dmin := f16(b), f16(b[2:])
		sc := b[4:16]
		q := b[16:]
		for j, is := 0, 0; j < qkK; j, is = j+64, is+2 {
			s1, m1 := scaleMinK4(is, sc)
			s2, m2 := scaleMinK4(is+1, sc)
			d1, dm1 := d*float32(s1), dmin*float32(m1)
			d2, dm2 := d*float32(s2), dmin*float32(m2)
			for l := 0; l < 32; l++ {
				yb[j+l] = float32(d1*float32(q[l]&0xf)) - dm1
				yb[j+32+l] = float32(d2*float32(q[l]>>4)) - dm2
			}
			q = q[32:]
		}
	}
}

func dequantizeQ5_K(x []byte, y []float32) {
	for ib := 0; ib < len(y)/qkK; ib++ {
		b := x[ib*sizeQ5_K : ib*sizeQ5_K+sizeQ5_K]
		yb := y[ib*qkK : ib*qkK+qkK]
		d, dmin := f16(b), f16(b[2:])
		sc := b[4:16]
		qh := b[16:48]
		ql := b[48:]
		u1, u2 := uint8(1), uint8(2)
		for j, is := 0, 0; j < qkK; j, is = j+64, is+2 {
			s1, m1 := scaleMinK4(is, sc)
			s2, m2 := scaleMinK4(is+1, sc)
			d1, dm1 := d*float32(s1), dmin*float32(m1)
			d2, dm2 := d*float32(s2), dmin*float32(m2)
			for l := 0; l < 32; l++ {
				q1 := ql[l] & 0xf
				if qh[l]&u1 != 0 {
					q1 += 16
				}
				q2 := ql[l] >> 4
				if qh[l]&u2 != 0 {
					q2 += 16
				}
				yb[j+l] = float32(d1*float32(q1)) - dm1
				yb[j+32+l] = float32(d2*float32(q2)) - dm2
			}
			ql = ql[32:]
			u1 <<= 2
			u2 <<= 2
		}
	}
}

func dequantizeQ6_K(x []byte, y []float32) {
	for ib := 0; ib < len(y)/qkK; ib++ {
		b := x[ib*sizeQ6_K : ib*sizeQ6_K+sizeQ6_K]
		yb := y[ib*qkK : ib*qkK+qkK]
		d := f16(b[208:])
		ql := b[0:128]
		qh := b[128:192]
		sc := b[192:208]
		for n := 0; n < qkK; n += 128 {
			for l := 0; l < 32; l++ {
				is := l / 16
				q1 := int32(ql[l]&0xf|(qh[l]>>0&3)<<4) - 32
				q2 := int32(ql[l+32]&0xf|(qh[l]>>2&3)<<4) - 32
				q3 := int32(ql[l]>>4|(qh[l]>>4&3)<<4) - 32
				q4 := int32(ql[l+32]>>4|(qh[l]>>6&3)<<4) - 32
				yb[n+l] = float32(d*float32(int8(sc[is]))) * float32(q1)
				yb[n+l+32] = float32(d*float32(int8(sc[is+2]))) * float32(q2)
				yb[n+l+64] = float32(d*float32(int8(sc[is+4]))) * float32(q3)
				yb[n+l+96] = float32(d*float32(int8(sc[is+6]))) * float32(q4)
			}
			ql = ql[64:]
			qh = qh[32:]
			sc = sc[8:]
		}
	}
}

func dequantizeQ8_K(x []byte, y []float32) {
	for ib := 0; ib < len(y)/qkK; ib++ {
		b := x[ib*sizeQ8_K : ib*sizeQ8_K+sizeQ8_K]
		yb := y[ib*qkK : ib*qkK+qkK]
		d := math.Float32frombits(binary.LittleEndian.Uint32(b))
		for j := range yb {
			yb[j] = d * float32(int8(b[4+j]))
		}
	}
}
