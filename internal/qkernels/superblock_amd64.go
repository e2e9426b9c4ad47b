//go:build amd64

package qkernels

import (
	"unsafe"

	"github.com/kvserve/kvserve/internal/cpu"
	"github.com/kvserve/kvserve/internal/tensor"
)

// The SIMD path of the super-block types: each weight row is decoded in Go
// (tensor.UnpackSuperBlock) into the Q6_K canonical row of layout_amd64.go
// — U = q + off, SM the 16 signed scales, D — and the AVX2 Q6_K
// canonical-row kernel (dotCanonQ6_KAVX2) takes its dot products with
// every token. The kernel's prepared activations C6 are -off·Σx per 16
// values (summed here from the values, not read from bsums, so that any
// input bytes give the reference's result), so each sub-block sum is
// Σ u·x + C6 = Σ q·x exactly, and its float steps are tensor.VecDot's
// (acc += (D·dx)·float32(isum), blocks in order from +0). The Q2_K min
// term and the constant factor are applied after it in Go, in VecDot's
// order, so the outputs equal tensor.VecDot bit for bit.
//
// VPMADDUBSW adds two products u·x in 16 bits: with u ≤ 127 and |x| ≤ 127
// it cannot saturate. Types whose |q| exceeds 63 (IQ4_XS) are split as
// tensor.VecDot defines: each super-block becomes two canonical blocks,
// q>>1 with scales 2·Scale and q&1 with Scale, dotted with the
// activation block written twice, so that the kernel's two float steps
// are VecDot's.

// superSIMD reports whether t is a super-block type that runs on the SIMD
// path here, and the offset it uses.
func superSIMD(t tensor.Type) (off int32, ok bool) {
	if level() == cpu.Generic || !tensor.IsSuperBlock(t) {
		return 0, false
	}
	_, _, maxQ := tensor.SuperBlockForm(t)
	switch {
	case maxQ <= 32:
		return 32, true
	}
	return 64, true
}

