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
	gemmLanes(t, m, nTok, k, w, x, ldx, y, ldy)
}

// laneTileGroups is how many groups of 16 rows a batch of more than
// maxLaneTok tokens runs through before moving on: their weights (Q4_K,
// k = 2048: 76 KB) stay in L2 while every token, 4 at a time, passes.
const laneTileGroups = 4

// gemmLanes runs rows [0, m) of the lane-packed matrix w (starting at a
// group) for any number of tokens: the activations are prepared once, then
// for each tile of laneTileGroups groups the kernels take the tokens 4 at
// a time. Every output is the one-token kernel's (batch invariance), so
// prefill reads the lane layout in place instead of copying it back.
func gemmLanes(t tensor.Type, m, nTok, k int, w []byte, x []byte, ldx int, y []float32, ldy int) {
	nb := k / t.BlockSize()
	rx := t.VecDotType().RowSize(k)
	act := nb * laneAct(t)
	s := getScratch()
	buf := s.bytes(nTok * act)
	for j := 0; j < nTok; j++ {
		prepLanes(t, x[j*ldx:j*ldx+rx], nb, buf[j*act:(j+1)*act])
	}
	gstr := 16 * laneRowB(t, k)
	groups := (m + 15) / 16
	tile := groups
	if nTok > maxLaneTok {
		tile = laneTileGroups
	}
	var a larg
	for g0 := 0; g0 < groups; g0 += tile {
		ng := min(tile, groups-g0)
		rows := min(16*ng, m-16*g0)
		for j0 := 0; j0 < nTok; j0 += maxLaneTok {
			nT := min(maxLaneTok, nTok-j0)
			a = larg{w: ptr(w[g0*gstr:]), nb: nb, groups: ng, gstr: gstr, last: rows - 16*(ng-1)}
			for j := 0; j < nT; j++ {
				a.xc[j] = ptr(buf[(j0+j)*act:])
				a.y[j] = unsafe.Pointer(&y[(j0+j)*ldy+16*g0])
			}
			runLanes(t, nT, &a)
		}
	}
	putScratch(s)
}

// runLanes calls the kernel of type t for nT (1..4) tokens.
func runLanes(t tensor.Type, nT int, a *larg) {
	switch t {
	case tensor.Q6_K:
		switch nT {
		case 1:
			lanesQ6_Kx1AVX512(a)
		case 2:
			lanesQ6_Kx2AVX512(a)
		case 3:
			lanesQ6_Kx3AVX512(a)
		default:
			lanesQ6_Kx4AVX512(a)
		}
	case tensor.Q4_K:
		switch nT {
		case 1:
			lanesQ4_Kx1AVX512(a)
		case 2:
			lanesQ4_Kx2AVX512(a)
		case 3:
			lanesQ4_Kx3AVX512(a)
		default:
			lanesQ4_Kx4AVX512(a)
		}
	default:
		switch nT {
		case 1:
			lanesQ8_0x1AVX512(a)
		case 2:
			lanesQ8_0x2AVX512(a)
		case 3:
			lanesQ8_0x3AVX512(a)
		default:
			lanesQ8_0x4AVX512(a)
		}
	}
}
