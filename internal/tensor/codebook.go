package tensor

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync/atomic"
)

// The codebook cache types (kvserve's own, not ggml's): rows that were
// Hadamard-rotated per head are close to Gaussian, so each block stores one
// binary16 scale d and, per value, the index of the nearest of a fixed set
// of levels L, fitted by Lloyd's algorithm (each level the centroid of the
// values coded with it, cell edges halfway between levels) to blocks of
// normal values under the block scales the encoder chooses. A value decodes
// as d·L[index].
//
//	cb4: 64 values, 16 levels, 2+32 bytes = 4.25 bits per value
//	cb3: 64 values,  8 levels, 2+24 bytes = 3.25 bits per value
//	cb2: 32 values,  4 levels, 2+8 bytes  = 2.5 bits per value
//
// Encoding a block tries a few scales (encodeCodebookBlock) and keeps the
// one of least squared error. Layouts (bytes after the 2-byte scale):
//
//	cb4: byte j (j < 32) holds value j in its low nibble and value j+32 in
//	     its high nibble (q4_0's order).
//	cb3: byte j (j < 16) holds the low two bits of values j, j+16, j+32,
//	     j+48 in bits 0-1, 2-3, 4-5, 6-7; byte 16+j (j < 8) holds the high
//	     bits of values j, j+8, ..., j+56 in bits 0..7.
//	cb2: byte j (j < 8) holds values j, j+8, j+16, j+24 in bits 0-1, 2-3,
//	     4-5, 6-7.
//
// The level tables are part of the format: CodebookVersion names them, and
// a slot file records it (a file written with other levels is refused).
// Their dot products take float32 activations (VecDot F32): the queries of
// attention are not quantized.

// CodebookVersion identifies the codebook types' levels and layouts. Change
// it whenever either changes.
const CodebookVersion = 1

// The codebook types' numbers: outside ggml's enum as used today (they
// never appear in GGUF files, only in kvserve's cache and slot files).
const (
	CB4 Type = 60
	CB3 Type = 61
	CB2 Type = 62
)

// The levels, ascending, largest 1: Lloyd's iteration run with the
// encoder below on blocks of normal samples (TestCodebookFit regenerates
// them: KVSERVE_CBFIT=1 go test ./internal/tensor -run CodebookFit -v).
// Relative squared error on normal blocks: cb4 0.0070 (q4_0: 0.0071 at 4.5
// bits), cb3 0.029, cb2 0.105.
var (
	cbLevels16 = [16]float32{-1, -0.758529, -0.591723, -0.457840, -0.342216, -0.237902, -0.140369, -0.046402,
		0.046402, 0.140369, 0.237902, 0.342216, 0.457840, 0.591723, 0.758529, 1}
	cbLevels8 = [8]float32{-1, -0.604277, -0.333660, -0.107129, 0.107129, 0.333660, 0.604277, 1}
	cbLevels4 = [4]float32{-1, -0.289477, 0.289477, 1}
)

// IsCodebook reports whether t is one of the codebook types, whose rows
// must be stored rotated (their levels are fitted to rotated rows).
func (t Type) IsCodebook() bool { return t == CB4 || t == CB3 || t == CB2 }

// CodebookLevels returns the levels of codebook type t (ascending; nil for
// other types). The slice must not be modified.
func CodebookLevels(t Type) []float32 {
	switch t {
	case CB4:
		return cbLevels16[:]
	case CB3:
		return cbLevels8[:]
	case CB2:
		return cbLevels4[:]
	}
	return nil
}

// codebookSSE returns the squared error of x coded with scale d and the
// indices in idx.
func codebookSSE(L []float32, x []float32, d float32, idx []uint8) float32 {
	var e float32
	for i, v := range x {
		r := v - float32(d*L[idx[i]])
		e += float32(r * r)
	}
	return e
}

// cbScaleSteps are the fractions of amax/Lmax tried as a block's scale.
var cbScaleSteps = [...]float32{1, 0.9, 0.8, 0.7, 0.6}

// cbScaleStepsFine are the fractions tried by CodebookScaleFine.
var cbScaleStepsFine = [...]float32{1, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5}

// CodebookScaleMode is how the codebook encoder picks a block's scale. It
// changes only which scale and indices are stored, never the format: pages
// encoded in any mode decode alike (the levels were fitted under
// CodebookScaleSearch).
type CodebookScaleMode int32

const (
	// CodebookScaleSearch (the default): amax/Lmax × {1, 0.9, 0.8, 0.7,
	// 0.6}, then the least-squares scale of the best one's indices; the
	// scale of least squared error is kept.
	CodebookScaleSearch CodebookScaleMode = iota
	// CodebookScaleMaxAbs: amax/Lmax alone (the largest value coded exactly),
	// as ggml's formats choose.
	CodebookScaleMaxAbs
	// CodebookScaleFine: eleven fractions 1, 0.95, ..., 0.5, then two rounds
	// of the least-squares refit.
	CodebookScaleFine
)

