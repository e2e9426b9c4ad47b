package kernels

import (
	"fmt"
	"math"
	"math/bits"
)

// FWHT applies the normalized fast Walsh–Hadamard transform in place to
// every consecutive row of n elements of x: the Hadamard-rotation of
// quantized KV-cache rows (the normalized transform is its own inverse).
// n must be a power of two (1, 2, 4, ...) and len(x) a multiple of n;
// otherwise FWHT panics.
//
// Every path is bit-identical (NaN payloads aside) to the reference loop
//
//	for h := 1; h < n; h *= 2 {
//		for i := 0; i < n; i += 2 * h {
//			for j := i; j < i+h; j++ {
//				a, b := x[j], x[j+h]
//				x[j], x[j+h] = a+b, a-b
//			}
//		}
//	}
//	s := float32(1 / math.Sqrt(float64(n)))
//	for i := range x {
//		x[i] *= s
//	}
//
// because each value it produces is the same single IEEE operation on the
// same two operands: a+b and a-b of the same pairs, stage by stage (h = 1,
// 2, 4, ... in that order; pairs of one stage are independent, so their
// order does not matter), then x·s. The assembly keeps a row of up to 256
// (AVX-512, n = 16..1024) or 64 (AVX2, n = 8..256) elements in vector
// registers: stages within a vector take fma(x, ±1, swapped) — exactly
// a+b or a-b — with the swapped copy from a permute (h = 1: from
// duplicating loads), and stages across vectors add and subtract whole
// vectors; longer rows finish with the stages across blocks column by
// column. The generic path (other lengths and CPUs) runs the same
// butterflies two or three stages per pass over the row.
func FWHT(x []float32, n int) {
	if n < 1 || n&(n-1) != 0 {
		panic(fmt.Sprintf("kernels.FWHT: row length n=%d is not a power of two (1, 2, 4, ...)", n))
	}
	if len(x)%n != 0 {
		panic(fmt.Sprintf("kernels.FWHT: len(x)=%d is not a multiple of the row length n=%d", len(x), n))
	}
	if len(x) == 0 {
		return
	}
	fwht(x, n, float32(1/math.Sqrt(float64(n))))
}

// fwhtGeneric transforms the rows of n elements of x and scales them by s.
func fwhtGeneric(x []float32, n int, s float32) {
	switch n {
	case 1:
		scaleGeneric(s, x)
		return
	case 2:
		for len(x) >= 2 {
			p := (*[2]float32)(x)
			a, b := p[0], p[1]
			p[0], p[1] = (a+b)*s, (a-b)*s
			x = x[2:]
		}
		return
	case 4:
		fwhtPass4(x, 1, s, true)
		return
	}
	// n ≥ 8, one row at a time (it stays in L1 across the passes): stages
	// 1, 2, 4 on consecutive groups of 8, then the remaining k stages
	// h = 8, 16, ... in passes of three or two (one when only one is
	// left), the last pass scaling.
	k := bits.TrailingZeros(uint(n)) - 3
	for len(x) >= n {
		row := x[:n:n]
		x = x[n:]
		fwhtPass8(row, 1, s, k == 0)
		for h, left := 8, k; left > 0; {
			switch left {
			case 1:
				fwhtPass2(row, h, s)
				left = 0
			case 2:
				fwhtPass4(row, h, s, true)
				left = 0
			case 4:
				fwhtPass4(row, h, s, false)
				h, left = h*4, 2
			default: // 3, or ≥ 5
				fwhtPass8(row, h, s, left == 3)
				h, left = h*8, left-3
			}
		}
	}
}

// bf4 is two stages on four values: (x0, x1), (x2, x3), then (x0, x2),
// (x1, x3); each pair (a, b) becomes (a+b, a-b).
func bf4(x0, x1, x2, x3 float32) (float32, float32, float32, float32) {
	x0, x1 = x0+x1, x0-x1
	x2, x3 = x2+x3, x2-x3
	return x0 + x2, x1 + x3, x0 - x2, x1 - x3
}

