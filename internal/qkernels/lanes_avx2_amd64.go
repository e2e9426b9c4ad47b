//go:build amd64

package qkernels

import (
	"unsafe"

	"github.com/kvserve/kvserve/internal/cpu"
	"github.com/kvserve/kvserve/internal/tensor"
)

// The AVX2 kernels over row-lane packed weights (lanes_avx2_amd64.s,
// written by genlanes2/main.go): the same layout, prepared activations and
// argument block as the AVX-512 ones, each group of 16 rows run as two
// halves of 8, the byte products by VPMADDUBSW+VPMADDWD with every
// intermediate exact, so the outputs are bit-identical to tensor.VecDot.
// Also the AVX-512 kernels of Q5_K (lanes_q5k_amd64.s, genlanes2 too).

//go:noescape
func lanesQ8_0x1AVX2(a *larg)

//go:noescape
func lanesQ8_0x2AVX2(a *larg)

//go:noescape
func lanesQ8_0x3AVX2(a *larg)

//go:noescape
func lanesQ8_0x4AVX2(a *larg)

//go:noescape
func lanesQ8_0x1AVXVNNI(a *larg)

//go:noescape
func lanesQ8_0x2AVXVNNI(a *larg)

//go:noescape
func lanesQ8_0x3AVXVNNI(a *larg)

//go:noescape
func lanesQ8_0x4AVXVNNI(a *larg)

//go:noescape
func lanesQ4_Kx1AVXVNNI(a *larg)

//go:noescape
func lanesQ4_Kx2AVXVNNI(a *larg)

//go:noescape
func lanesQ4_Kx3AVXVNNI(a *larg)

//go:noescape
func lanesQ4_Kx4AVXVNNI(a *larg)

//go:noescape
func lanesQ5_Kx1AVXVNNI(a *larg)

//go:noescape
func lanesQ5_Kx2AVXVNNI(a *larg)

//go:noescape
func lanesQ5_Kx3AVXVNNI(a *larg)

//go:noescape
func lanesQ5_Kx4AVXVNNI(a *larg)

//go:noescape
func lanesQ6_Kx1AVXVNNI(a *larg)

//go:noescape
func lanesQ6_Kx2AVXVNNI(a *larg)

//go:noescape
func lanesQ6_Kx3AVXVNNI(a *larg)

//go:noescape
func lanesQ6_Kx4AVXVNNI(a *larg)

//go:noescape
func lanesQ4_Kx1AVX2(a *larg)

//go:noescape
func lanesQ4_Kx2AVX2(a *larg)

//go:noescape
func lanesQ4_Kx3AVX2(a *larg)

//go:noescape
func lanesQ4_Kx4AVX2(a *larg)

//go:noescape
func lanesQ5_Kx1AVX2(a *larg)

//go:noescape
func lanesQ5_Kx2AVX2(a *larg)

//go:noescape
func lanesQ5_Kx3AVX2(a *larg)

//go:noescape
func lanesQ5_Kx4AVX2(a *larg)

//go:noescape
func lanesQ5_Kx1AVX512(a *larg)

//go:noescape
func lanesQ5_Kx2AVX512(a *larg)

//go:noescape
func lanesQ5_Kx3AVX512(a *larg)

//go:noescape
func lanesQ5_Kx4AVX512(a *larg)

//go:noescape
func lanesQ6_Kx1AVX2(a *larg)

//go:noescape
func lanesQ6_Kx2AVX2(a *larg)

//go:noescape
func lanesQ6_Kx3AVX2(a *larg)

//go:noescape
func lanesQ6_Kx4AVX2(a *larg)

// lanesAVX2 are the AVX2 lane kernels by type and token count − 1.
var lanesAVX2 = map[tensor.Type][maxLaneTok]func(*larg){
	tensor.Q8_0: {lanesQ8_0x1AVX2, lanesQ8_0x2AVX2, lanesQ8_0x3AVX2, lanesQ8_0x4AVX2},
	tensor.Q4_K: {lanesQ4_Kx1AVX2, lanesQ4_Kx2AVX2, lanesQ4_Kx3AVX2, lanesQ4_Kx4AVX2},
	tensor.Q5_K: {lanesQ5_Kx1AVX2, lanesQ5_Kx2AVX2, lanesQ5_Kx3AVX2, lanesQ5_Kx4AVX2},
	tensor.Q6_K: {lanesQ6_Kx1AVX2, lanesQ6_Kx2AVX2, lanesQ6_Kx3AVX2, lanesQ6_Kx4AVX2},
}

