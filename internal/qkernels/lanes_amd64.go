//go:build amd64

package qkernels

import (
	"unsafe"

	"github.com/kvserve/kvserve/internal/tensor"
)

// larg is the argument block of the lane kernels (genlanes/main.go).
type larg struct {
	w      unsafe.Pointer    // 0: first group of 16 rows
	nb     int               // 8: blocks per row
	groups int               // 16: groups of 16 rows
	gstr   int               // 24: bytes between groups
	last   int               // 32: rows in the last group (1..16)
	xc     [4]unsafe.Pointer // 40: prepared activations per token
	y      [4]unsafe.Pointer // 72: outputs per token
}

//go:noescape
func lanesQ8_0x1AVX512(a *larg)

//go:noescape
func lanesQ8_0x2AVX512(a *larg)

//go:noescape
func lanesQ8_0x3AVX512(a *larg)

//go:noescape
func lanesQ8_0x4AVX512(a *larg)

//go:noescape
func lanesQ4_Kx1AVX512(a *larg)

//go:noescape
func lanesQ4_Kx2AVX512(a *larg)

//go:noescape
func lanesQ4_Kx3AVX512(a *larg)

//go:noescape
func lanesQ4_Kx4AVX512(a *larg)

//go:noescape
func lanesQ6_Kx1AVX512(a *larg)

//go:noescape
func lanesQ6_Kx2AVX512(a *larg)

//go:noescape
func lanesQ6_Kx3AVX512(a *larg)

//go:noescape
func lanesQ6_Kx4AVX512(a *larg)

// maxLaneTok is the most tokens one lane pass takes.
const maxLaneTok = 4

// gemvLanes runs rows [0, m) of the lane-packed matrix w (starting at a
// group) for nTok ≤ maxLaneTok tokens: y[j·ldy+i] = dot(row i, token j).
func gemvLanes(t tensor.Type, m, nTok, k int, w []byte, x []byte, ldx int, y []float32, ldy int) {
	nb := k / t.BlockSize()
	rx := t.VecDotType().RowSize(k)
	act := laneAct(t)
	s := getScratch()
	buf := s.bytes(nTok * nb * act)
	var a larg
	a.w = ptr(w)
	a.nb = nb
	a.groups = (m + 15) / 16
	a.gstr = 16 * laneRowB(t, k)
	a.last = m - 16*(a.groups-1)
	for j := 0; j < nTok; j++ {
		pb := buf[j*nb*act : (j+1)*nb*act]
		prepLanes(t, x[j*ldx:j*ldx+rx], nb, pb)
		a.xc[j] = ptr(pb)
		a.y[j] = unsafe.Pointer(&y[j*ldy])
	}
	if t == tensor.Q6_K {
		switch nTok {
		case 1:
			lanesQ6_Kx1AVX512(&a)
		case 2:
			lanesQ6_Kx2AVX512(&a)
		case 3:
			lanesQ6_Kx3AVX512(&a)
		case 4:
			lanesQ6_Kx4AVX512(&a)
		}
		putScratch(s)
		return
	}
	if t == tensor.Q4_K {
		switch nTok {
		case 1:
			lanesQ4_Kx1AVX512(&a)
		case 2:
			lanesQ4_Kx2AVX512(&a)
		case 3:
			lanesQ4_Kx3AVX512(&a)
		case 4:
			lanesQ4_Kx4AVX512(&a)
		}
		putScratch(s)
		return
	}
	switch nTok {
	case 1:
		lanesQ8_0x1AVX512(&a)
	case 2:
		lanesQ8_0x2AVX512(&a)
	case 3:
		lanesQ8_0x3AVX512(&a)
	case 4:
		lanesQ8_0x4AVX512(&a)
	}
	putScratch(s)
}
