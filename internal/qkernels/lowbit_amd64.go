//go:build amd64

package qkernels

import (
	"unsafe"

	"github.com/kvserve/kvserve/internal/cpu"
	"github.com/kvserve/kvserve/internal/tensor"
)

// Fused kernels of the low-bit super-block types (lowbit_amd64.s, written
// by genlowbit/main.go): for one token, each weight row is decoded in
// registers from its packed bytes and dotted with the Q8_K activations, as
// llama.cpp's ggml_vec_dot_*_q8_K do, instead of being unpacked in Go into the Q6_K
// canonical row first (gemmSuper). Each super-block's integer sums are
// exact in int32 for any input bytes (VPMADDUBSW's unsigned operand is
// at most 120, so no 16-bit pair sum saturates), and the float steps are
// tensor.VecDot's, one by one in its order (acc += (D·dx)·float32(isum),
// IQ4_XS's split hi/lo steps, Q2_K's accm), so every output equals
// tensor.VecDot bit for bit, as every path of this package does.
//
//	Q3_K:   Σ q·x = Σ low2·x − Σ 4·(1−hbit)·x, scales by VPSHUFB
//	Q2_K:   Σ q·x with q the 2-bit level; imin from the Q8_K bsums (as
//	        tensor.VecDot reads them)
//	IQ4_XS: the levels by VPSHUFB from two tables, (q>>1)+64 and q&1, so
//	        hi = 2·(Σ ls·Σ u·x − 64·Σ ls·Σx) and lo = Σ ls·Σ(q&1)·x

// lbArg is the argument block of the lowbit kernels (offsets hard-coded in
// genlowbit/main.go; TestLowbitLayout checks them).
type lbArg struct {
	w      unsafe.Pointer // 0: first weight row
	stride int            // 8: bytes between weight rows
	rows   int            // 16: rows
	x      unsafe.Pointer // 24: the Q8_K activation row
	nsb    int            // 32: super-blocks per row
	y      unsafe.Pointer // 40: rows float32 outputs
	c      unsafe.Pointer // 48: IQ types: the prepared activations (lbPrepIQ)
	grid   unsafe.Pointer // 56: IQ types: the grid table (lbGrid)
	signs  unsafe.Pointer // 64: ksigns_iq2xs
}

//go:noescape
func lbQ3_KAVX2(a *lbArg)

//go:noescape
func lbQ2_KAVX2(a *lbArg)

//go:noescape
func lbIQ4_XSAVX2(a *lbArg)

//go:noescape
func lbIQ3_XXSAVX2(a *lbArg)

//go:noescape
func lbIQ3_SAVX2(a *lbArg)

//go:noescape
func lbIQ2_XXSAVX2(a *lbArg)

//go:noescape
func lbIQ2_XSAVX2(a *lbArg)

//go:noescape
func lbIQ2_SAVX2(a *lbArg)

//go:noescape
func lbIQ1_SAVX2(a *lbArg)

//go:noescape
func lbIQ1_MAVX2(a *lbArg)

// The tables the IQ kernels gather from: the grids as unsigned magnitudes
// (every grid byte of IQ2 and IQ3 is non-negative; IQ3_XXS's halved, as
// its super-block form halves them), IQ1's entries g ∈ {-1, 0, 1} as
// 8g+64 (the kernel adds the ±1 delta), and ggml's ksigns_iq2xs.
var (
	lbSigns  = tensor.KSignsIQ2XS()
	lbG2XXS  = tensor.IQGrid8(tensor.IQ2_XXS)
	lbG2XS   = tensor.IQGrid8(tensor.IQ2_XS)
	lbG2S    = tensor.IQGrid8(tensor.IQ2_S)
	lbG3XXS  = halveGrid(tensor.IQGrid4(tensor.IQ3_XXS))
	lbG3S    = tensor.IQGrid4(tensor.IQ3_S)
	lbG1     = iq1Grid(tensor.IQGrid8(tensor.IQ1_S))
	lbSignsP = unsafe.Pointer(&lbSigns[0])
)

func halveGrid(g []uint32) []uint32 {
	for i, v := range g {
		g[i] = v >> 1 & 0x7f7f7f7f
	}
	return g
}

func iq1Grid(g []uint64) []uint64 {
	for i, v := range g {
		var u uint64
		for j := 0; j < 8; j++ {
			u |= uint64(uint8(8*int8(v>>(8*j))+64)) << (8 * j)
		}
		g[i] = u
	}
	return g
}