// lanesVNNI are the AVX2 lane kernels using AVX-VNNI (VEX VPDPBUSD), run
// instead of lanesAVX2's where laneVNNI.
var lanesVNNI = map[tensor.Type][maxLaneTok]func(*larg){
	tensor.Q8_0: {lanesQ8_0x1AVXVNNI, lanesQ8_0x2AVXVNNI, lanesQ8_0x3AVXVNNI, lanesQ8_0x4AVXVNNI},
	tensor.Q4_K: {lanesQ4_Kx1AVXVNNI, lanesQ4_Kx2AVXVNNI, lanesQ4_Kx3AVXVNNI, lanesQ4_Kx4AVXVNNI},
	tensor.Q5_K: {lanesQ5_Kx1AVXVNNI, lanesQ5_Kx2AVXVNNI, lanesQ5_Kx3AVXVNNI, lanesQ5_Kx4AVXVNNI},
	tensor.Q6_K: {lanesQ6_Kx1AVXVNNI, lanesQ6_Kx2AVXVNNI, lanesQ6_Kx3AVXVNNI, lanesQ6_Kx4AVXVNNI},
}

// laneVNNI is whether the AVX2 path runs lanesVNNI (the CPU has AVX-VNNI;
// tests switch it off to check the other kernels too).
var laneVNNI = cpu.Has().AVXVNNI

// lanesAVX2For returns the AVX2 lane kernels of type t.
func lanesAVX2For(t tensor.Type) *[maxLaneTok]func(*larg) {
	if laneVNNI {
		if ks, ok := lanesVNNI[t]; ok {
			return &ks
		}
	}
	ks := lanesAVX2[t]
	return &ks
}

// lanes512More are the AVX-512 lane kernels of the types gemvLanes does
// not run (lanes_q5k_amd64.s), by type and token count − 1.
var lanes512More = map[tensor.Type][maxLaneTok]func(*larg){
	tensor.Q5_K: {lanesQ5_Kx1AVX512, lanesQ5_Kx2AVX512, lanesQ5_Kx3AVX512, lanesQ5_Kx4AVX512},
}

// gemvLanesWith is gemvLanes with the kernels ks (by token count − 1):
// rows [0, m) of the lane-packed matrix w (starting at a group) for nTok
// tokens, y[j·ldy+i] = dot(row i, token j). Up to maxLaneTok tokens it is
// one pass over the rows; more (prefill) run in tiles of laneTileRows rows,
// each tile read once per maxLaneTok tokens (from L2 after the first).
// Every output is the same kernel's, whatever the token count.
func gemvLanesWith(ks *[maxLaneTok]func(*larg), t tensor.Type, m, nTok, k int, w []byte, x []byte, ldx int, y []float32, ldy int) {
	nb := k / t.BlockSize()
	rx := t.VecDotType().RowSize(k)
	act := laneAct(t)
	s := getScratch()
	buf := s.bytes(nTok * nb * act)
	for j := 0; j < nTok; j++ {
		prepLanes(t, x[j*ldx:j*ldx+rx], nb, buf[j*nb*act:(j+1)*nb*act])
	}
	gstr := 16 * laneRowB(t, k)
	tile := m
	if nTok > maxLaneTok {
		tile = laneTileRows
	}
	var a larg
	for r0 := 0; r0 < m; r0 += tile {
		rows := min(tile, m-r0)
		for j0 := 0; j0 < nTok; j0 += maxLaneTok {
			n := min(maxLaneTok, nTok-j0)
			a.w = ptr(w[r0/16*gstr:])
			a.nb = nb
			a.groups = (rows + 15) / 16
			a.gstr = gstr
			a.last = rows - 16*(a.groups-1)
			for j := 0; j < n; j++ {
				a.xc[j] = ptr(buf[(j0+j)*nb*act:])
				a.y[j] = unsafe.Pointer(&y[(j0+j)*ldy+r0])
			}
			ks[n-1](&a)
		}
	}
	putScratch(s)
}

// laneTileRows is how many rows (a multiple of 16) a lane kernel runs for
// maxLaneTok tokens before the next maxLaneTok in a prefill: 64 rows of
// 8192 Q8_0 values are 557 KB, kept in L2 for the next tokens.
const laneTileRows = 64

// laneFast reports whether the lane kernels of type t run on the current
// path (the AVX-512 kernels for every lane type, the AVX2 ones for those
// in lanesAVX2).
func laneFast(t tensor.Type) bool {
	switch level() {
	case cpu.AVX512:
		return laneTypes[t] // gemvLanes or lanes512More
	case cpu.AVX2:
		_, ok := lanesAVX2[t]
		return ok && laneTypes[t]
	}
	return false
}
