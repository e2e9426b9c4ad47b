//go:build amd64

package qkernels

import (
	"unsafe"

	"github.com/kvserve/kvserve/internal/cpu"
	"github.com/kvserve/kvserve/internal/tensor"
)

// Fused kernels of the low-bit super-block types (lowbit_amd64.s, written
// by hand): for one token, each weight row is decoded in registers from
// its packed bytes and dotted with the Q8_K activations, as llama.cpp's
// ggml_vec_dot_*_q8_K do, instead of being unpacked in Go into the Q6_K
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
// lowbit_amd64.s; TestLowbitLayout checks them).
type lbArg struct {
	w      unsafe.Pointer // 0: first weight row
	stride int            // 8: bytes between weight rows
	rows   int            // 16: rows
	x      unsafe.Pointer // 24: the Q8_K activation row
	nsb    int            // 32: super-blocks per row
	y      unsafe.Pointer // 40: rows float32 outputs
	c      unsafe.Pointer // 48: per-type prepared activations (unused yet)
}

//go:noescape
func lbQ3_KAVX2(a *lbArg)

//go:noescape
func lbQ2_KAVX2(a *lbArg)

//go:noescape
func lbIQ4_XSAVX2(a *lbArg)

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
	case tensor.Q3_K, tensor.Q2_K, tensor.IQ4_XS:
		return true
	}
	return false
}

// gemmLowbit is Gemm by t's fused kernel, one call per token over all m
// rows (direct calls, so that nothing escapes).
func gemmLowbit(t tensor.Type, m, nTok, k int, w []byte, ldw int, x []byte, ldx int, y []float32, ldy int) {
	a := lbArg{w: ptr(w), stride: ldw, rows: m, nsb: k / 256}
	for j := 0; j < nTok; j++ {
		a.x = ptr(x[j*ldx:])
		a.y = unsafe.Pointer(&y[j*ldy])
		switch t {
		case tensor.Q3_K:
			lbQ3_KAVX2(&a)
		case tensor.Q2_K:
			lbQ2_KAVX2(&a)
		case tensor.IQ4_XS:
			lbIQ4_XSAVX2(&a)
		}
	}
}
