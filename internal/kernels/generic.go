package kernels

import (
	"github.com/kvserve/kvserve/internal/tensor"
	"math"
	"sync"
	"unsafe"
)

// This file holds the pure-Go reference implementations (the generic path)
// and the helpers shared by every architecture.

// wtype is a weight element type.
type wtype int

const (
	wF32 wtype = iota
	wF16
	wBF16
)

func (t wtype) size() int {
	if t == wF32 {
		return 4
	}
	return 2
}

func wptr[T float32 | uint16](w []T) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(w)) }

// halfToFloat converts binary16 bits to float32 exactly; NaNs come out
// quiet, as the F16C/AVX-512 conversion makes them.
func halfToFloat(h uint16) float32 {
	if h&0x7c00-0x400 < 0x7800 { // normal (exponent 1..30): rebias it
		return math.Float32frombits(uint32(h&0x7fff)<<13 + (127-15)<<23 | uint32(h>>15)<<31)
	}
	return halfToFloatRare(h)
}

//go:noinline
func halfToFloatRare(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	mant := uint32(h & 0x3ff)
	if h&0x7c00 != 0 { // Inf or NaN
		if mant != 0 {
			mant |= 0x200 // quiet
		}
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	}
	// zero or subnormal: mant · 2^-24, exact
	return math.Float32frombits(sign | math.Float32bits(float32(mant)*0x1p-24))
}

// f16Table maps every binary16 value to its float32 (halfToFloat),
// built on first use by the generic path (256 KiB).
var f16Table = sync.OnceValue(func() *[1 << 16]float32 {
	t := new([1 << 16]float32)
	for i := range t {
		t[i] = halfToFloat(uint16(i))
	}
	return t
})

func bf16ToFloat(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// floatToHalf converts float32 to binary16 with round-to-nearest-even:
// the one scalar conversion, tensor.F32ToF16 (bit-exact with VCVTPS2PH).
func floatToHalf(f float32) uint16 { return tensor.F32ToF16(f) }

// The generic dots: four partial sums s[i%4], k ascending, (s0+s1)+(s2+s3).
// Dot, Rows and Gemm all call these, so they agree bit for bit.

//go:noinline
func dotF32Generic(a, b []float32) float32 {
	n := len(a)
	b = b[:n]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= n; i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	if i < n {
		s0 += a[i] * b[i]
	}
	if i+1 < n {
		s1 += a[i+1] * b[i+1]
	}
	if i+2 < n {
		s2 += a[i+2] * b[i+2]
	}
	return (s0 + s1) + (s2 + s3)
}

//go:noinline
func dotF16Generic(w []uint16, x []float32) float32 {
	n := len(w)
	x = x[:n]
	tab := f16Table()
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= n; i += 4 {
		s0 += tab[w[i]] * x[i]
		s1 += tab[w[i+1]] * x[i+1]
		s2 += tab[w[i+2]] * x[i+2]
		s3 += tab[w[i+3]] * x[i+3]
	}
	if i < n {
		s0 += tab[w[i]] * x[i]
	}
	if i+1 < n {
		s1 += tab[w[i+1]] * x[i+1]
	}
	if i+2 < n {
		s2 += tab[w[i+2]] * x[i+2]
	}
	return (s0 + s1) + (s2 + s3)
}

//go:noinline
func dotBF16Generic(w []uint16, x []float32) float32 {
	n := len(w)
	x = x[:n]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= n; i += 4 {
		s0 += bf16ToFloat(w[i]) * x[i]
		s1 += bf16ToFloat(w[i+1]) * x[i+1]
		s2 += bf16ToFloat(w[i+2]) * x[i+2]
		s3 += bf16ToFloat(w[i+3]) * x[i+3]
	}
	if i < n {
		s0 += bf16ToFloat(w[i]) * x[i]
	}
	if i+1 < n {
		s1 += bf16ToFloat(w[i+1]) * x[i+1]
	}
	if i+2 < n {
		s2 += bf16ToFloat(w[i+2]) * x[i+2]
	}
	return (s0 + s1) + (s2 + s3)
}

// dotGeneric is the generic dot of row w (k elements of type t at p) with x.
func dotGeneric(t wtype, p unsafe.Pointer, x []float32) float32 {
	k := len(x)
	if k == 0 {
		return 0
	}
	switch t {
	case wF32:
		return dotF32Generic(unsafe.Slice((*float32)(p), k), x)
	case wF16:
		return dotF16Generic(unsafe.Slice((*uint16)(p), k), x)
	default:
		return dotBF16Generic(unsafe.Slice((*uint16)(p), k), x)
	}
}

func dotRowsGeneric(t wtype, w unsafe.Pointer, k int, x, y []float32) {
	for i := range y {
		y[i] = dotGeneric(t, unsafe.Add(w, i*k*t.size()), x)
	}
}

func gemmGeneric(t wtype, m, n, k int, w unsafe.Pointer, x, y []float32, ldy int) {
	for j := 0; j < n; j++ {
		dotRowsGeneric(t, w, k, x[j*k:(j+1)*k], y[j*ldy:j*ldy+m])
	}
}

func f16ToF32Generic(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	tab := f16Table()
	for i, h := range src {
		dst[i] = tab[h]
	}
}

func f32ToF16Generic(dst []uint16, src []float32) {
	dst = dst[:len(src)]
	for i, f := range src {
		dst[i] = floatToHalf(f)
	}
}

func axpyGeneric(a float32, x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += a * v
	}
}

func axpyF16Generic(a float32, x []uint16, y []float32) {
	y = y[:len(x)]
	tab := f16Table()
	for i, h := range x {
		y[i] += a * tab[h]
	}
}

func scaleGeneric(a float32, x []float32) {
	for i := range x {
		x[i] *= a
	}
}

func addGeneric(dst, a, b []float32) {
	a, b = a[:len(dst)], b[:len(dst)]
	for i := range dst {
		dst[i] = a[i] + b[i]
	}
}

func mulGeneric(dst, a, b []float32) {
	a, b = a[:len(dst)], b[:len(dst)]
	for i := range dst {
		dst[i] = a[i] * b[i]
	}
}

func sumSquaresGeneric(x []float32) float32 { return dotF32Generic(x, x) }

func abs32(x float32) float32 { return math.Float32frombits(math.Float32bits(x) &^ (1 << 31)) }

func maxGeneric(x []float32) float32 {
	m := float32(math.Inf(-1))
	for _, v := range x {
		if v > m {
			m = v
		}
	}
	return m
}

func expSubGeneric(x []float32, m float32) float32 {
	var s float32
	for i, v := range x {
		e := expf32(v - m)
		x[i] = e
		s += e
	}
	return s
}

func siluMulGeneric(dst, gate, up []float32) {
	gate, up = gate[:len(dst)], up[:len(dst)]
	for i := range dst {
		g := gate[i]
		e := expf32(-abs32(g))
		s := float32(1)
		if g < 0 {
			s = e
		}
		dst[i] = g * (s / (1 + e)) * up[i]
	}
}
