package tensor

// IQ4_XS (136 B per 256 elements): d binary16, scales_h uint16,
// scales_l[4], qs[128]. Eight sub-blocks of 32 with a 6-bit scale ls (low
// nibble: scales_l[ib/2] >> 4(ib%2); top two bits: scales_h >> 2ib), and
// x = d·(ls−32)·kvaluesIQ4NL[q]; sub-block ib's qs[16ib+j] holds element
// 32ib+j in its low nibble and 32ib+16+j in its high one (IQ4_NL's block).

const sizeIQ4_XS = 136

var formIQ4_XS = superForm{unpack: unpackIQ4_XS, mult: 1, maxQ: 127}

// iq4Impl is ggml's quantize_row_iq4_nl_impl without importance weights
// (weights x²) and ntry = 7: each 32-element block gets the best of 15
// trial scales by weighted least squares; with more than one block (IQ4_XS)
// the block scales are then quantized to 6 bits against the super-block
// scale and the levels chosen again. It writes d (as binary16), the levels
// packed into q4 and, for IQ4_XS, the scales into sh/sl.
func iq4Impl(x []float32, dh, q4 []byte, sh, sl []byte) {
	const ntry = 7
	var (
		L      [qkK]uint8
		scales [8]float32
	)
	nblk := len(x) / 32
	clear(q4[:len(x)/2])
	putF16(dh, 0)
	var maxScale, amaxScale float32
	for ib := 0; ib < nblk; ib++ {
		xb := x[32*ib : 32*ib+32]
		max_, amax := absMax(xb)
		if amax < groupMaxEps {
			scales[ib] = 0
			continue
		}
		d := -max_ / float32(kvaluesIQ4NL[0])
		id := 1 / d
		var sumqx, sumq2 float32
		for j, v := range xb {
			l := bestIndexIQ4NL(float32(id * v))
			L[32*ib+j] = uint8(l)
			q := float32(kvaluesIQ4NL[l])
			w := float32(v * v)
			sumqx += float32(float32(w*q) * v)
			sumq2 += float32(float32(w*q) * q)
		}
		d = sumqx / sumq2
		best := d * sumqx
		for itry := -ntry; itry <= ntry; itry++ {
			id = float32(itry+int(kvaluesIQ4NL[0])) / max_
			sumqx, sumq2 = 0, 0
			for _, v := range xb {
				l := bestIndexIQ4NL(float32(id * v))
				q := float32(kvaluesIQ4NL[l])
				w := float32(v * v)
				sumqx += float32(float32(w*q) * v)
				sumq2 += float32(float32(w*q) * q)
			}
			if sumq2 > 0 && float32(sumqx*sumqx) > float32(best*sumq2) {
				d = sumqx / sumq2
				best = d * sumqx
			}
		}
		scales[ib] = d
		if ad := abs32(d); ad > amaxScale {
			amaxScale = ad
			maxScale = d
		}
	}
	if nblk > 1 {
		clear(sh[:2])
		d := -maxScale / 32
		putF16(dh, d)
		var id float32
		if d != 0 {
			id = 1 / d
		}
		for ib := 0; ib < nblk; ib++ {
			l := nearestInt(float32(id * scales[ib]))
			l = max(-32, min(31, l))
			dl := d * float32(l)
			var idl float32
			if dl != 0 {
				idl = 1 / dl
			}
			xb := x[32*ib : 32*ib+32]
			for j, v := range xb {
				L[32*ib+j] = uint8(bestIndexIQ4NL(float32(idl * v)))
			}
			l += 32
			lo, hi := uint8(l&0xf), uint8(l>>4)
			if ib%2 == 0 {
				sl[ib/2] = lo
			} else {
				sl[ib/2] |= lo << 4
			}
			h := uint16(sh[0]) | uint16(sh[1])<<8
			h |= uint16(hi) << (2 * (ib % 8))
			sh[0], sh[1] = byte(h), byte(h>>8)
		}
	} else {
		putF16(dh, scales[0])
		var id float32
		if scales[0] != 0 {
			id = 1 / scales[0]
		}
		for j, v := range x[:32] {
			L[j] = uint8(bestIndexIQ4NL(float32(id * v)))
		}
	}
	for i := 0; i < nblk; i++ {
		for j := 0; j < 16; j++ {
			q4[16*i+j] = L[32*i+j] | L[32*i+16+j]<<4
		}
	}
}

// quantizeIQ4_XS is quantize_iq4_xs without an importance matrix (what
// llama.cpp's quantizer writes, and quantize_row_iq4_xs_ref).
func quantizeIQ4_XS(x []float32, y []byte) {
	for ib := 0; ib < len(x)/qkK; ib++ {
		b := y[ib*sizeIQ4_XS : ib*sizeIQ4_XS+sizeIQ4_XS]
		iq4Impl(x[ib*qkK:ib*qkK+qkK], b[0:2], b[8:136], b[2:4], b[4:8])
	}
}

// QuantizeIQ4_NLModel quantizes src into IQ4_NL as llama.cpp's model
// quantizer does (quantize_iq4_nl without an importance matrix: ntry = 7
// and a final choice of levels), which differs from QuantizeRow's IQ4_NL
// (the CPU backend's quantize_row_iq4_nl_ref). dst holds
// IQ4_NL.RowSize(len(src)) bytes.
func QuantizeIQ4_NLModel(src []float32, dst []byte) error {
	if err := checkBuffers(IQ4_NL, len(src), len(dst)); err != nil {
		return err
	}
	for ib := 0; ib < len(src)/qk32; ib++ {
		b := dst[ib*sizeIQ4NL : ib*sizeIQ4NL+sizeIQ4NL]
		iq4Impl(src[ib*qk32:ib*qk32+qk32], b[0:2], b[2:18], nil, nil)
	}
	return nil
}

func iq4xsScale(b []byte, ib int) int32 {
	h := uint16(b[2]) | uint16(b[3])<<8
	return int32(b[4+ib/2]>>(4*(ib%2))&0xf | uint8(h>>(2*ib)&3)<<4)
}

func dequantizeIQ4_XS(x []byte, y []float32) {
	for ib := 0; ib < len(y)/qkK; ib++ {
		b := x[ib*sizeIQ4_XS : ib*sizeIQ4_XS+sizeIQ4_XS]
		yb := y[ib*qkK : ib*qkK+qkK]
		d := f16(b)
		for s := 0; s < 8; s++ {
			dl := d * float32(iq4xsScale(b, s)-32)
			qs := b[8+16*s : 8+16*s+16]
			for j := 0; j < 16; j++ {
				yb[32*s+j] = dl * float32(kvaluesIQ4NL[qs[j]&0xf])
				yb[32*s+16+j] = dl * float32(kvaluesIQ4NL[qs[j]>>4])
			}
		}
	}
}

func unpackIQ4_XS(b []byte, u *SuperBlock) {
	u.D = f16(b)
	for s := 0; s < 8; s++ {
		ls := iq4xsScale(b, s) - 32
		u.Scale[2*s], u.Scale[2*s+1] = ls, ls
		qs := b[8+16*s : 8+16*s+16]
		for j := 0; j < 16; j++ {
			u.Q[32*s+j] = kvaluesIQ4NL[qs[j]&0xf]
			u.Q[32*s+16+j] = kvaluesIQ4NL[qs[j]>>4]
		}
	}
}