// lbGrid returns IQ type t's gather table.
func lbGrid(t tensor.Type) unsafe.Pointer {
	switch t {
	case tensor.IQ2_XXS:
		return unsafe.Pointer(&lbG2XXS[0])
	case tensor.IQ2_XS:
		return unsafe.Pointer(&lbG2XS[0])
	case tensor.IQ2_S:
		return unsafe.Pointer(&lbG2S[0])
	case tensor.IQ3_XXS:
		return unsafe.Pointer(&lbG3XXS[0])
	case tensor.IQ3_S:
		return unsafe.Pointer(&lbG3S[0])
	case tensor.IQ1_S, tensor.IQ1_M:
		return unsafe.Pointer(&lbG1[0])
	}
	return nil
}

// lbPrepIQ writes the IQ kernels' prepared activations of the Q8_K row x
// (nsb super-blocks) into c (256 bytes per super-block): per 32-element
// chunk 32 bytes, int16 lanes 0 and 8 the sums of its two halves of 16
// values (taken from the values, not the bsums, so that any bytes give
// tensor.VecDot's result), the other lanes zero.
func lbPrepIQ(x []byte, nsb int, c []byte) {
	clear(c[:256*nsb])
	for s := 0; s < nsb; s++ {
		qs := x[292*s+4 : 292*s+260]
		for ch := 0; ch < 8; ch++ {
			var a, b int32
			for _, v := range qs[32*ch : 32*ch+16] {
				a += int32(int8(v))
			}
			for _, v := range qs[32*ch+16 : 32*ch+32] {
				b += int32(int8(v))
			}
			o := c[256*s+32*ch:]
			o[0], o[1] = byte(a), byte(a>>8)
			o[16], o[17] = byte(b), byte(b>>8)
		}
	}
}

// The fused kernels run for every batch size: re-decoding each row per
// token costs about what the canonical path's per-token work does (on a
// 1408×512 Q3_K matrix, 64 tokens: 12 ms fused, 20 ms canonical), and one
// path per type keeps the code simple.

// lowbitOK reports whether type t has a fused kernel at this CPU's level.
func lowbitOK(t tensor.Type) bool {
	if level() == cpu.Generic {
		return false
	}
	switch t {
	case tensor.Q3_K, tensor.Q2_K, tensor.IQ4_XS, tensor.IQ3_XXS, tensor.IQ3_S, tensor.IQ2_XXS,
		tensor.IQ2_XS, tensor.IQ2_S, tensor.IQ1_S, tensor.IQ1_M:
		return true
	}
	return false
}

// gemmLowbit is Gemm by t's fused kernel, one call per token over all m
// rows (direct calls, so that nothing escapes).
func gemmLowbit(t tensor.Type, m, nTok, k int, w []byte, ldw int, x []byte, ldx int, y []float32, ldy int) {
	nsb := k / 256
	a := lbArg{w: ptr(w), stride: ldw, rows: m, nsb: nsb, grid: lbGrid(t), signs: lbSignsP}
	var s *scratch
	var c []byte
	if a.grid != nil {
		s = getScratch()
		c = s.bytes(256 * nsb)
		a.c = ptr(c)
	}
	for j := 0; j < nTok; j++ {
		a.x = ptr(x[j*ldx:])
		a.y = unsafe.Pointer(&y[j*ldy])
		if c != nil {
			lbPrepIQ(x[j*ldx:], nsb, c)
		}
		switch t {
		case tensor.Q3_K:
			lbQ3_KAVX2(&a)
		case tensor.Q2_K:
			lbQ2_KAVX2(&a)
		case tensor.IQ4_XS:
			lbIQ4_XSAVX2(&a)
		case tensor.IQ3_XXS:
			lbIQ3_XXSAVX2(&a)
		case tensor.IQ3_S:
			lbIQ3_SAVX2(&a)
		case tensor.IQ2_XXS:
			lbIQ2_XXSAVX2(&a)
		case tensor.IQ2_XS:
			lbIQ2_XSAVX2(&a)
		case tensor.IQ2_S:
			lbIQ2_SAVX2(&a)
		case tensor.IQ1_S:
			lbIQ1_SAVX2(&a)
		case tensor.IQ1_M:
			lbIQ1_MAVX2(&a)
		}
	}
	if s != nil {
		putScratch(s)
	}
}
