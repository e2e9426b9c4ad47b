package tensor

import (
	"math"
	"testing"
)

// Every half value converts to float32 and back unchanged (NaN payloads aside).
func TestF16RoundTripAll(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		f := F16ToF32(h)
		if f != f {
			if back := F32ToF16(f); back&0x7c00 != 0x7c00 || back&0x3ff == 0 {
				t.Fatalf("nan %#04x -> %#04x", h, back)
			}
			continue
		}
		if back := F32ToF16(f); back != h {
			t.Fatalf("%#04x -> %g -> %#04x", h, f, back)
		}
	}
}

// Conversion rounds to nearest, ties to even: checked against float64
// arithmetic on the neighbouring half values.
func TestF16RoundingNearestEven(t *testing.T) {
	for i := 0; i < 0x7c00-1; i++ {
		lo, hi := float64(F16ToF32(uint16(i))), float64(F16ToF32(uint16(i+1)))
		mid := float32((lo + hi) / 2)
		want := uint16(i)
		if i&1 == 1 {
			want = uint16(i + 1)
		}
		if got := F32ToF16(mid); got != want {
			t.Fatalf("tie between %#04x and %#04x: got %#04x want %#04x", i, i+1, got, want)
		}
		above := math.Nextafter32(mid, float32(hi))
		if got := F32ToF16(above); got != uint16(i+1) {
			t.Fatalf("just above midpoint of %#04x: got %#04x", i, got)
		}
		below := math.Nextafter32(mid, float32(lo))
		if got := F32ToF16(below); got != uint16(i) {
			t.Fatalf("just below midpoint of %#04x: got %#04x", i, got)
		}
	}
	if F32ToF16(70000) != 0x7c00 || F32ToF16(-70000) != 0xfc00 {
		t.Fatal("overflow must give infinity")
	}
}

func TestBF16(t *testing.T) {
	cases := []struct {
		in   float32
		want uint16
	}{
		{1, 0x3f80}, {-2, 0xc000},
		{math.Float32frombits(0x3f808000), 0x3f80}, // tie, even stays
		{math.Float32frombits(0x3f818000), 0x3f82}, // tie, odd rounds up
		{math.Float32frombits(0x3f808001), 0x3f81},
	}
	for _, c := range cases {
		if got := F32ToBF16(c.in); got != c.want {
			t.Errorf("F32ToBF16(%g) = %#04x want %#04x", c.in, got, c.want)
		}
		if BF16ToF32(c.want) != math.Float32frombits(uint32(c.want)<<16) {
			t.Error("BF16ToF32")
		}
	}
	if got := F32ToBF16(float32(math.NaN())); got&0x7f80 != 0x7f80 || got&0x7f == 0 {
		t.Errorf("nan -> %#04x", got)
	}
}
