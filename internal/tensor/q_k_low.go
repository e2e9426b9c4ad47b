package tensor

// The 2- and 3-bit K-quants. Layouts (little-endian, d and dmin binary16):
//
//	Q2_K (84 B): scales[16], qs[64], d, dmin
//	   sixteen sub-blocks of 16, x = d·(sc&15)·q − dmin·(sc>>4), q 2 bits:
//	   per half of 128, qs[l] (l < 32) holds elements l, l+32, l+64, l+96 in
//	   bits 0-1, 2-3, 4-5, 6-7.
//	Q3_K (110 B): hmask[32], qs[64], scales[12], d
//	   sixteen sub-blocks of 16, x = d·(s−32)·(q−4), q 3 bits: the low two as
//	   Q2_K's, the high bit of element e in bit e/32 of hmask[e%32]; the
//	   6-bit scales s: low nibbles in scales[0:8] (sub-blocks 0-7 low
//	   nibble, 8-15 high nibble), top two bits of s_j in bits 2(j/4) of
//	   scales[8+j%4].

const (
	sizeQ2_K = 84
	sizeQ3_K = 110
)

var (
	formQ2_K = superForm{unpack: unpackQ2_K, mult: 1, mins: true, maxQ: 3}
	formQ3_K = superForm{unpack: unpackQ3_K, mult: 1, maxQ: 4}
)

// packLow2 packs 256 two-bit levels as Q2_K/Q3_K's qs.
func packLow2(qs []byte, L *[qkK]uint8) {
	for j := 0; j < qkK; j += 128 {
		for l := 0; l < 32; l++ {
			qs[j/4+l] = L[j+l] | L[j+l+32]<<2 | L[j+l+64]<<4 | L[j+l+96]<<6
		}
	}
}

// low2 returns the two-bit level of element e from qs.
func low2(qs []byte, e int) uint8 {
	return qs[e/128*32+e%32] >> (2 * (e % 128 / 32)) & 3
}

// quantizeQ2_K is quantize_row_q2_K_ref (what llama.cpp's quantizer writes
// without an importance matrix).
func quantizeQ2_K(x []float32, y []byte) {
	var (
		L            [qkK]uint8
		Laux         [16]uint8
		weights      [16]float32
		mins, scales [16]float32
	)
	for ib := 0; ib < len(x)/qkK; ib++ {
		xb := x[ib*qkK : ib*qkK+qkK]
		b := y[ib*sizeQ2_K : ib*sizeQ2_K+sizeQ2_K]
		var maxScale, maxMin float32
		for j := 0; j < 16; j++ {
			xs := xb[16*j : 16*j+16]
			for l, v := range xs {
				weights[l] = abs32(v)
			}
			scales[j], mins[j] = makeQKX2(3, xs, weights[:], L[16*j:16*j+16], Laux[:], -0.5, 0.1, 15, true)
			if scales[j] > maxScale {
				maxScale = scales[j]
			}
			if mins[j] > maxMin {
				maxMin = mins[j]
			}
		}
		sc := b[0:16]
		if maxScale > 0 {
			iscale := 15 / maxScale
			for j := 0; j < 16; j++ {
				sc[j] = uint8(nearestInt(float32(iscale * scales[j])))
			}
			putF16(b[80:], maxScale/15)
		} else {
			clear(sc)
			putF16(b[80:], 0)
		}
		if maxMin > 0 {
			iscale := 15 / maxMin
			for j := 0; j < 16; j++ {
				sc[j] |= uint8(nearestInt(float32(iscale*mins[j])) << 4)
			}
			putF16(b[82:], maxMin/15)
		} else {
			putF16(b[82:], 0)
		}
		d, dmin := f16(b[80:]), f16(b[82:])
		for j := 0; j < 16; j++ {
			dd := d * float32(sc[j]&0xf)
			if dd == 0 {
				continue
			}
			dm := dmin * float32(sc[j]>>4)
			for ii := 0; ii < 16; ii++ {
				l := nearestInt((xb[16*j+ii] + dm) / dd)
				L[16*j+ii] = uint8(max(0, min(3, l)))
			}
		}
		packLow2(b[16:80], &L)
	}
}

func dequantizeQ2_K(x []byte, y []float32) {
	for ib := 0; ib < len(y)/qkK; ib++ {
		b := x[ib*sizeQ2_K : ib*sizeQ2_K+sizeQ2_K]
		yb := y[ib*qkK : ib*qkK+qkK]
		d, dmin := f16(b[80:]), f16(b[82:])
		qs := b[16:80]
		for e := range yb {
			sc := b[e/16]
			dl, ml := d*float32(sc&0xf), dmin*float32(sc>>4)
			yb[e] = float32(dl*float32(low2(qs, e))) - ml
		}
	}
}

func unpackQ2_K(b []byte, u *SuperBlock) {
	u.D, u.DMin = f16(b[80:]), f16(b[82:])
	for k := 0; k < 16; k++ {
		u.Scale[k] = int32(b[k] & 0xf)
		u.Min[k] = int32(b[k] >> 4)
	}
	qs := b[16:80]
	for h := 0; h < 2; h++ {
		for l := 0; l < 32; l++ {
			v := qs[32*h+l]
			e := 128*h + l
			u.Q[e] = int8(v & 3)
			u.Q[e+32] = int8(v >> 2 & 3)
			u.Q[e+64] = int8(v >> 4 & 3)
			u.Q[e+96] = int8(v >> 6)
		}
	}
}

