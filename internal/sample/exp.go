package sample

import "math"

// exp returns e**x, bit-for-bit the same on every platform: it is the
// algorithm of Go's portable math.Exp (from FreeBSD's e_exp.c, error < 1
// ulp), with every product wrapped in an explicit float64 conversion so the
// compiler may not fuse it into an FMA (the Go spec allows fusion otherwise,
// and math.Exp itself is assembly on some platforms). Sampling depends on
// it, so that a seed gives the same tokens everywhere.
func exp(x float64) float64 {
	const (
		ln2Hi     = 6.93147180369123816490e-01
		ln2Lo     = 1.90821492927058770002e-10
		log2e     = 1.44269504088896338700e+00
		overflow  = 7.09782712893383973096e+02
		underflow = -7.45133219101941108420e+02
		nearZero  = 1.0 / (1 << 28)

		p1 = 1.66666666666666657415e-01
		p2 = -2.77777777770155933842e-03
		p3 = 6.61375632143793436117e-05
		p4 = -1.65339022054652515390e-06
		p5 = 4.13813679705723846039e-08
	)
	switch {
	case x != x || x > overflow:
		return x * math.Inf(1) // NaN stays NaN, overflow gives +Inf
	case x < underflow:
		return 0
	case -nearZero < x && x < nearZero:
		return 1 + x
	}
	var k int
	if x < 0 {
		k = int(float64(log2e*x) - 0.5)
	} else {
		k = int(float64(log2e*x) + 0.5)
	}
	hi := x - float64(float64(k)*ln2Hi)
	lo := float64(float64(k) * ln2Lo)
	r := hi - lo
	t := float64(r * r)
	q := float64(t * p5)
	q = float64(t * (p4 + q))
	q = float64(t * (p3 + q))
	q = float64(t * (p2 + q))
	q = float64(t * (p1 + q))
	c := r - q
	y := 1 - ((lo - float64(r*c)/(2-c)) - hi)
	if k >= -1021 {
		// y*2**k is a normal number: scaling by a power of two is exact
		// (and much cheaper than math.Ldexp).
		return float64(y * math.Float64frombits(uint64(k+1023)<<52))
	}
	return math.Ldexp(y, k)
}

// widen converts a float32 to float64 through its bits. It gives the same
// value as float64(v), but on amd64 the conversion instruction only writes
// part of its register, which chains every iteration of a loop of exps to
// the previous one's result and makes them several times slower.
func widen(v float32) float64 {
	b := math.Float32bits(v)
	e := b >> 23 & 0xff
	if e == 0 || e == 0xff { // zero, subnormal, Inf, NaN
		return float64(v)
	}
	return math.Float64frombits(uint64(b>>31)<<63 | uint64(e+1023-127)<<52 | uint64(b&0x7fffff)<<29)
}