// gemmSuper is Gemm for super-block types on amd64: the SIMD path where
// superSIMD allows, the generic one otherwise.
func gemmSuper(t tensor.Type, m, nTok, k int, w []byte, ldw int, x []byte, ldx int, y []float32, ldy int) {
	if lowbitOK(t) {
		gemmLowbit(t, m, nTok, k, w, ldw, x, ldx, y, ldy)
		return
	}
	off, ok := superSIMD(t)
	if !ok {
		gemmGeneric(t, m, nTok, k, w, ldw, x, ldx, y, ldy)
		return
	}
	mult, mins, maxQ := tensor.SuperBlockForm(t)
	split := tensor.SplitQ(maxQ)
	nsb := k / 256
	nc := nsb // canonical blocks per row
	if split {
		nc = 2 * nsb
	}
	ts := t.TypeSize()
	uB, smB, _, canB := kSizes(nc)
	ustride := roundUp(canB, 64)
	prepB := roundUp(prepKSize(nc), 64)
	minB := 0
	if mins {
		minB = roundUp(8*nsb*(64+4), 64)
	}
	dupB := 0 // the activations with each block twice (split)
	if split {
		dupB = nTok * nc * 292
	}
	s := getScratch()
	buf := s.bytes(8*ustride + nTok*prepB + nTok*32 + minB + dupB)
	can := buf[:8*ustride]
	preps := buf[8*ustride : 8*ustride+nTok*prepB]
	outB := buf[8*ustride+nTok*prepB : 8*ustride+nTok*prepB+nTok*32]
	out := f32s(outB)
	var rowMins []int32
	var rowDMin []float32
	if mins {
		mb := buf[8*ustride+nTok*prepB+nTok*32:]
		rowMins = unsafe.Slice((*int32)(unsafe.Pointer(&mb[0])), 8*nsb*16)
		rowDMin = unsafe.Slice((*float32)(unsafe.Pointer(&mb[8*nsb*64])), 8*nsb)
	}
	var a karg
	for r := 7; r >= 0; r-- {
		a.u, a.c1, a.c2, a.c3 = canonK(can[r*ustride:(r+1)*ustride], nc)
	}
	rx := tensor.Q8_K.RowSize(k)
	for j := 0; j < nTok; j++ {
		xr := x[j*ldx : j*ldx+rx]
		c6 := unsafe.Slice((*int32)(unsafe.Pointer(&preps[j*prepB])), 16*nc)
		for sb := 0; sb < nsb; sb++ {
			qs := xr[292*sb+4 : 292*sb+260]
			for i := 0; i < 16; i++ {
				var sum int32
				for _, v := range qs[16*i : 16*i+16] {
					sum += int32(int8(v))
				}
				if split {
					c6[32*sb+i] = -off * sum
					c6[32*sb+16+i] = -off * sum
				} else {
					c6[16*sb+i] = -off * sum
				}
			}
		}
	}
	a.x = ptr(x)
	a.stride = ldx
	if split {
		dup := buf[8*ustride+nTok*prepB+nTok*32+minB:]
		for j := 0; j < nTok; j++ {
			xr := x[j*ldx : j*ldx+rx]
			d := dup[j*nc*292 : (j+1)*nc*292]
			for sb := 0; sb < nsb; sb++ {
				copy(d[584*sb:584*sb+292], xr[292*sb:292*sb+292])
				copy(d[584*sb+292:584*sb+584], xr[292*sb:292*sb+292])
			}
		}
		a.x = ptr(dup)
		a.stride = nc * 292
	}
	a.a1 = ptr(preps)
	a.nb = nc
	a.ustride = ustride
	a.ts = prepB
	a.n2 = nTok
	a.y = ptr(outB)
	sbk := &s.sb
	for i0 := 0; i0 < m; i0 += 8 {
		rows := min(8, m-i0)
		for r := 0; r < rows; r++ {
			row := w[(i0+r)*ldw:]
			cr := can[r*ustride : r*ustride+canB]
			U := cr[:uB]
			SM := unsafe.Slice((*int32)(unsafe.Pointer(&cr[uB])), 16*nc)
			D := unsafe.Slice((*float32)(unsafe.Pointer(&cr[uB+smB])), nc)
			for sb := 0; sb < nsb; sb++ {
				tensor.UnpackSuperBlock(t, row[sb*ts:sb*ts+ts], sbk)
				if split {
					hi, lo := U[512*sb:512*sb+256], U[512*sb+256:512*sb+512]
					for e, q := range sbk.Q {
						hi[e] = byte(int32(q>>1) + off)
						lo[e] = byte(int32(q&1) + off)
					}
					for i, sc := range sbk.Scale {
						SM[32*sb+i] = 2 * sc
						SM[32*sb+16+i] = sc
					}
					D[2*sb], D[2*sb+1] = sbk.D, sbk.D
					continue
				}
				u := U[256*sb : 256*sb+256]
				for e, q := range sbk.Q {
					u[e] = byte(int32(q) + off)
				}
				copy(SM[16*sb:16*sb+16], sbk.Scale[:])
				D[sb] = sbk.D
				if mins {
					copy(rowMins[(r*nsb+sb)*16:(r*nsb+sb)*16+16], sbk.Min[:])
					rowDMin[r*nsb+sb] = sbk.DMin
				}
			}
		}
		a.rows = rows
		dotCanonQ6_KAVX2(&a)
		for j := 0; j < nTok; j++ {
			xr := x[j*ldx : j*ldx+rx]
			for r := 0; r < rows; r++ {
				v := out[8*j+r]
				var accm float32
				if mins {
					for sb := 0; sb < nsb; sb++ {
						bx := xr[292*sb : 292*sb+292]
						dx := f32At(bx)
						imin := minSum(rowMins[(r*nsb+sb)*16:(r*nsb+sb)*16+16], bx)
						accm += float32(float32(rowDMin[r*nsb+sb]*dx) * float32(imin))
					}
				}
				y[j*ldy+i0+r] = superFinish(v, accm, mult, mins)
			}
		}
	}
	putScratch(s)
}
