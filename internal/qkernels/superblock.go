package qkernels

import (
	"encoding/binary"
	"math"

	"github.com/kvserve/kvserve/internal/tensor"
)

// The low-bit super-block types (Q2_K, Q3_K, IQ4_XS and the IQ types; see
// tensor.UnpackSuperBlock): their rows decode to signed integer weights
// with sixteen integer scales per 256 elements (and, for Q2_K, sixteen
// integer mins), and their dot product is tensor.VecDot's super-block
// form. The generic path below decodes a row once with
// tensor.UnpackSuperBlock and takes its dot product with every token,
// in tensor.VecDot's exact order; superblock_amd64.go runs the Q6_K
// canonical-row kernel on the same decoding where |q| allows.

// unpackSuper decodes row w (n elements of super-block type t) into u:
// q the weights, f the (d, dmin) pairs, s per super-block the 16 scales
// then the 16 mins.
func unpackSuper(t tensor.Type, n int, w []byte, u *unpackedRow, sb *tensor.SuperBlock) {
	nsb := n / 256
	ts := t.TypeSize()
	u.grow(n, 2*nsb, 32*nsb)
	for s := 0; s < nsb; s++ {
		tensor.UnpackSuperBlock(t, w[s*ts:s*ts+ts], sb)
		copy(u.q[256*s:256*s+256], sb.Q[:])
		copy(u.s[32*s:32*s+16], sb.Scale[:])
		copy(u.s[32*s+16:32*s+32], sb.Min[:])
		u.f[2*s], u.f[2*s+1] = sb.D, sb.DMin
	}
}

// dotSuperUnpacked is tensor.VecDot for an unpacked super-block row: the
// same integer sums and float32 operations in the same order.
func dotSuperUnpacked(t tensor.Type, n int, u *unpackedRow, x []byte) float32 {
	mult, mins, maxQ := tensor.SuperBlockForm(t)
	split := tensor.SplitQ(maxQ)
	var acc, accm float32
	for s := 0; s < n/256; s++ {
		bx := x[292*s : 292*s+292]
		q8 := bx[4:260]
		dx := math.Float32frombits(binary.LittleEndian.Uint32(bx))
		d := float32(u.f[2*s] * dx)
		if split {
			var hi, lo int32
			for k := 0; k < 16; k++ {
				var sh, sl int32
				for j, q := range u.q[256*s+16*k : 256*s+16*k+16] {
					xv := int32(int8(q8[16*k+j]))
					sh += int32(q>>1) * xv
					sl += int32(q&1) * xv
				}
				hi += 2 * u.s[32*s+k] * sh
				lo += u.s[32*s+k] * sl
			}
			acc += float32(d * float32(hi))
			acc += float32(d * float32(lo))
		} else {
			var isum int32
			for k := 0; k < 16; k++ {
				isum += u.s[32*s+k] * idot(u.q[256*s+16*k:256*s+16*k+16], q8[16*k:16*k+16])
			}
			acc += float32(d * float32(isum))
		}
		if mins {
			accm += float32(float32(u.f[2*s+1]*dx) * float32(minSum(u.s[32*s+16:32*s+32], bx)))
		}
	}
	return superFinish(acc, accm, mult, mins)
}

// minSum is Σ_k mins_k·bsums_k for one Q8_K block bx.
func minSum(mins []int32, bx []byte) int32 {
	var imin int32
	for k := 0; k < 16; k++ {
		imin += mins[k] * int32(int16(binary.LittleEndian.Uint16(bx[260+2*k:])))
	}
	return imin
}

// superFinish applies the form's last step (tensor's vecDotSuper).
func superFinish(acc, accm, mult float32, mins bool) float32 {
	switch {
	case mins:
		return acc - accm
	case mult != 1:
		return acc * mult
	}
	return acc
}

func f32At(b []byte) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b)) }
