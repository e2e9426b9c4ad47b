package tensor

import (
	"encoding/binary"
	"fmt"
	"math"
)

// VecDot returns the dot product of one row of n elements of type t (w,
// t.RowSize(n) bytes) with one row of activations already converted to
// t.VecDotType() (x, t.VecDotType().RowSize(n) bytes). It panics on bad
// sizes or an unsupported t (see HasVecDot); VecDotChecked returns an error
// instead.
//
// This is the plain-Go reference that SIMD kernels are tested against. Its
// arithmetic is specified exactly. Integer sums are exact int32 (they cannot
// overflow); each float32 operation listed below is rounded to float32 on
// its own (no fused multiply-add), in the order written; "acc" starts at 0
// and is updated once per block, blocks in increasing order. Names: for
// weight block b, dw is its scale (and mw its min, dminw its K-quant min
// scale); for the activation block, dx its scale and sx its s field; all
// binary16 fields are first converted to float32 exactly.
//
//	Q8_0·Q8_0:   isum = Σ_{j<32} w_j·x_j
//	             acc = acc + float32(isum)·(dw·dx)
//	Q4_0·Q8_0:   isum = Σ_{j<32} (q_j-8)·x_j
//	             acc = acc + (float32(isum)·dw)·dx
//	Q5_0·Q8_0:   isum = Σ_{j<32} (q_j-16)·x_j
//	             acc = acc + (dw·dx)·float32(isum)
//	IQ4_NL·Q8_0: isum = Σ_{j<32} kvalues[q_j]·x_j
//	             acc = acc + (dx·dw)·float32(isum)
//	Q4_1·Q8_1,   isum = Σ_{j<32} q_j·x_j        (q_j unsigned, 0..15 / 0..31)
//	Q5_1·Q8_1:   acc = acc + ((dw·dx)·float32(isum) + mw·sx)
//	Q4_K·Q8_K,   per super-block of 256, with the 8 sub-blocks' 6-bit scales
//	Q5_K·Q8_K:   sc_k and mins m_k and the activation's 16 bsums:
//	             isum = Σ_{k<8} sc_k · Σ_{j<32} q_{32k+j}·x_{32k+j}
//	             imin = Σ_{i<16} bsums_i · m_{i/2}
//	             d = dw·dx; dmin = dminw·dx     (dx is Q8_K's float32 d)
//	             acc = acc + d·float32(isum)
//	             acc = acc - dmin·float32(imin)
//	Q6_K·Q8_K:   isum = Σ_{k<16} sc_k · Σ_{j<16} (q_{16k+j}-32)·x_{16k+j}   (sc_k int8)
//	             acc = acc + (dw·dx)·float32(isum)
//	F32·F32,     s = Σ_i float64(float32(w_i·x_i)), summed in float64 in index
//	F16·F32,     order (w_i converted exactly to float32 first), and the
//	BF16·F32:    result is float32(s).
//
// For the 32-element types this is exactly ggml's ggml_vec_dot_*_generic
// (scalar) code, so it matches ggml's scalar build bit for bit. For the
// K-quants ggml's scalar code spreads each super-block's integer sums over
// eight float lanes and subtracts the mins separately; the integer sums are
// the same and the result differs from this order only by float rounding.
// SIMD kernels are expected to reproduce the integer sums exactly and to
// agree with this within float32 rounding of the accumulation.
func VecDot(t Type, n int, w, x []byte) float32 {
	if err := checkVecDot(t, n, w, x); err != nil {
		panic(err)
	}
	return vecDot(t, n, w, x)
}

// VecDotChecked is VecDot returning an error instead of panicking.
func VecDotChecked(t Type, n int, w, x []byte) (float32, error) {
	if err := checkVecDot(t, n, w, x); err != nil {
		return 0, err
	}
	return vecDot(t, n, w, x), nil
}

