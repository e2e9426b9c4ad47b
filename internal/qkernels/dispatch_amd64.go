//go:build amd64

package qkernels

import (
	"unsafe"

	"github.com/kvserve/kvserve/internal/cpu"
	"github.com/kvserve/kvserve/internal/tensor"
)

// The assembly is called directly (never through function values), so
// that escape analysis sees its //go:noescape and the argument blocks and
// outputs stay on the stack.

const (
	opDotRows = iota
	opUnpack
	opTranspose
	opGemm
)

// call512 runs AVX-512 kernel op for weight type t.
func call512(op int, t tensor.Type, a *karg) {
	switch op {
	case opDotRows:
		switch t {
		case tensor.Q8_0:
			dotRowsQ8_0AVX512(a)
		case tensor.Q4_0:
			dotRowsQ4_0AVX512(a)
		case tensor.Q4_1:
			dotRowsQ4_1AVX512(a)
		case tensor.Q5_0:
			dotRowsQ5_0AVX512(a)
		case tensor.Q5_1:
			dotRowsQ5_1AVX512(a)
		case tensor.IQ4_NL:
			dotRowsIQ4_NLAVX512(a)
		case tensor.MXFP4:
			dotRowsMXFP4AVX512(a)
		case tensor.Q4_K:
			dotRowsQ4_KAVX512(a)
		case tensor.Q5_K:
			dotRowsQ5_KAVX512(a)
		case tensor.Q6_K:
			dotRowsQ6_KAVX512(a)
		}
	case opUnpack:
		switch t {
		case tensor.Q8_0:
			unpackRowsQ8_0AVX512(a)
		case tensor.Q4_0:
			unpackRowsQ4_0AVX512(a)
		case tensor.Q4_1:
			unpackRowsQ4_1AVX512(a)
		case tensor.Q5_0:
			unpackRowsQ5_0AVX512(a)
		case tensor.Q5_1:
			unpackRowsQ5_1AVX512(a)
		case tensor.IQ4_NL:
			unpackRowsIQ4_NLAVX512(a)
		case tensor.MXFP4:
			unpackRowsMXFP4AVX512(a)
		case tensor.Q4_K:
			unpackRowsQ4_KAVX512(a)
		case tensor.Q5_K:
			unpackRowsQ5_KAVX512(a)
		case tensor.Q6_K:
			unpackRowsQ6_KAVX512(a)
		}
	case opTranspose:
		switch t {
		case tensor.Q8_0, tensor.Q4_0, tensor.Q5_0, tensor.IQ4_NL, tensor.MXFP4:
			transposeLAVX512(a)
		case tensor.Q4_1, tensor.Q5_1:
			transposeLMAVX512(a)
		case tensor.Q4_K:
			transposeQ4_KAVX512(a)
		case tensor.Q5_K:
			transposeQ5_KAVX512(a)
		case tensor.Q6_K:
			transposeQ6_KAVX512(a)
		}
	case opGemm:
		switch t {
		case tensor.Q8_0, tensor.Q5_0, tensor.IQ4_NL, tensor.MXFP4:
			gemmLAAVX512(a)
		case tensor.Q4_0:
			gemmLBAVX512(a)
		case tensor.Q4_1, tensor.Q5_1:
			gemmLCAVX512(a)
		case tensor.Q4_K, tensor.Q5_K:
			gemmQ4_KAVX512(a)
		case tensor.Q6_K:
			gemmQ6_KAVX512(a)
		}
	}
}

// panelRec512 is the GEMM panel record size (bytes per block or super-block).
func panelRec512(t tensor.Type) int {
	switch t {
	case tensor.Q4_1, tensor.Q5_1:
		return 640
	case tensor.Q4_K, tensor.Q5_K:
		return 82 * 64
	case tensor.Q6_K:
		return 81 * 64
	}
	return 576
}