// fwhtPass8 runs stages h, 2h, 4h on row (a multiple of 8h long), scaling
// the results by s if scaled.
func fwhtPass8(row []float32, h int, s float32, scaled bool) {
	if h == 1 {
		for len(row) >= 8 {
			p := (*[8]float32)(row)
			x0, x1, x2, x3 := bf4(p[0], p[1], p[2], p[3])
			x4, x5, x6, x7 := bf4(p[4], p[5], p[6], p[7])
			x0, x4 = x0+x4, x0-x4
			x1, x5 = x1+x5, x1-x5
			x2, x6 = x2+x6, x2-x6
			x3, x7 = x3+x7, x3-x7
			if scaled {
				x0, x1, x2, x3, x4, x5, x6, x7 = x0*s, x1*s, x2*s, x3*s, x4*s, x5*s, x6*s, x7*s
			}
			p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7] = x0, x1, x2, x3, x4, x5, x6, x7
			row = row[8:]
		}
		return
	}
	for len(row) >= 8*h {
		r0 := row[:h]
		r1 := row[h : 2*h][:len(r0)]
		r2 := row[2*h : 3*h][:len(r0)]
		r3 := row[3*h : 4*h][:len(r0)]
		r4 := row[4*h : 5*h][:len(r0)]
		r5 := row[5*h : 6*h][:len(r0)]
		r6 := row[6*h : 7*h][:len(r0)]
		r7 := row[7*h : 8*h][:len(r0)]
		row = row[8*h:]
		if scaled {
			for j := range r0 {
				x0, x1, x2, x3 := bf4(r0[j], r1[j], r2[j], r3[j])
				x4, x5, x6, x7 := bf4(r4[j], r5[j], r6[j], r7[j])
				r0[j], r4[j] = (x0+x4)*s, (x0-x4)*s
				r1[j], r5[j] = (x1+x5)*s, (x1-x5)*s
				r2[j], r6[j] = (x2+x6)*s, (x2-x6)*s
				r3[j], r7[j] = (x3+x7)*s, (x3-x7)*s
			}
			continue
		}
		for j := range r0 {
			x0, x1, x2, x3 := bf4(r0[j], r1[j], r2[j], r3[j])
			x4, x5, x6, x7 := bf4(r4[j], r5[j], r6[j], r7[j])
			r0[j], r4[j] = x0+x4, x0-x4
			r1[j], r5[j] = x1+x5, x1-x5
			r2[j], r6[j] = x2+x6, x2-x6
			r3[j], r7[j] = x3+x7, x3-x7
		}
	}
}

// fwhtPass4 runs stages h, 2h on row (a multiple of 4h long), scaling the
// results by s if scaled.
func fwhtPass4(row []float32, h int, s float32, scaled bool) {
	for len(row) >= 4*h {
		r0 := row[:h]
		r1 := row[h : 2*h][:len(r0)]
		r2 := row[2*h : 3*h][:len(r0)]
		r3 := row[3*h : 4*h][:len(r0)]
		row = row[4*h:]
		if scaled {
			for j := range r0 {
				x0, x1, x2, x3 := bf4(r0[j], r1[j], r2[j], r3[j])
				r0[j], r1[j], r2[j], r3[j] = x0*s, x1*s, x2*s, x3*s
			}
			continue
		}
		for j := range r0 {
			r0[j], r1[j], r2[j], r3[j] = bf4(r0[j], r1[j], r2[j], r3[j])
		}
	}
}

// fwhtPass2 runs stage h on row (a multiple of 2h long) and scales by s.
func fwhtPass2(row []float32, h int, s float32) {
	for len(row) >= 2*h {
		r0 := row[:h]
		r1 := row[h : 2*h][:len(r0)]
		row = row[2*h:]
		for j := range r0 {
			a, b := r0[j], r1[j]
			r0[j], r1[j] = (a+b)*s, (a-b)*s
		}
	}
}