// makeQ3 is ggml's make_q3_quants with do_rmse = true: levels -nmax..nmax-1
// from the scale mapping the largest magnitude to -nmax, then up to five
// passes of single-level changes that raise (Σw·x·l)²/Σw·l² (w = x²). L
// gets level+nmax; it returns the scale.
func makeQ3(nmax int32, x []float32, L []int8) float32 {
	n := len(x)
	L = L[:n]
	max_, amax := absMax(x)
	if amax < groupMaxEps {
		clear(L)
		return 0
	}
	iscale := float32(-nmax) / max_
	var sumlx, suml2 float32
	for i, v := range x {
		l := nearestInt(float32(iscale * v))
		l = max(-nmax, min(nmax-1, l))
		L[i] = int8(l)
		w := float32(v * v)
		fl := float32(l)
		sumlx += float32(float32(w*v) * fl)
		suml2 += float32(float32(w*fl) * fl)
	}
	for itry := 0; itry < 5; itry++ {
		changed := 0
		for i, v := range x {
			w := float32(v * v)
			li := float32(L[i])
			slx := sumlx - float32(float32(w*v)*li)
			if slx > 0 {
				sl2 := suml2 - float32(float32(w*li)*li)
				newL := nearestInt(float32(v*sl2) / slx)
				newL = max(-nmax, min(nmax-1, newL))
				if newL != int32(L[i]) {
					fn := float32(newL)
					slx += float32(float32(w*v) * fn)
					sl2 += float32(float32(w*fn) * fn)
					if sl2 > 0 && float32(float32(slx*slx)*suml2) > float32(float32(sumlx*sumlx)*sl2) {
						L[i] = int8(newL)
						sumlx, suml2 = slx, sl2
						changed++
					}
				}
			}
		}
		if changed == 0 {
			break
		}
	}
	for i := range L {
		L[i] += int8(nmax)
	}
	if suml2 > 0 {
		return sumlx / suml2
	}
	return 0
}

// scaleQ3 returns the 6-bit scale j of a Q3_K block's scales[12].
func scaleQ3(sc []byte, j int) int32 {
	var lo uint8
	if j < 8 {
		lo = sc[j] & 0xf
	} else {
		lo = sc[j-8] >> 4
	}
	return int32(lo | (sc[8+j%4]>>(2*(j/4))&3)<<4)
}

// quantizeQ3_K is quantize_row_q3_K_ref (what llama.cpp's quantizer writes
// without an importance matrix).
func quantizeQ3_K(x []float32, y []byte) {
	var (
		L      [qkK]int8
		scales [16]float32
	)
	for ib := 0; ib < len(x)/qkK; ib++ {
		xb := x[ib*qkK : ib*qkK+qkK]
		b := y[ib*sizeQ3_K : ib*sizeQ3_K+sizeQ3_K]
		var maxScale, amax float32
		for j := 0; j < 16; j++ {
			scales[j] = makeQ3(4, xb[16*j:16*j+16], L[16*j:16*j+16])
			if s := abs32(scales[j]); s > amax {
				amax = s
				maxScale = scales[j]
			}
		}
		sc := b[96:108]
		clear(sc)
		if maxScale != 0 {
			iscale := -32 / maxScale
			for j := 0; j < 16; j++ {
				l := int32(int8(nearestInt(float32(iscale * scales[j]))))
				l = max(-32, min(31, l)) + 32
				if j < 8 {
					sc[j] = uint8(l & 0xf)
				} else {
					sc[j-8] |= uint8(l&0xf) << 4
				}
				sc[8+j%4] |= uint8(l>>4) << (2 * (j / 4))
			}
			putF16(b[108:], 1/iscale)
		} else {
			putF16(b[108:], 0)
		}
		d := f16(b[108:])
		for j := 0; j < 16; j++ {
			dd := d * float32(scaleQ3(sc, j)-32)
			if dd == 0 {
				continue
			}
			for ii := 0; ii < 16; ii++ {
				l := nearestInt(xb[16*j+ii] / dd)
				L[16*j+ii] = int8(max(-4, min(3, l)) + 4)
			}
		}
		hm := b[0:32]
		clear(hm)
		var U [qkK]uint8
		for j := 0; j < qkK; j++ {
			l := uint8(L[j])
			if l > 3 {
				hm[j%32] |= 1 << (j / 32)
				l -= 4
			}
			U[j] = l
		}
		packLow2(b[32:96], &U)
	}
}

func dequantizeQ3_K(x []byte, y []float32) {
	for ib := 0; ib < len(y)/qkK; ib++ {
		b := x[ib*sizeQ3_K : ib*sizeQ3_K+sizeQ3_K]
		yb := y[ib*qkK : ib*qkK+qkK]
		d := f16(b[108:])
		hm, qs, sc := b[0:32], b[32:96], b[96:108]
		for e := range yb {
			dl := d * float32(scaleQ3(sc, e/16)-32)
			q := int32(low2(qs, e))
			if hm[e%32]>>(e/32)&1 == 0 {
				q -= 4
			}
			yb[e] = dl * float32(q)
		}
	}
}

func unpackQ3_K(b []byte, u *SuperBlock) {
	u.D = f16(b[108:])
	hm, qs, sc := b[0:32], b[32:96], b[96:108]
	for k := 0; k < 16; k++ {
		u.Scale[k] = scaleQ3(sc, k) - 32
	}
	for h := 0; h < 2; h++ {
		for l := 0; l < 32; l++ {
			v, m := qs[32*h+l], hm[l]>>(4*h)
			e := 128*h + l
			u.Q[e] = int8(v&3) - 4 + int8(m&1)<<2
			u.Q[e+32] = int8(v>>2&3) - 4 + int8(m>>1&1)<<2
			u.Q[e+64] = int8(v>>4&3) - 4 + int8(m>>2&1)<<2
			u.Q[e+96] = int8(v>>6) - 4 + int8(m>>3&1)<<2
		}
	}
}