// gemmMinTok is the batch size from which the AVX-512 GEMM packs panels;
// smaller batches run the matrix-vector kernel once per token.
var gemmMinTok = 3

// dotRowsL512 runs the AVX-512 matrix-vector kernel for a legacy type
// (rows of at most 4 blocks, e.g. attention heads, take the short-row
// kernel).
func dotRowsL512(t tensor.Type, n int, w []byte, stride, rows int, x []byte, y []float32) {
	dotRowsL512s(t, n, w, stride, 16*t.RowSize(32), 16*stride, rows, x, y)
}

// dotRowsL512s is dotRowsL512 over any layout where row r's chunk c (16
// blocks) starts at w[(r/16)·bstride + c·cstride + (r%16)·stride]: the
// row-major one, or packed weights (packed.go).
func dotRowsL512s(t tensor.Type, n int, w []byte, stride, cstride, bstride, rows int, x []byte, y []float32) {
	nb := n / 32
	s := getScratch()
	var a karg
	a.nb = nb
	a.w = ptr(w)
	a.stride = stride
	a.cstride = cstride
	a.bstride = bstride
	a.rows = rows
	a.rowB = t.RowSize(n)
	a.y = unsafe.Pointer(&y[0])
	if nb <= 4 {
		pb := s.bytes(prepLSize(nb))
		a.x, a.a1, a.a2, a.a3 = prepL(t, x, nb, pb)
		// Replicate the 4 blocks' scalars over the 16 lanes.
		nbP := roundUp(nb, 16)
		for _, off := range []int{nbP * 32, nbP * 36, nbP * 40} {
			for r := 1; r < 4; r++ {
				copy(pb[off+16*r:off+16*r+16], pb[off:off+16])
			}
		}
		shortL512(t, &a)
		putScratch(s)
		return
	}
	a.x, a.a1, a.a2, a.a3 = prepL(t, x, nb, s.bytes(prepLSize(nb)))
	call512(opDotRows, t, &a)
	putScratch(s)
}

func shortL512(t tensor.Type, a *karg) {
	switch t {
	case tensor.Q8_0:
		dotRowsShortQ8_0AVX512(a)
	case tensor.Q4_0:
		dotRowsShortQ4_0AVX512(a)
	case tensor.Q4_1:
		dotRowsShortQ4_1AVX512(a)
	case tensor.Q5_0:
		dotRowsShortQ5_0AVX512(a)
	case tensor.Q5_1:
		dotRowsShortQ5_1AVX512(a)
	case tensor.IQ4_NL:
		dotRowsShortIQ4_NLAVX512(a)
	case tensor.MXFP4:
		dotRowsShortMXFP4AVX512(a)
	}
}

func gemmL512(t tensor.Type, m, nTok, kk int, w []byte, ldw int, x []byte, ldx int, y []float32, ldy int) {
	gemmL512p(t, m, nTok, kk, w, ldw, false, x, ldx, y, ldy)
}

