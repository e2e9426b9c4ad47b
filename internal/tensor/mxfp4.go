package tensor

import "math"

// MXFP4 (17 B per 32 elements, the OCP microscaling format gpt-oss ships
// its experts in): e, an E8M0 scale (a power of two, 2^(e-127)), then
// qs[16]; element j is s·kvaluesMXFP4[qs[j]&15], element j+16 is
// s·kvaluesMXFP4[qs[j]>>4], with the E2M1 levels stored doubled as
// integers (so s is half the E8M0 value, as ggml's
// GGML_E8M0_TO_FP32_HALF).

const sizeMXFP4 = 17

// kvaluesMXFP4 is ggml's kvalues_mxfp4: the E2M1 values, doubled.
var kvaluesMXFP4 = [16]int8{0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12}

// E8M0Half is ggml's ggml_e8m0_to_fp32_half: 2^(e-128) as float32 (the
// two smallest exponents as denormals).
func E8M0Half(e uint8) float32 {
	if e < 2 {
		return math.Float32frombits(0x00200000 << e)
	}
	return math.Float32frombits(uint32(e-1) << 23)
}

// KValuesMXFP4 returns the 16 MXFP4 levels (doubled E2M1 values).
func KValuesMXFP4() [16]int8 { return kvaluesMXFP4 }

// bestIndexMXFP4 is ggml's best_index_mxfp4: the first level nearest x/e.
func bestIndexMXFP4(x, e float32) uint8 {
	best := 0
	bestErr := absf(float32(float32(kvaluesMXFP4[0])*e) - x)
	for i := 1; i < 16; i++ {
		err := absf(float32(float32(kvaluesMXFP4[i])*e) - x)
		if err < bestErr {
			best, bestErr = i, err
		}
	}
	return uint8(best)
}

func absf(x float32) float32 { return math.Float32frombits(math.Float32bits(x) &^ (1 << 31)) }

// quantizeMXFP4 is ggml's quantize_row_mxfp4_ref.
func quantizeMXFP4(x []float32, y []byte) {
	for ib := 0; ib < len(x)/qk32; ib++ {
		xb := x[ib*qk32 : ib*qk32+qk32]
		b := y[ib*sizeMXFP4 : ib*sizeMXFP4+sizeMXFP4]
		var amax float32
		for _, v := range xb {
			if a := absf(v); amax < a {
				amax = a
			}
		}
		var e uint8
		if amax > 0 {
			l := float32(math.Log2(float64(amax)))
			e = uint8(int32(math.Floor(float64(l))) - 2 + 127)
		}
		d := E8M0Half(e)
		b[0] = e
		for j := 0; j < 16; j++ {
			b[1+j] = bestIndexMXFP4(xb[j], d) | bestIndexMXFP4(xb[16+j], d)<<4
		}
	}
}

func dequantizeMXFP4(x []byte, y []float32) {
	for ib := 0; ib < len(y)/qk32; ib++ {
		b := x[ib*sizeMXFP4 : ib*sizeMXFP4+sizeMXFP4]
		yb := y[ib*qk32 : ib*qk32+qk32]
		d := E8M0Half(b[0])
		for j := 0; j < 16; j++ {
			q := b[1+j]
			yb[j] = float32(float32(kvaluesMXFP4[q&0xf]) * d)
			yb[j+16] = float32(float32(kvaluesMXFP4[q>>4]) * d)
		}
	}
}

// vecDotMXFP4 is ggml_vec_dot_mxfp4_q8_0_generic.
func vecDotMXFP4(n int, w, x []byte) float32 {
	var acc float32
	for ib := 0; ib < n/qk32; ib++ {
		bw := w[ib*sizeMXFP4 : ib*sizeMXFP4+sizeMXFP4]
		bx := x[ib*sizeQ8_0 : ib*sizeQ8_0+sizeQ8_0]
		qw, qx := bw[1:17], bx[2:34]
		var s0, s1 int32
		for j, q := range qw {
			s0 += int32(int8(qx[j])) * int32(kvaluesMXFP4[q&0xf])
			s1 += int32(int8(qx[j+16])) * int32(kvaluesMXFP4[q>>4])
		}
		d := float32(f16(bx) * E8M0Half(bw[0]))
		acc += float32(d * float32(s0+s1))
	}
	return acc
}
