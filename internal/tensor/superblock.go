package tensor

import (
	"encoding/binary"
	"math"
	"sync"
)

// The low-bit super-block types (Q2_K, Q3_K, IQ4_XS and the read-only IQ
// types) share one dot-product form. Each 256-element super-block decodes
// to signed integer weights q (|q| ≤ 127), sixteen integer scales, one per
// 16 elements (types with 32-element sub-blocks repeat each scale), and
// float32 factors d and, for Q2_K, dmin with sixteen integer mins:
//
//	x_e = mult·d·scale_{e/16}·q_e − dmin·min_{e/16}
//
// where mult is a power of two fixed per type (IQ types' ½ and ¼ factors
// and IQ1's 1/8 deltas). UnpackSuperBlock gives that decoding; the
// reference dot product (VecDot) and every kernel use it, so their integer
// sums are the same by construction.

// SuperBlock is one super-block decoded by UnpackSuperBlock.
type SuperBlock struct {
	Q     [qkK]int8
	Scale [16]int32
	Min   [16]int32 // Q2_K only
	D     float32
	DMin  float32 // Q2_K only
}

// superForm is a type's decoder and constant factor.
type superForm struct {
	unpack func(b []byte, u *SuperBlock)
	mult   float32 // applied once to the whole dot product (1: none)
	mins   bool    // the dmin·min term exists (Q2_K)
	maxQ   int8    // bound on |q| (kernels choose their offset from it)
}

func superFormOf(t Type) *superForm {
	switch t {
	case Q2_K:
		return &formQ2_K
	case Q3_K:
		return &formQ3_K
	case IQ4_XS:
		return &formIQ4_XS
	}
	return superFormIQ(t)
}

// IsSuperBlock reports whether t has the super-block dot-product form
// (UnpackSuperBlock works for it).
func IsSuperBlock(t Type) bool { return superFormOf(t) != nil }

// SuperBlockForm returns t's constant factor mult, whether it has the
// dmin·min term, and the bound on |q|.
func SuperBlockForm(t Type) (mult float32, mins bool, maxQ int8) {
	f := superFormOf(t)
	if f == nil {
		return 0, false, 0
	}
	return f.mult, f.mins, f.maxQ
}

// UnpackSuperBlock decodes the super-block b (t.TypeSize() bytes) of a
// super-block type t into u. It panics for other types.
func UnpackSuperBlock(t Type, b []byte, u *SuperBlock) {
	f := superFormOf(t)
	if f == nil {
		panic("tensor: " + t.String() + " is not a super-block type")
	}
	f.unpack(b[:t.TypeSize()], u)
}

var superPool = sync.Pool{New: func() any { return new(SuperBlock) }}

// vecDotSuper is VecDot for the super-block types. Per super-block s, with
// the activation's float32 scale dx and its 16 bsums:
//
//	isum = Σ_{k<16} Scale_k · Σ_{j<16} q_{16k+j}·x_{16k+j}
//	acc  = acc + (D·dx)·float32(isum)
//	Q2_K also: imin = Σ_{k<16} Min_k·bsums_k; accm = accm + (DMin·dx)·float32(imin)
//
// and the result is acc − accm (Q2_K), acc·mult (mult ≠ 1) or acc, both
// accumulators starting at +0 and running over the blocks in order.
// Types whose |q| exceeds 63 (IQ4_XS) split each weight as
// q = 2·(q>>1) + (q&1) and take the two halves' sums as two steps:
//
//	isum_hi = Σ_k (2·Scale_k)·Σ_j (q>>1)·x; acc = acc + (D·dx)·float32(isum_hi)
//	isum_lo = Σ_k Scale_k·Σ_j (q&1)·x;      acc = acc + (D·dx)·float32(isum_lo)
//
// (so that the 8-bit SIMD kernels compute exactly the same; the integer
// total is the same, only the float rounding differs from one step).
func vecDotSuper(f *superForm, ts, n int, w, x []byte) float32 {
	u := superPool.Get().(*SuperBlock)
	defer superPool.Put(u)
	split := SplitQ(f.maxQ)
	var acc, accm float32
	for s := 0; s < n/qkK; s++ {
		f.unpack(w[s*ts:s*ts+ts], u)
		bx := x[s*sizeQ8_K : s*sizeQ8_K+sizeQ8_K]
		q8 := bx[4 : 4+qkK]
		dx := math.Float32frombits(binary.LittleEndian.Uint32(bx))
		d := float32(u.D * dx)
		if split {
			var hi, lo int32
			for k := 0; k < 16; k++ {
				var sh, sl int32
				for j := 16 * k; j < 16*k+16; j++ {
					sh += int32(u.Q[j]>>1) * int32(int8(q8[j]))
					sl += int32(u.Q[j]&1) * int32(int8(q8[j]))
				}
				hi += 2 * u.Scale[k] * sh
				lo += u.Scale[k] * sl
			}
			acc += float32(d * float32(hi))
			acc += float32(d * float32(lo))
		} else {
			var isum int32
			for k := 0; k < 16; k++ {
				var si int32
				for j := 16 * k; j < 16*k+16; j++ {
					si += int32(u.Q[j]) * int32(int8(q8[j]))
				}
				isum += u.Scale[k] * si
			}
			acc += float32(d * float32(isum))
		}
		if f.mins {
			var imin int32
			for k := 0; k < 16; k++ {
				imin += u.Min[k] * int32(int16(binary.LittleEndian.Uint16(bx[4+qkK+2*k:])))
			}
			accm += float32(float32(u.DMin*dx) * float32(imin))
		}
	}
	switch {
	case f.mins:
		return acc - accm
	case f.mult != 1:
		return acc * f.mult
	}
	return acc
}

// SplitQ reports whether the super-block types with |q| ≤ maxQ take the
// split dot product (vecDotSuper).
func SplitQ(maxQ int8) bool { return maxQ > 63 }

func vecDotQ2_K(n int, w, x []byte) float32 { return vecDotSuper(&formQ2_K, sizeQ2_K, n, w, x) }
func vecDotQ3_K(n int, w, x []byte) float32 { return vecDotSuper(&formQ3_K, sizeQ3_K, n, w, x) }
func vecDotIQ4_XS(n int, w, x []byte) float32 {
	return vecDotSuper(&formIQ4_XS, sizeIQ4_XS, n, w, x)
}
