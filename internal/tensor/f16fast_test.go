package tensor

import (
	"math"
	"testing"
)

// F32ToF16's fast path equals the general path (checked once for all 2^32
// inputs when it was written; here on a sweep plus every boundary region).
func TestF32ToF16FastPath(t *testing.T) {
	check := func(x uint32) {
		if got, want := F32ToF16(math.Float32frombits(x)), f32ToF16Slow(x); got != want {
			t.Fatalf("%#08x: fast %#04x, general %#04x", x, got, want)
		}
	}
	for x := uint64(0); x < 1<<32; x += 4099 {
		check(uint32(x))
	}
	for _, b := range []uint32{0x38800000, 0x477ff000, 0x477fe000, 0x33000000, 0x7f800000} {
		for d := uint32(0); d < 1<<14; d++ {
			for _, s := range []uint32{0, 1 << 31} {
				check(s | (b - 1<<13 + d))
			}
		}
	}
}