var cbScaleMode atomic.Int32

// SetCodebookScaleMode sets how every later codebook encoding picks its
// block scales (process-wide; for measuring what the search buys).
func SetCodebookScaleMode(m CodebookScaleMode) { cbScaleMode.Store(int32(m)) }

// ParseCodebookScaleMode parses "search", "maxabs" or "fine".
func ParseCodebookScaleMode(s string) (CodebookScaleMode, error) {
	switch s {
	case "search", "":
		return CodebookScaleSearch, nil
	case "maxabs":
		return CodebookScaleMaxAbs, nil
	case "fine":
		return CodebookScaleFine, nil
	}
	return 0, fmt.Errorf("codebook scale mode %q: want search, maxabs or fine", s)
}

// encodeCodebookBlock chooses the scale and indices of one block of x:
// scales amax/Lmax·f for the fractions f of cbScaleSteps, then the least-
// squares scale Σx·L/ΣL² of the best one's indices, keeping whichever has
// the smallest squared error (every scale rounded to binary16 first, as it
// is stored).
func encodeCodebookBlock(L []float32, x []float32, idx []uint8) float32 {
	var amax float32
	for _, v := range x {
		amax = max(amax, abs32(v))
	}
	if amax == 0 || amax != amax || math.IsInf(float64(amax), 0) {
		for i := range idx {
			idx[i] = uint8(len(L) / 2)
		}
		return 0
	}
	var tmp [64]uint8
	t := tmp[:len(x)]
	// The cell edges: a value goes to the first level whose upper edge is
	// above it (ties to the lower level).
	var midBuf [15]float32
	mids := midBuf[:len(L)-1]
	for k := range mids {
		mids[k] = (L[k] + L[k+1]) * 0.5
	}
	best, bestE := float32(0), float32(math.Inf(1))
	// try codes x with scale d (rounded to binary16 as stored) and keeps it
	// if its squared error is the least so far; it stops as soon as the
	// running error reaches the best (the sum never decreases), which
	// changes no choice.
	try := func(d float32) {
		d = F16ToF32(F32ToF16(d))
		if d == 0 || math.IsInf(float64(d), 0) {
			return
		}
		inv := 1 / d
		var e float32
		for i, v := range x {
			u := v * inv
			lo, hi := 0, len(mids)
			for lo < hi {
				mid := (lo + hi) / 2
				if u > mids[mid] {
					lo = mid + 1
				} else {
					hi = mid
				}
			}
			t[i] = uint8(lo)
			r := v - float32(d*L[lo])
			e += float32(r * r)
			if !(e < bestE) {
				return
			}
		}
		best, bestE = d, e
		copy(idx, t)
	}
	lmax := L[len(L)-1]
	mode := CodebookScaleMode(cbScaleMode.Load())
	steps, refits := cbScaleSteps[:], 1
	switch mode {
	case CodebookScaleMaxAbs:
		steps, refits = steps[:1], 0
	case CodebookScaleFine:
		steps, refits = cbScaleStepsFine[:], 2
	}
	for _, f := range steps {
		try(amax / lmax * f)
	}
	if best == 0 {
		return 0
	}
	for r := 0; r < refits; r++ {
		var sxl, sll float32
		for i, v := range x {
			l := L[idx[i]]
			sxl += float32(v * l)
			sll += float32(l * l)
		}
		if sll > 0 && sxl > 0 {
			try(sxl / sll)
		}
	}
	return best
}

func quantizeCB4(x []float32, y []byte) {
	var idx [64]uint8
	for b := 0; b < len(x)/64; b++ {
		xb, yb := x[64*b:64*b+64], y[34*b:34*b+34]
		packCB4(yb, encodeCodebookBlock(cbLevels16[:], xb, idx[:]), &idx)
	}
}

func packCB4(yb []byte, d float32, idx *[64]uint8) {
	putF16(yb, d)
	for j := 0; j < 32; j++ {
		yb[2+j] = idx[j] | idx[j+32]<<4
	}
}

func dequantizeCB4(x []byte, y []float32) {
	for b := 0; b < len(y)/64; b++ {
		xb, yb := x[34*b:34*b+34], y[64*b:64*b+64]
		d := f16(xb)
		for j := 0; j < 32; j++ {
			q := xb[2+j]
			yb[j] = d * cbLevels16[q&15]
			yb[j+32] = d * cbLevels16[q>>4]
		}
	}
}