func checkVecDot(t Type, n int, w, x []byte) error {
	if !HasVecDot(t) {
		return fmt.Errorf("tensor: no dot product for weights of type %s", t)
	}
	if err := checkBuffersFor(t, n, len(w), false); err != nil {
		return err
	}
	vt := t.VecDotType()
	if want := vt.RowSize(n); len(x) != want {
		return fmt.Errorf("tensor: %d activations of %s (for %s weights) take %d bytes, buffer has %d", n, vt, t, want, len(x))
	}
	return nil
}

func vecDot(t Type, n int, w, x []byte) float32 {
	f := row(t).dot
	if f == nil {
		panic("tensor: no dot product for " + t.String())
	}
	return f(n, w, x)
}

func f32At(b []byte, i int) float32 {
	return math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
}

func vecDotFloat(t Type, n int, w, x []byte) float32 {
	xv, ok := F32View(x)
	var s float64
	switch t {
	case F32:
		wv, wok := F32View(w)
		if ok && wok {
			wv, xv = wv[:n], xv[:n]
			for i, a := range wv {
				s += float64(a * xv[i])
			}
		} else {
			for i := 0; i < n; i++ {
				s += float64(f32At(w, i) * f32At(x, i))
			}
		}
	case F16:
		w = w[:2*n]
		if ok {
			xv = xv[:n]
			for i, v := range xv {
				s += float64(F16ToF32(binary.LittleEndian.Uint16(w[2*i:])) * v)
			}
		} else {
			for i := 0; i < n; i++ {
				s += float64(F16ToF32(binary.LittleEndian.Uint16(w[2*i:])) * f32At(x, i))
			}
		}
	case BF16:
		w = w[:2*n]
		if ok {
			xv = xv[:n]
			for i, v := range xv {
				s += float64(BF16ToF32(binary.LittleEndian.Uint16(w[2*i:])) * v)
			}
		} else {
			for i := 0; i < n; i++ {
				s += float64(BF16ToF32(binary.LittleEndian.Uint16(w[2*i:])) * f32At(x, i))
			}
		}
	}
	return float32(s)
}

func vecDotQ8_0(n int, w, x []byte) float32 {
	var acc float32
	for ib := 0; ib < n/qk32; ib++ {
		bw := w[ib*sizeQ8_0 : ib*sizeQ8_0+sizeQ8_0]
		bx := x[ib*sizeQ8_0 : ib*sizeQ8_0+sizeQ8_0]
		qw, qx := bw[2:34], bx[2:34]
		var isum int32
		for j := range qw {
			isum += int32(int8(qw[j])) * int32(int8(qx[j]))
		}
		acc += float32(float32(isum) * float32(f16(bw)*f16(bx)))
	}
	return acc
}

func vecDotQ4_0(n int, w, x []byte) float32 {
	var acc float32
	for ib := 0; ib < n/qk32; ib++ {
		bw := w[ib*sizeQ4_0 : ib*sizeQ4_0+sizeQ4_0]
		bx := x[ib*sizeQ8_0 : ib*sizeQ8_0+sizeQ8_0]
		qw, qx := bw[2:18], bx[2:34]
		var s0, s1 int32
		for j, q := range qw {
			s0 += (int32(q&0xf) - 8) * int32(int8(qx[j]))
			s1 += (int32(q>>4) - 8) * int32(int8(qx[j+16]))
		}
		acc += float32(float32(float32(s0+s1)*f16(bw)) * f16(bx))
	}
	return acc
}

func vecDotQ5_0(n int, w, x []byte) float32 {
	var acc float32
	for ib := 0; ib < n/qk32; ib++ {
		bw := w[ib*sizeQ5_0 : ib*sizeQ5_0+sizeQ5_0]
		bx := x[ib*sizeQ8_0 : ib*sizeQ8_0+sizeQ8_0]
		qh := binary.LittleEndian.Uint32(bw[2:])
		qw, qx := bw[6:22], bx[2:34]
		var s0, s1 int32
		for j, q := range qw {
			h0 := int32(qh>>j&1) << 4
			h1 := int32(qh>>(j+16)&1) << 4
			s0 += ((int32(q&0xf) | h0) - 16) * int32(int8(qx[j]))
			s1 += ((int32(q>>4) | h1) - 16) * int32(int8(qx[j+16]))
		}
		acc += float32(float32(f16(bw)*f16(bx)) * float32(s0+s1))
	}
	return acc
}

