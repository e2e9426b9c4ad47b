//go:build amd64

package qkernels

import (
	"unsafe"

	"github.com/kvserve/kvserve/internal/tensor"
)

// The AVX2 path: weight rows are unpacked 8 at a time into canonical rows,
// which are then dotted with every prepared token (dotCanon*), so a GEMM
// unpacks each weight row once.

func unpack2(t tensor.Type, a *karg) {
	switch t {
	case tensor.Q8_0:
		unpackRowsQ8_0AVX2(a)
	case tensor.Q4_0:
		unpackRowsQ4_0AVX2(a)
	case tensor.Q4_1:
		unpackRowsQ4_1AVX2(a)
	case tensor.Q5_0:
		unpackRowsQ5_0AVX2(a)
	case tensor.Q5_1:
		unpackRowsQ5_1AVX2(a)
	case tensor.IQ4_NL:
		unpackRowsIQ4_NLAVX2(a)
	case tensor.MXFP4:
		unpackRowsMXFP4AVX2(a)
	case tensor.Q4_K:
		unpackRowsQ4_KAVX2(a)
	case tensor.Q5_K:
		unpackRowsQ5_KAVX2(a)
	case tensor.Q6_K:
		unpackRowsQ6_KAVX2(a)
	}
}

func dotCanon2(t tensor.Type, a *karg) {
	switch t {
	case tensor.Q8_0:
		dotCanonQ8_0AVX2(a)
	case tensor.Q4_0:
		dotCanonQ4_0AVX2(a)
	case tensor.Q4_1:
		dotCanonQ4_1AVX2(a)
	case tensor.Q5_0:
		dotCanonQ5_0AVX2(a)
	case tensor.Q5_1:
		dotCanonQ5_1AVX2(a)
	case tensor.IQ4_NL, tensor.MXFP4:
		dotCanonIQ4_NLAVX2(a) // MXFP4's canonical rows are IQ4_NL's: levels + 128, float32 scales
	case tensor.Q4_K:
		dotCanonQ4_KAVX2(a)
	case tensor.Q5_K:
		dotCanonQ5_KAVX2(a)
	case tensor.Q6_K:
		dotCanonQ6_KAVX2(a)
	}
}

// canonSize2 returns the canonical row size (bytes, 64-aligned) and the
// per-token prepared activation size for type t and length n.
func canonSize2(t tensor.Type, n int) (ustride, prep int) {
	if isLegacy(t) {
		_, _, c := legacySizes(n / 32)
		return roundUp(c, 64), roundUp(prepLSize(n/32), 64)
	}
	_, _, _, c := kSizes(n / 256)
	return roundUp(c, 64), roundUp(prepKSize(n/256), 64)
}

// gemm2 computes y[j*ldy+i] for i < m, j < nTok on the AVX2 path (DotRows
// and Dot are the nTok = 1 case).
func gemm2(t tensor.Type, m, nTok, k int, w []byte, ldw int, x []byte, ldx int, y []float32, ldy int) {
	ustride, prepB := canonSize2(t, k)
	s := getScratch()
	buf := s.bytes(8*ustride + nTok*prepB + nTok*32)
	can := buf[:8*ustride]
	preps := buf[8*ustride : 8*ustride+nTok*prepB]
	outB := buf[8*ustride+nTok*prepB:]
	out := f32s(outB)
	var a karg
	rx := t.VecDotType().RowSize(k)
	if isLegacy(t) {
		nb := k / 32
		for r := 7; r >= 0; r-- {
			a.u, a.c1, a.c2 = canonL(can[r*ustride:(r+1)*ustride], nb)
		}
		for j := nTok - 1; j >= 0; j-- {
			a.x, a.a1, a.a2, a.a3 = prepL(t, x[j*ldx:j*ldx+rx], nb, preps[j*prepB:(j+1)*prepB])
		}
		a.nb = nb
	} else {
		nsb := k / 256
		for r := 7; r >= 0; r-- {
			a.u, a.c1, a.c2, a.c3 = canonK(can[r*ustride:(r+1)*ustride], nsb)
		}
		for j := 0; j < nTok; j++ {
			prepK(t, x[j*ldx:j*ldx+rx], nsb, preps[j*prepB:(j+1)*prepB])
		}
		a.x = ptr(x)
		a.a1 = ptr(preps)
		a.nb = nsb
	}
	a.ustride = ustride
	a.ts = prepB
	a.n2 = nTok
	a.rowB = t.RowSize(k)
	for i0 := 0; i0 < m; i0 += 8 {
		rows := min(8, m-i0)
		a.w = unsafe.Pointer(&w[i0*ldw])
		a.stride = ldw
		a.rows = rows
		unpack2(t, &a)
		if !isLegacy(t) {
			a.stride = ldx
		}
		a.y = ptr(outB)
		dotCanon2(t, &a)
		for j := 0; j < nTok; j++ {
			copy(y[j*ldy+i0:j*ldy+i0+rows], out[8*j:8*j+rows])
		}
	}
	putScratch(s)
}