// gemmL512p is gemmL512; with packed, w holds packed rows (packed.go, first row a
// multiple of 16) and ldw is ignored.
func gemmL512p(t tensor.Type, m, nTok, kk int, w []byte, ldw int, packed bool, x []byte, ldx int, y []float32, ldy int) {
	if nTok < gemmMinTok && !packed {
		rx := t.VecDotType().RowSize(kk)
		for j := 0; j < nTok; j++ {
			dotRowsL512(t, kk, w, ldw, m, x[j*ldx:j*ldx+rx], y[j*ldy:])
		}
		return
	}
	nb := kk / 32
	nbP := roundUp(nb, 16)
	_, _, canB := legacySizes(nb)
	ustride := roundUp(canB, 64)
	tiles := (nTok + 7) / 8
	packB := nb * 8 * 48
	panelB := nbP * panelRec512(t)
	s := getScratch()
	rowB := t.RowSize(kk)
	rm := 0 // row-major copy of a packed batch of 16 rows
	if packed {
		rm = 16 * rowB
	}
	buf := s.bytes(16*ustride + panelB + tiles*packB + rm)
	can := buf[:16*ustride]
	panel := buf[16*ustride : 16*ustride+panelB]
	packs := buf[16*ustride+panelB : 16*ustride+panelB+tiles*packB]
	rmBuf := buf[16*ustride+panelB+tiles*packB:]
	var a karg
	for r := 15; r >= 0; r-- {
		a.u, a.c1, a.c2 = canonL(can[r*ustride:r*ustride+canB], nb)
	}
	for tile := 0; tile < tiles; tile++ {
		packL(t, x, ldx, 8*tile, nTok, nb, packs[tile*packB:(tile+1)*packB])
	}
	var out [8 * 16]float32
	a.stride = ldw
	a.rowB = t.RowSize(kk)
	a.nb = nb
	a.ustride = ustride
	a.panel = ptr(panel)
	for i0 := 0; i0 < m; i0 += 16 {
		rows := min(16, m-i0)
		if packed {
			unpackPacked(t, kk, w, i0, rows, rmBuf)
			a.w = ptr(rmBuf)
			a.stride = rowB
		} else {
			a.w = unsafe.Pointer(&w[i0*ldw])
		}
		a.rows = rows
		call512(opUnpack, t, &a)
		call512(opTranspose, t, &a)
		for tile := 0; tile < tiles; tile++ {
			a.pack = ptr(packs[tile*packB:])
			a.y = unsafe.Pointer(&out[0])
			call512(opGemm, t, &a)
			for tt := 0; tt < 8 && 8*tile+tt < nTok; tt++ {
				copy(y[(8*tile+tt)*ldy+i0:(8*tile+tt)*ldy+i0+rows], out[16*tt:16*tt+rows])
			}
		}
	}
	putScratch(s)
}

func dotRowsK512(t tensor.Type, n int, w []byte, stride, rows int, x []byte, y []float32) {
	dotRowsK512s(t, n, w, stride, 16*t.RowSize(256), 16*stride, rows, x, y)
}

// dotRowsK512s is dotRowsK512 over any layout where row r's chunk c (16
// super-blocks) starts at w[(r/16)·bstride + c·cstride + (r%16)·stride].
func dotRowsK512s(t tensor.Type, n int, w []byte, stride, cstride, bstride, rows int, x []byte, y []float32) {
	nsb := n / 256
	s := getScratch()
	pb := s.bytes(prepKSize(nsb))
	prepK(t, x, nsb, pb)
	a := karg{w: ptr(w), stride: stride, rows: rows, rowB: t.RowSize(n), nb: nsb,
		x: ptr(x), a1: ptr(pb), y: unsafe.Pointer(&y[0]), cstride: cstride, bstride: bstride}
	call512(opDotRows, t, &a)
	putScratch(s)
}

func gemmK512(t tensor.Type, m, nTok, kk int, w []byte, ldw int, x []byte, ldx int, y []float32, ldy int) {
	gemmK512p(t, m, nTok, kk, w, ldw, false, x, ldx, y, ldy)
}