func vecDotIQ4NL(n int, w, x []byte) float32 {
	var acc float32
	for ib := 0; ib < n/qk32; ib++ {
		bw := w[ib*sizeIQ4NL : ib*sizeIQ4NL+sizeIQ4NL]
		bx := x[ib*sizeQ8_0 : ib*sizeQ8_0+sizeQ8_0]
		qw, qx := bw[2:18], bx[2:34]
		var s0, s1 int32
		for j, q := range qw {
			s0 += int32(int8(qx[j])) * int32(kvaluesIQ4NL[q&0xf])
			s1 += int32(int8(qx[j+16])) * int32(kvaluesIQ4NL[q>>4])
		}
		d := f16(bx) * f16(bw)
		acc += float32(d * float32(s0+s1))
	}
	return acc
}

func vecDotQ4_1(n int, w, x []byte) float32 {
	var acc float32
	for ib := 0; ib < n/qk32; ib++ {
		bw := w[ib*sizeQ4_1 : ib*sizeQ4_1+sizeQ4_1]
		bx := x[ib*sizeQ8_1 : ib*sizeQ8_1+sizeQ8_1]
		qw, qx := bw[4:20], bx[4:36]
		var s0, s1 int32
		for j, q := range qw {
			s0 += int32(q&0xf) * int32(int8(qx[j]))
			s1 += int32(q>>4) * int32(int8(qx[j+16]))
		}
		acc += float32(float32(float32(f16(bw)*f16(bx))*float32(s0+s1)) + float32(f16(bw[2:])*f16(bx[2:])))
	}
	return acc
}

func vecDotQ5_1(n int, w, x []byte) float32 {
	var acc float32
	for ib := 0; ib < n/qk32; ib++ {
		bw := w[ib*sizeQ5_1 : ib*sizeQ5_1+sizeQ5_1]
		bx := x[ib*sizeQ8_1 : ib*sizeQ8_1+sizeQ8_1]
		qh := binary.LittleEndian.Uint32(bw[4:])
		qw, qx := bw[8:24], bx[4:36]
		var s0, s1 int32
		for j, q := range qw {
			h0 := int32(qh>>j&1) << 4
			h1 := int32(qh>>(j+16)&1) << 4
			s0 += (int32(q&0xf) | h0) * int32(int8(qx[j]))
			s1 += (int32(q>>4) | h1) * int32(int8(qx[j+16]))
		}
		acc += float32(float32(float32(f16(bw)*f16(bx))*float32(s0+s1)) + float32(f16(bw[2:])*f16(bx[2:])))
	}
	return acc
}

// q8KBsum returns bsums[i] of the Q8_K block bx.
func q8KBsum(bx []byte, i int) int32 {
	return int32(int16(binary.LittleEndian.Uint16(bx[4+qkK+2*i:])))
}

func vecDotQ4_K(n int, w, x []byte) float32 {
	var acc float32
	for ib := 0; ib < n/qkK; ib++ {
		bw := w[ib*sizeQ4_K : ib*sizeQ4_K+sizeQ4_K]
		bx := x[ib*sizeQ8_K : ib*sizeQ8_K+sizeQ8_K]
		sc := bw[4:16]
		q4 := bw[16:144]
		q8 := bx[4 : 4+qkK]
		var isum, imin int32
		for k := 0; k < 4; k++ { // 64 elements: low nibbles then high nibbles
			s1, m1 := scaleMinK4(2*k, sc)
			s2, m2 := scaleMinK4(2*k+1, sc)
			qa := q4[32*k : 32*k+32]
			xa, xb := q8[64*k:64*k+32], q8[64*k+32:64*k+64]
			var a, b int32
			for l, q := range qa {
				a += int32(q&0xf) * int32(int8(xa[l]))
				b += int32(q>>4) * int32(int8(xb[l]))
			}
			isum += int32(s1)*a + int32(s2)*b
			imin += int32(m1)*(q8KBsum(bx, 4*k)+q8KBsum(bx, 4*k+1)) + int32(m2)*(q8KBsum(bx, 4*k+2)+q8KBsum(bx, 4*k+3))
		}
		dx := f32At(bx, 0)
		d := f16(bw) * dx
		dmin := f16(bw[2:]) * dx
		acc += float32(d * float32(isum))
		acc -= float32(dmin * float32(imin))
	}
	return acc
}