func quantizeCB3(x []float32, y []byte) {
	var idx [64]uint8
	for b := 0; b < len(x)/64; b++ {
		xb, yb := x[64*b:64*b+64], y[26*b:26*b+26]
		packCB3(yb, encodeCodebookBlock(cbLevels8[:], xb, idx[:]), &idx)
	}
}

func packCB3(yb []byte, d float32, idx *[64]uint8) {
	putF16(yb, d)
	for j := 0; j < 16; j++ {
		yb[2+j] = idx[j]&3 | (idx[j+16]&3)<<2 | (idx[j+32]&3)<<4 | (idx[j+48]&3)<<6
	}
	for j := 0; j < 8; j++ {
		var h byte
		for k := 0; k < 8; k++ {
			h |= (idx[j+8*k] >> 2 & 1) << k
		}
		yb[18+j] = h
	}
}

func dequantizeCB3(x []byte, y []float32) {
	for b := 0; b < len(y)/64; b++ {
		xb, yb := x[26*b:26*b+26], y[64*b:64*b+64]
		d := f16(xb)
		for i := 0; i < 64; i++ {
			lo := xb[2+i%16] >> (2 * (i / 16)) & 3
			hi := xb[18+i%8] >> (i / 8) & 1
			yb[i] = d * cbLevels8[lo|hi<<2]
		}
	}
}

func quantizeCB2(x []float32, y []byte) {
	var idx [64]uint8
	for b := 0; b < len(x)/32; b++ {
		xb, yb := x[32*b:32*b+32], y[10*b:10*b+10]
		packCB2(yb, encodeCodebookBlock(cbLevels4[:], xb, idx[:32]), &idx)
	}
}

func packCB2(yb []byte, d float32, idx *[64]uint8) {
	putF16(yb, d)
	for j := 0; j < 8; j++ {
		yb[2+j] = idx[j] | idx[j+8]<<2 | idx[j+16]<<4 | idx[j+24]<<6
	}
}

func dequantizeCB2(x []byte, y []float32) {
	for b := 0; b < len(y)/32; b++ {
		xb, yb := x[10*b:10*b+10], y[32*b:32*b+32]
		d := f16(xb)
		for i := 0; i < 32; i++ {
			yb[i] = d * cbLevels4[xb[2+i%8]>>(2*(i/8))&3]
		}
	}
}

// vecDotCodebook is the reference dot product of a codebook row with
// float32 activations: the row decoded to float32, then F32·F32's order.
func vecDotCodebook(dequantize func([]byte, []float32), n int, w, x []byte) float32 {
	y := make([]float32, n)
	dequantize(w, y)
	var s float64
	for i := range y {
		s += float64(y[i] * math.Float32frombits(binary.LittleEndian.Uint32(x[4*i:])))
	}
	return float32(s)
}

func vecDotCB4(n int, w, x []byte) float32 { return vecDotCodebook(dequantizeCB4, n, w, x) }
func vecDotCB3(n int, w, x []byte) float32 { return vecDotCodebook(dequantizeCB3, n, w, x) }
func vecDotCB2(n int, w, x []byte) float32 { return vecDotCodebook(dequantizeCB2, n, w, x) }

// The encoder's parts, for internal/cbkernels' SIMD encoder, which must
// produce the bytes of QuantizeRow (it evaluates the same candidates and
// falls back to EncodeCodebookBlock wherever its sums cannot decide).

// CodebookScaleModeNow returns the mode SetCodebookScaleMode last set.
func CodebookScaleModeNow() CodebookScaleMode { return CodebookScaleMode(cbScaleMode.Load()) }

// CodebookScaleSteps returns the fractions of amax/Lmax the default mode
// (CodebookScaleSearch) tries, in order. The slice must not be modified.
func CodebookScaleSteps() []float32 { return cbScaleSteps[:] }

// EncodeCodebookBlock is QuantizeRow's encoder of one block x of codebook
// type t (BlockSize values): it returns the scale and sets idx[:len(x)]
// to the indices. When no candidate scale is usable it returns 0 and
// leaves idx as it was: QuantizeRow carries idx from block to block of a
// call (zero at the start), and so must callers that want its bytes.
func EncodeCodebookBlock(t Type, x []float32, idx *[64]uint8) float32 {
	return encodeCodebookBlock(CodebookLevels(t), x, idx[:len(x)])
}

// PackCodebookBlock writes one block of codebook type t (TypeSize bytes of
// y): the scale d as binary16, then the indices idx[:BlockSize] in the
// type's layout.
func PackCodebookBlock(t Type, y []byte, d float32, idx *[64]uint8) {
	switch t {
	case CB4:
		packCB4(y[:34], d, idx)
	case CB3:
		packCB3(y[:26], d, idx)
	case CB2:
		packCB2(y[:10], d, idx)
	default:
		panic(fmt.Sprintf("tensor.PackCodebookBlock: %s is not a codebook type", t))
	}
}
