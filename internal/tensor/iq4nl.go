package tensor

// IQ4_NL (18 B per 32 elements): d binary16, qs[16]; element j is
// d·kvaluesIQ4NL[qs[j]&15], element j+16 is d·kvaluesIQ4NL[qs[j]>>4].

const sizeIQ4NL = 18

// kvaluesIQ4NL is ggml's kvalues_iq4nl: the 16 non-linear levels.
var kvaluesIQ4NL = [16]int8{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}

// bestIndexIQ4NL is ggml's best_index_int8 for the IQ4_NL levels: the index
// of the level nearest x, ties going to the upper level, found by comparing
// 2x exactly with the sum of neighbouring levels.
func bestIndexIQ4NL(x float32) int {
	x2 := x + x
	idx := 0
	for step := 8; step > 0; step >>= 1 {
		j := idx + step
		if x2 >= float32(int32(kvaluesIQ4NL[j-1])+int32(kvaluesIQ4NL[j])) {
			idx = j
		}
	}
	return idx
}

// quantizeIQ4NL is quantize_row_iq4_nl_ref (ggml's CPU from_float for
// IQ4_NL): quantize_row_iq4_nl_impl with super-block = block = 32, no
// importance weights (weight = x²) and ntry = -1.
func quantizeIQ4NL(x []float32, y []byte) {
	var L [32]uint8
	for ib := 0; ib < len(x)/qk32; ib++ {
		xb := x[ib*qk32 : ib*qk32+qk32]
		b := y[ib*sizeIQ4NL : ib*sizeIQ4NL+sizeIQ4NL]
		max_, amax := absMax(xb)
		var d float32
		if amax < groupMaxEps {
			clear(L[:])
		} else {
			d = max_ / float32(kvaluesIQ4NL[0])
			id := 1 / d
			var sumqx, sumq2 float32
			for j, v := range xb {
				l := bestIndexIQ4NL(float32(id * v))
				L[j] = uint8(l)
				q := float32(kvaluesIQ4NL[l])
				w := float32(v * v)
				wq := float32(w * q)
				sumqx += float32(wq * v)
				sumq2 += float32(wq * q)
			}
			d = 0
			if sumq2 > 0 {
				d = sumqx / sumq2
			}
		}
		putF16(b, d)
		for j := 0; j < 16; j++ {
			b[2+j] = L[j] | L[16+j]<<4
		}
	}
}

func dequantizeIQ4NL(x []byte, y []float32) {
	for ib := 0; ib < len(y)/qk32; ib++ {
		b := x[ib*sizeIQ4NL : ib*sizeIQ4NL+sizeIQ4NL]
		yb := y[ib*qk32 : ib*qk32+qk32]
		d := f16(b)
		for j := 0; j < 16; j++ {
			q := b[2+j]
			yb[j] = d * float32(kvaluesIQ4NL[q&0xf])
			yb[j+16] = d * float32(kvaluesIQ4NL[q>>4])
		}
	}
}