// gemmK512p is gemmK512; with packed, w holds packed rows (packed.go, first row a
// multiple of 16) and ldw is ignored.
func gemmK512p(t tensor.Type, m, nTok, kk int, w []byte, ldw int, packed bool, x []byte, ldx int, y []float32, ldy int) {
	if nTok < gemmMinTok && !packed {
		rx := t.VecDotType().RowSize(kk)
		for j := 0; j < nTok; j++ {
			dotRowsK512(t, kk, w, ldw, m, x[j*ldx:j*ldx+rx], y[j*ldy:])
		}
		return
	}
	nsb := kk / 256
	nsbP := roundUp(nsb, 16)
	_, _, _, canB := kSizes(nsb)
	ustride := roundUp(canB, 64)
	tiles := (nTok + 7) / 8
	packB := nsb * 8 * packRecK
	panelB := nsbP * panelRec512(t)
	s := getScratch()
	rowB := t.RowSize(kk)
	rm := 0 // row-major copy of a packed batch of 16 rows
	if packed {
		rm = 16 * rowB
	}
	buf := s.bytes(16*ustride + panelB + tiles*packB + rm)
	can := buf[:16*ustride]
	panel := buf[16*ustride : 16*ustride+panelB]
	packs := buf[16*ustride+panelB : 16*ustride+panelB+tiles*packB]
	rmBuf := buf[16*ustride+panelB+tiles*packB:]
	var a karg
	for r := 15; r >= 0; r-- {
		a.u, a.c1, a.c2, a.c3 = canonK(can[r*ustride:r*ustride+canB], nsb)
	}
	for tile := 0; tile < tiles; tile++ {
		packK(t, x, ldx, 8*tile, nTok, nsb, packs[tile*packB:(tile+1)*packB])
	}
	var out [8 * 16]float32
	a.stride = ldw
	a.rowB = t.RowSize(kk)
	a.nb = nsb
	a.ustride = ustride
	a.panel = ptr(panel)
	for i0 := 0; i0 < m; i0 += 16 {
		rows := min(16, m-i0)
		if packed {
			unpackPacked(t, kk, w, i0, rows, rmBuf)
			a.w = ptr(rmBuf)
			a.stride = rowB
		} else {
			a.w = unsafe.Pointer(&w[i0*ldw])
		}
		a.rows = rows
		call512(opUnpack, t, &a)
		call512(opTranspose, t, &a)
		for tile := 0; tile < tiles; tile++ {
			a.pack = ptr(packs[tile*packB:])
			a.y = unsafe.Pointer(&out[0])
			call512(opGemm, t, &a)
			for tt := 0; tt < 8 && 8*tile+tt < nTok; tt++ {
				copy(y[(8*tile+tt)*ldy+i0:(8*tile+tt)*ldy+i0+rows], out[16*tt:16*tt+rows])
			}
		}
	}
	putScratch(s)
}

// quantKV runs the KV-cache quantizer for t (Q4_0, Q4_1, Q5_0, Q5_1 or
// IQ4_NL) on the current path.
func quantKV(t tensor.Type, dst []byte, src []float32) {
	nb := len(src) / 32
	if nb == 0 {
		return
	}
	if level() == cpu.Generic {
		quantGeneric(t, dst, src)
		return
	}
	if t == tensor.IQ4_NL {
		quantIQ4NL(dst, src)
		return
	}
	a := karg{x: unsafe.Pointer(&src[0]), y: ptr(dst), nb: nb}
	if level() == cpu.AVX512 {
		switch t {
		case tensor.Q4_0:
			quantQ4_0AVX512(&a)
		case tensor.Q4_1:
			quantQ4_1AVX512(&a)
		case tensor.Q5_0:
			quantQ5_0AVX512(&a)
		case tensor.Q5_1:
			quantQ5_1AVX512(&a)
		}
		return
	}
	switch t {
	case tensor.Q4_0:
		quantQ4_0AVX2(&a)
	case tensor.Q4_1:
		quantQ4_1AVX2(&a)
	case tensor.Q5_0:
		quantQ5_0AVX2(&a)
	case tensor.Q5_1:
		quantQ5_1AVX2(&a)
	}
}

