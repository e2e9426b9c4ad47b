// Package cputest holds the helpers the kernel packages' tests share: a
// loop over the CPU levels a kernel family supports, memory that faults on
// any access just past (or before) a slice, and a model of the FMA
// instruction. It is imported by tests only.
package cputest

import (
	"math"
	"math/big"
	"testing"
	"unsafe"

	"github.com/kvserve/kvserve/internal/cpu"
)

// ForLevels runs f as a subtest (named after the level) for every level
// family fam supports on this CPU, with the CPU level set to it.
func ForLevels(t *testing.T, fam cpu.Family, f func(t *testing.T, lv cpu.Level)) {
	t.Helper()
	for _, lv := range fam.Levels() {
		t.Run(lv.String(), func(t *testing.T) {
			defer cpu.SetLevel(lv)()
			f(t, lv)
		})
	}
}

// Guarded returns a byte slice of size n that ends exactly at a page
// followed by an inaccessible page, so any read or write past its end
// faults. free releases it. It skips the test where guard pages cannot be
// made.
func Guarded(t *testing.T, n int) (b []byte, free func()) {
	t.Helper()
	return guarded(t, n, false)
}

// GuardedFront is Guarded with the inaccessible page just before the
// slice, which starts at a page boundary.
func GuardedFront(t *testing.T, n int) (b []byte, free func()) {
	t.Helper()
	return guarded(t, n, true)
}

// GuardedF32 is Guarded for n float32 values.
func GuardedF32(t *testing.T, n int) ([]float32, func()) {
	t.Helper()
	b, free := Guarded(t, 4*n)
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(b))), n), free
}

// GuardedU16 is Guarded for n uint16 values.
func GuardedU16(t *testing.T, n int) ([]uint16, func()) {
	t.Helper()
	b, free := Guarded(t, 2*n)
	return unsafe.Slice((*uint16)(unsafe.Pointer(unsafe.SliceData(b))), n), free
}

// FMA32 is the correctly rounded float32 a·b+c (what VFMADD computes).
// math.FMA rounds once to float64; converting that to float32 is a second
// rounding, which can only go wrong when the float64 result lands exactly
// on a midpoint between two float32 values — resolved exactly with
// big.Float.
func FMA32(a, b, c float32) float32 {
	s := math.FMA(float64(a), float64(b), float64(c))
	r := float32(s)
	if float64(r) == s || math.IsInf(s, 0) || math.IsNaN(s) || math.IsInf(float64(r), 0) {
		return r
	}
	lo, hi := r, r
	if float64(r) < s {
		hi = math.Nextafter32(r, float32(math.Inf(1)))
	} else {
		lo = math.Nextafter32(r, float32(math.Inf(-1)))
	}
	mid := (float64(lo) + float64(hi)) / 2
	if s != mid {
		return r
	}
	exact := new(big.Float).SetPrec(200).SetFloat64(float64(a))
	exact.Mul(exact, new(big.Float).SetPrec(200).SetFloat64(float64(b)))
	exact.Add(exact, new(big.Float).SetPrec(200).SetFloat64(float64(c)))
	switch exact.Cmp(big.NewFloat(mid)) {
	case 1:
		return hi
	case -1:
		return lo
	}
	return r // exact tie: float32() already rounded it to even
}