func vecDotQ5_K(n int, w, x []byte) float32 {
	var acc float32
	for ib := 0; ib < n/qkK; ib++ {
		bw := w[ib*sizeQ5_K : ib*sizeQ5_K+sizeQ5_K]
		bx := x[ib*sizeQ8_K : ib*sizeQ8_K+sizeQ8_K]
		sc := bw[4:16]
		qh := bw[16:48]
		ql := bw[48:176]
		q8 := bx[4 : 4+qkK]
		var isum, imin int32
		for k := 0; k < 4; k++ {
			s1, m1 := scaleMinK4(2*k, sc)
			s2, m2 := scaleMinK4(2*k+1, sc)
			qa := ql[32*k : 32*k+32]
			xa, xb := q8[64*k:64*k+32], q8[64*k+32:64*k+64]
			var a, b int32
			for l, q := range qa {
				h := qh[l] >> (2 * k)
				a += int32(q&0xf|(h&1)<<4) * int32(int8(xa[l]))
				b += int32(q>>4|(h&2)<<3) * int32(int8(xb[l]))
			}
			isum += int32(s1)*a + int32(s2)*b
			imin += int32(m1)*(q8KBsum(bx, 4*k)+q8KBsum(bx, 4*k+1)) + int32(m2)*(q8KBsum(bx, 4*k+2)+q8KBsum(bx, 4*k+3))
		}
		dx := f32At(bx, 0)
		d := f16(bw) * dx
		dmin := f16(bw[2:]) * dx
		acc += float32(d * float32(isum))
		acc -= float32(dmin * float32(imin))
	}
	return acc
}

func vecDotQ6_K(n int, w, x []byte) float32 {
	var acc float32
	for ib := 0; ib < n/qkK; ib++ {
		bw := w[ib*sizeQ6_K : ib*sizeQ6_K+sizeQ6_K]
		bx := x[ib*sizeQ8_K : ib*sizeQ8_K+sizeQ8_K]
		ql := bw[0:128]
		qh := bw[128:192]
		sc := bw[192:208]
		q8 := bx[4 : 4+qkK]
		var isum int32
		for h := 0; h < 2; h++ { // halves of 128
			l0, h0, x0 := ql[64*h:64*h+64], qh[32*h:32*h+32], q8[128*h:128*h+128]
			var s [8]int32 // sub-blocks of 16: elements 16i..16i+15 of this half
			for l := 0; l < 32; l++ {
				is := l / 16
				q1 := int32(l0[l]&0xf|(h0[l]&3)<<4) - 32
				q2 := int32(l0[l+32]&0xf|(h0[l]>>2&3)<<4) - 32
				q3 := int32(l0[l]>>4|(h0[l]>>4&3)<<4) - 32
				q4 := int32(l0[l+32]>>4|(h0[l]>>6&3)<<4) - 32
				s[is] += q1 * int32(int8(x0[l]))
				s[is+2] += q2 * int32(int8(x0[l+32]))
				s[is+4] += q3 * int32(int8(x0[l+64]))
				s[is+6] += q4 * int32(int8(x0[l+96]))
			}
			for i := 0; i < 8; i++ {
				isum += int32(int8(sc[8*h+i])) * s[i]
			}
		}
		d := f16(bw[208:]) * f32At(bx, 0)
		acc += float32(d * float32(isum))
	}
	return acc
}