// quantIQ4NL quantizes IQ4_NL rows. AVX-512: whole groups of 16 blocks
// with the lane-per-block kernel; a rest of more than 8 blocks on a
// zero-padded copy with the same kernel, a shorter one (a head of a token
// is 2 to 4 blocks) with the four-blocks-at-a-time kernel. AVX2: groups
// of 8, then the last blocks on a zero-padded copy. Zero blocks are
// quantized on their own and their output dropped.
func quantIQ4NL(dst []byte, src []float32) {
	nb := len(src) / 32
	if level() == cpu.AVX512 {
		done := nb / 16 * 16
		if done > 0 {
			a := karg{x: unsafe.Pointer(&src[0]), y: ptr(dst), nb: done / 16}
			quantIQ4_NLAVX512(&a)
		}
		switch r := nb - done; {
		case r > 8:
			quantIQ4NLPadded512(dst[18*done:], src[32*done:])
		case r > 0:
			a := karg{x: unsafe.Pointer(&src[32*done]), y: unsafe.Pointer(&dst[18*done]), nb: r}
			quantIQ4_NL4AVX512(&a)
		}
		return
	}
	done := nb / 8 * 8
	if done > 0 {
		a := karg{x: unsafe.Pointer(&src[0]), y: ptr(dst), nb: done / 8}
		quantIQ4_NLAVX2(&a)
	}
	if done < nb {
		quantIQ4NLPadded2(dst[18*done:], src[32*done:])
	}
}

// quantIQ4NLPadded512 quantizes fewer than 16 blocks with the 16-lane
// kernel, through zero-padded copies (its own frame, so that the common
// path's stays small).
func quantIQ4NLPadded512(dst []byte, src []float32) {
	var in [16 * 32]float32
	var out [16 * 18]byte
	copy(in[:], src)
	a := karg{x: unsafe.Pointer(&in[0]), y: unsafe.Pointer(&out[0]), nb: 1}
	quantIQ4_NLAVX512(&a)
	copy(dst, out[:len(dst)])
}

// quantIQ4NLPadded2 is quantIQ4NLPadded512 for fewer than 8 blocks and
// the 8-lane AVX2 kernel.
func quantIQ4NLPadded2(dst []byte, src []float32) {
	var in [8 * 32]float32
	var out [8 * 18]byte
	copy(in[:], src)
	a := karg{x: unsafe.Pointer(&in[0]), y: unsafe.Pointer(&out[0]), nb: 1}
	quantIQ4_NLAVX2(&a)
	copy(dst, out[:len(dst)])
}

// gemmPackedFast runs GemmPacked on the AVX-512 path, and for the row-lane
// types on the AVX2 path (the lane kernels, maxLaneTok tokens per pass
// over a tile of rows; false: not here).
//
// laneGemm lists the lane types whose batches of more than maxLaneTok
// tokens (prefill) run the lane kernels 4 tokens at a time over L2-sized
// tiles (gemmLanes) rather than copying the rows back for the GEMM.
// BenchmarkLanesPrefill: Q4_K gains (its GEMM unpacks the 6-bit scales
// per row); Q6_K and Q8_0 lose (their GEMMs are cheaper per weight than
// the lane kernels plus the per-call activation preparation).
var laneGemm = map[tensor.Type]bool{tensor.Q4_K: true}

func gemmPackedFast(t tensor.Type, r0, m, nTok, k int, p []byte, x []byte, ldx int, y []float32, ldy int) bool {
	if level() != cpu.AVX512 {
		if !laneFast(t) {
			return false // back to row-major, then Gemm
		}
		rowB, _ := packGeom(t, k)
		gemvLanesWith(lanesAVX2For(t), t, m, nTok, k, p[r0*rowB:], x, ldx, y, ldy)
		return true
	}
	rowB, cb := packGeom(t, k)
	w := p[r0*rowB:]
	legacy := isLegacy(t)
	if laneTypes[t] {
		switch {
		case LanesInPlace(t, nTok):
			if ks, ok := lanes512More[t]; ok {
				gemvLanesWith(&ks, t, m, nTok, k, w, x, ldx, y, ldy)
			} else {
				gemmLanes(t, m, nTok, k, w, x, ldx, y, ldy)
			}
		case legacy:
			gemmL512p(t, m, nTok, k, w, rowB, true, x, ldx, y, ldy)
		default:
			gemmK512p(t, m, nTok, k, w, rowB, true, x, ldx, y, ldy)
		}
		return true
	}
	if nTok == 2 {
		dotRows2Packed(t, m, k, w, cb, rowB, x, ldx, y, ldy)
		return true
	}
	if nTok < gemmMinTok {
		rx := t.VecDotType().RowSize(k)
		for j := 0; j < nTok; j++ {
			if legacy {
				dotRowsL512s(t, k, w, cb, 16*cb, 16*rowB, m, x[j*ldx:j*ldx+rx], y[j*ldy:])
			} else {
				dotRowsK512s(t, k, w, cb, 16*cb, 16*rowB, m, x[j*ldx:j*ldx+rx], y[j*ldy:])
			}
		}
		return true
	}
	if legacy {
		gemmL512p(t, m, nTok, k, w, rowB, true, x, ldx, y, ldy)
	} else {
		gemmK512p(t, m, nTok, k, w, rowB, true, x, ldx, y, ldy)
	}
	return true
}

