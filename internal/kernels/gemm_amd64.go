//go:build amd64

package kernels

import (
	"sync"
	"unsafe"

	"github.com/kvserve/kvserve/internal/cpu"
)

// GEMM blocking. The micro-kernel keeps R weight rows (8 for AVX-512, 4 for
// AVX2) × 2 tokens of canonical accumulators in registers. Its weights come
// from a panel packed to f32 (exact for f16/bf16) in block-interleaved
// order — block b of row r at panel[(b·R + r)·L] — covering gemmKC columns,
// so the panel stays in L1 while up to gemmNC tokens (whose gemmKC-column
// slices stay in L2) stream past it. When k > gemmKC the accumulators are
// parked in scratch between column chunks: the lanes, and so the
// canonical order, are unchanged. Rows beyond a multiple of R and an odd
// last token go through the dot kernels, which follow the same order.
const (
	gemmKC = 512 // columns per panel (16 KiB of f32 for 8 rows); a multiple of 16
	gemmNC = 64  // tokens per block (their panel-wide x slices: 128 KiB); even
	maxR   = 8
	maxL   = 16
)

type gemmScratch struct {
	panel [maxR * gemmKC]float32
	acc   [gemmNC * maxR * maxL]float32
}

var scratchPool = sync.Pool{New: func() any { return new(gemmScratch) }}

func gemm(t wtype, m, n, k int, w unsafe.Pointer, x, y []float32, ldy int) {
	lv := level()
	switch {
	case lv == cpu.Generic:
		gemmGeneric(t, m, n, k, w, x, y, ldy)
		return
	case m == 0 || n == 0:
		return
	case k == 0:
		for j := 0; j < n; j++ {
			clear(y[j*ldy : j*ldy+m])
		}
		return
	}
	R, L := 4, 8
	if lv == cpu.AVX512 {
		R, L = 8, 16
	}
	esz := t.size()
	mFull := m - m%R
	nPair := n &^ 1
	if mFull > 0 && nPair > 0 {
		s := scratchPool.Get().(*gemmScratch)
		for j0 := 0; j0 < nPair; j0 += gemmNC {
			j1 := min(j0+gemmNC, nPair)
			for i0 := 0; i0 < mFull; i0 += R {
				for k0 := 0; k0 < k; k0 += gemmKC {
					kc := min(gemmKC, k-k0)
					for r := 0; r < R; r++ {
						pack(lv, t, &s.panel[r*L], unsafe.Add(w, ((i0+r)*k+k0)*esz), kc)
					}
					flags := 0
					if k0 > 0 {
						flags |= 1 // resume parked accumulators
					}
					if k0+kc == k {
						flags |= 2 // reduce and store to y
					}
					for j := j0; j < j1; j += 2 {
						micro(lv, &s.panel[0], &x[j*k+k0], k, kc, &s.acc[(j-j0)*R*L], &y[j*ldy+i0], ldy, flags)
					}
				}
			}
		}
		scratchPool.Put(s)
	}
	for j := 0; j < n; j++ {
		i0 := mFull
		if j >= nPair {
			i0 = 0
		}
		if i0 < m {
			dotRowsAsm(lv, t, unsafe.Add(w, i0*k*esz), k, x[j*k:(j+1)*k], y[j*ldy+i0:j*ldy+m])
		}
	}
}

func pack(lv cpu.Level, t wtype, dst *float32, w unsafe.Pointer, n int) {
	if lv == cpu.AVX512 {
		switch t {
		case wF32:
			packF32AVX512(dst, (*float32)(w), n)
		case wF16:
			packF16AVX512(dst, (*uint16)(w), n)
		default:
			packBF16AVX512(dst, (*uint16)(w), n)
		}
		return
	}
	switch t {
	case wF32:
		packF32AVX2(dst, (*float32)(w), n)
	case wF16:
		packF16AVX2(dst, (*uint16)(w), n)
	default:
		packBF16AVX2(dst, (*uint16)(w), n)
	}
}

func micro(lv cpu.Level, panel, x *float32, ldx, n int, acc, y *float32, ldy, flags int) {
	if lv == cpu.AVX512 {
		gemm8x2AVX512(panel, x, ldx, n, acc, y, ldy, flags)
	} else {
		gemm4x2AVX2(panel, x, ldx, n, acc, y, ldy, flags)
	}
}
