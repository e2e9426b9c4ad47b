package tensor

import "math"

// f16Table maps every IEEE binary16 bit pattern to its float32 value.
var f16Table = func() *[1 << 16]float32 {
	var t [1 << 16]float32
	for i := range t {
		t[i] = f16ToF32Slow(uint16(i))
	}
	return &t
}()

// F16ToF32 converts an IEEE binary16 value to float32 (exact).
func F16ToF32(h uint16) float32 { return f16Table[h] }

func f16ToF32Slow(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // inf / nan
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
	case mant == 0:
		return math.Float32frombits(sign)
	default: // subnormal: mant * 2^-24
		v := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	}
}

// F32ToF16 converts float32 to IEEE binary16 with round-to-nearest-even, as
// ggml's GGML_FP32_TO_FP16 (and the F16C instruction) does. Values too large
// become infinity; NaN stays NaN.
func F32ToF16(f float32) uint16 {
	x := math.Float32bits(f)
	// Fast path, branch-free rounding: results that are normal, finite
	// halves (|f| in [2^-14, 65520)). Rebias the exponent (127 → 15) and
	// round the 13 dropped bits to nearest even; a carry into the exponent
	// is correct. Checked equal to the general path for all 2^32 inputs.
	if a := x & 0x7fffffff; a-0x38800000 < 0x477ff000-0x38800000 {
		v := a - 112<<23
		v += 0xfff + (v>>13)&1
		return uint16(x>>16)&0x8000 | uint16(v>>13)
	}
	return f32ToF16Slow(x)
}

func f32ToF16Slow(x uint32) uint16 {
	sign := uint16(x>>16) & 0x8000
	exp := int32(x>>23) & 0xff
	mant := x & 0x7fffff
	if exp == 0xff { // inf or nan
		if mant != 0 {
			return sign | 0x7e00 | uint16(mant>>13)
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			return sign // underflows to zero
		}
		// subnormal half: shift the mantissa (with its implicit bit) right.
		m := mant | 0x800000
		shift := uint32(14 - e)
		half := m >> shift
		rem := m & (1<<shift - 1)
		mid := uint32(1) << (shift - 1)
		if rem > mid || (rem == mid && half&1 == 1) {
			half++
		}
		return sign | uint16(half)
	}
	half := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && half&1 == 1) {
		half++ // may carry into the exponent, which is correct (up to inf)
	}
	return sign | uint16(half)
}

// BF16ToF32 converts a bfloat16 value to float32 (exact).
func BF16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// F32ToBF16 converts float32 to bfloat16 as ggml_compute_fp32_to_bf16 does:
// round-to-nearest-even, NaN forced quiet.
func F32ToBF16(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 {
		return uint16(u>>16) | 64
	}
	return uint16((u + (0x7fff + (u>>16)&1)) >> 16)
}

// RoundF16 returns f rounded to the nearest binary16 value, as float32.
func RoundF16(f float32) float32 { return F16ToF32(F32ToF16(f)) }