// LanesInPlace reports whether GemmPacked on weights of type t for nTok
// tokens runs the row-lane kernels over the packed rows in place, the
// activations prepared once per call: such calls want many rows each
// (the model's tiling), where the copy-back GEMM wants short tiles.
func LanesInPlace(t tensor.Type, nTok int) bool {
	if level() != cpu.AVX512 {
		return laneFast(t)
	}
	return laneTypes[t] && (nTok <= maxLaneTok || nTok <= laneSmallBatch || laneGemm[t])
}

// PackFast reports whether packed weights (Pack) are read in place here:
// the AVX-512 path.
func PackFast() bool { return level() == cpu.AVX512 }

// PackFastFor reports whether packed weights of type t are read in place
// (and faster) on the current path: every packed type on the AVX-512
// path; on the AVX2 path the row-lane types with AVX2 kernels
// (lanes_avx2_amd64.go), whose decode reads them in place (prefill copies
// them back to row-major per tile of rows).
func PackFastFor(t tensor.Type) bool { return PackFast() || laneFast(t) }

// packedBlockRows is how many packed rows the two-token matrix-vector
// product runs per token before moving on: their bytes (557 KB for rows of
// 8192 Q8_0 values) stay in L2 for the second token, so the matrix is
// read from memory once.
const packedBlockRows = 64

// dotRows2Packed is the matrix-vector product of packed rows with two
// tokens (two decoding slots): each token's activations are prepared once,
// then blocks of rows are run for token 0 and token 1 in turn. Each output
// is computed by the same kernel as for one token, so bit-identical.
func dotRows2Packed(t tensor.Type, m, k int, w []byte, cb, rowB int, x []byte, ldx int, y []float32, ldy int) {
	s0, s1 := getScratch(), getScratch()
	var a [2]karg
	legacy := isLegacy(t)
	for j, s := range []*scratch{s0, s1} {
		xj := x[j*ldx:]
		a[j] = karg{stride: cb, cstride: 16 * cb, bstride: 16 * rowB, rowB: rowB}
		if legacy {
			nb := k / 32
			a[j].nb = nb
			a[j].x, a[j].a1, a[j].a2, a[j].a3 = prepL(t, xj, nb, s.bytes(prepLSize(nb)))
		} else {
			nsb := k / 256
			a[j].nb = nsb
			pb := s.bytes(prepKSize(nsb))
			prepK(t, xj, nsb, pb)
			a[j].x, a[j].a1 = ptr(xj), ptr(pb)
		}
	}
	for i0 := 0; i0 < m; i0 += packedBlockRows {
		rows := min(packedBlockRows, m-i0)
		for j := range a {
			a[j].w = ptr(w[i0*rowB:])
			a[j].rows = rows
			a[j].y = unsafe.Pointer(&y[j*ldy+i0])
			call512(opDotRows, t, &a[j])
		}
	}
	putScratch(s0)
	putScratch(s1)
}
