package kernels

import "math"

// The float32 exp shared (in algorithm and constants) by the generic path
// and the assembly (gen/main.go's expConsts must match):
//
//	t  = clamp(t, expLo, expHi)         (NaN passes through)
//	n  = roundToEven(t·log2e)
//	r  = (t − n·c1) − n·c2              (c1+c2 = ln 2; n·c1 is exact)
//	y  = 1 + r + r²·P(r)                (Cephes expf minimax, |r| ≤ ln2/2)
//	e  = y · 2^(n>>1) · 2^(n−(n>>1))    (two normal factors: correct
//	                                     subnormal rounding and overflow)
//
// The assembly fuses the multiply-adds (AVX-512 scales with VSCALEFPS,
// which is the same single rounding).
const (
	expHi    = 88.9   // exp(88.72...) overflows float32
	expLo    = -110.0 // exp(-103.98...) underflows to 0
	expLog2e = 1.44269504088896341
	expC1    = 0.693359375
	expC2    = -2.12194440e-4
	expP0    = 1.9875691500e-4
	expP1    = 1.3981999507e-3
	expP2    = 8.3334519073e-3
	expP3    = 4.1665795894e-2
	expP4    = 1.6666665459e-1
	expP5    = 5.0000001201e-1
)

func expf32(t float32) float32 {
	if t != t {
		return t
	}
	if t < expLo {
		t = expLo
	}
	if t > expHi {
		t = expHi
	}
	// Round to nearest even by adding and removing 1.5·2^23 (|t·log2e| < 2^22).
	n := float32(t*expLog2e) + 0x1.8p23 // float32() keeps the product rounded (no fusion)
	n -= 0x1.8p23
	r := t - n*expC1
	r -= n * expC2
	p := float32(expP0)
	p = p*r + expP1
	p = p*r + expP2
	p = p*r + expP3
	p = p*r + expP4
	p = p*r + expP5
	y := p*(r*r) + r
	y += 1
	ni := int32(n)
	n1 := ni >> 1
	n2 := ni - n1
	return y * math.Float32frombits(uint32(n1+127)<<23) * math.Float32frombits(uint32(n2+127)<<23)
}
