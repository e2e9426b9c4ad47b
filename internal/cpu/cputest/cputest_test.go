package cputest

import (
	"math"
	"runtime/debug"
	"testing"
	"unsafe"

	"github.com/kvserve/kvserve/internal/cpu"
)

// faults reports whether reading the byte at p faults.
func faults(p unsafe.Pointer) (fault bool) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() { fault = recover() != nil }()
	_ = *(*byte)(p)
	return false
}

func TestGuardedFaultsOutside(t *testing.T) {
	for _, n := range []int{1, 100, 4096, 5000} {
		b, free := Guarded(t, n)
		if len(b) != n || faults(unsafe.Pointer(&b[0])) || faults(unsafe.Pointer(&b[n-1])) {
			t.Fatalf("Guarded(%d): len %d or its bytes are not readable", n, len(b))
		}
		if !faults(unsafe.Add(unsafe.Pointer(&b[n-1]), 1)) {
			t.Errorf("Guarded(%d): the byte past the end is readable", n)
		}
		free()
		f, free := GuardedFront(t, n)
		if len(f) != n || faults(unsafe.Pointer(&f[0])) || faults(unsafe.Pointer(&f[n-1])) {
			t.Fatalf("GuardedFront(%d): len %d or its bytes are not readable", n, len(f))
		}
		if !faults(unsafe.Add(unsafe.Pointer(&f[0]), -1)) {
			t.Errorf("GuardedFront(%d): the byte before the start is readable", n)
		}
		free()
	}
}

func TestForLevels(t *testing.T) {
	for _, fam := range []cpu.Family{cpu.Float, cpu.Block} {
		var seen []cpu.Level
		ForLevels(t, fam, func(t *testing.T, lv cpu.Level) {
			if fam.Level() != lv {
				t.Errorf("%v runs at %v inside ForLevels(%v)", fam, fam.Level(), lv)
			}
			seen = append(seen, lv)
		})
		if len(seen) != len(fam.Levels()) || fam.Level() != fam.Best() {
			t.Errorf("%v: ran %v of %v, left at %v", fam, seen, fam.Levels(), fam.Level())
		}
	}
}

func TestFMA32(t *testing.T) {
	// (1+2⁻¹²)² − 1 = 2⁻¹¹ + 2⁻²⁴ exactly: one rounding, not two.
	a := float32(1 + 0x1p-12)
	if got, want := FMA32(a, a, -1), float32(0x1p-11+0x1p-24); got != want {
		t.Errorf("FMA32 = %g, want %g", got, want)
	}
	if got := FMA32(3, 4, 5); got != 17 {
		t.Errorf("FMA32(3, 4, 5) = %g", got)
	}
	if got := FMA32(float32(math.Inf(1)), 0, 1); got == got {
		t.Errorf("FMA32(Inf, 0, 1) = %g, want NaN", got)
	}
}
