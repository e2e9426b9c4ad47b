package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/kvserve/kvserve/internal/cpu"
)

// refFWHT is the reference: internal/kvcache's fwht, one row, verbatim.
func refFWHT(x []float32) {
	n := len(x)
	for h := 1; h < n; h *= 2 {
		for i := 0; i < n; i += 2 * h {
			for j := i; j < i+h; j++ {
				a, b := x[j], x[j+h]
				x[j], x[j+h] = a+b, a-b
			}
		}
	}
	s := float32(1 / math.Sqrt(float64(n)))
	for i := range x {
		x[i] *= s
	}
}

func refFWHTRows(x []float32, n int) {
	for r := 0; r < len(x); r += n {
		refFWHT(x[r : r+n])
	}
}

// fwhtData returns rows·n values over several binades; with specials,
// about one in eight is ±0, ±Inf, NaN, a subnormal or a huge value (sums
// of huge values overflow to Inf on the way).
func fwhtData(r *rand.Rand, size int, specials bool) []float32 {
	x := randVec(r, size)
	if !specials {
		return x
	}
	sp := []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)),
		float32(math.NaN()), math.Float32frombits(0xffc00001), math.Float32frombits(1), math.Float32frombits(0x807fffff),
		math.MaxFloat32, -math.MaxFloat32, 3e38, -2.5e38, 1e-38}
	for i := range x {
		if r.IntN(8) == 0 {
			x[i] = sp[r.IntN(len(sp))]
		}
	}
	return x
}

func sameBits(a, b float32) bool {
	return math.Float32bits(a) == math.Float32bits(b) || (a != a && b != b)
}

var fwhtRowCounts = []int{1, 2, 3, 4, 5, 7, 8, 16, 17, 33, 64}

// TestFWHTMatchesReference: every path, n = 1 .. 4096 (every kernel
// length, the generic passes' combinations), many row counts, random data
// with and without specials — bit-identical to the reference loop, NaN
// payloads aside.
func TestFWHTMatchesReference(t *testing.T) {
	forLevels(t, func(t *testing.T, lv cpu.Level) {
		r := rand.New(rand.NewPCG(3, uint64(lv)))
		for n := 1; n <= 4096; n *= 2 {
			for _, rows := range fwhtRowCounts {
				if n*rows > 1<<15 {
					continue
				}
				for _, specials := range []bool{false, true} {
					x := fwhtData(r, n*rows, specials)
					want := append([]float32(nil), x...)
					refFWHTRows(want, n)
					FWHT(x, n)
					for i := range x {
						if !sameBits(x[i], want[i]) {
							t.Fatalf("n=%d rows=%d specials=%v: x[%d] (row %d, column %d) = %g (%#08x), reference %g (%#08x)",
								n, rows, specials, i, i/n, i%n, x[i], math.Float32bits(x[i]), want[i], math.Float32bits(want[i]))
						}
					}
				}
			}
		}
	})
}

// Sanity check for the test data: doing the stages in another order
// (h = n/2 first) changes the rounded results, so the bit-identity tests
// do check the order.
func TestFWHTDataIsOrderSensitive(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 0))
	for _, n := range []int{8, 64, 128, 1024} {
		x := fwhtData(r, n, false)
		want := append([]float32(nil), x...)
		refFWHT(want)
		for h := n / 2; h >= 1; h /= 2 {
			for i := 0; i < n; i += 2 * h {
				for j := i; j < i+h; j++ {
					x[j], x[j+h] = x[j]+x[j+h], x[j]-x[j+h]
				}
			}
		}
		Scale(float32(1/math.Sqrt(float64(n))), x)
		same := true
		for i := range x {
			same = same && x[i] == want[i]
		}
		if same {
			t.Fatalf("n=%d: the test data do not distinguish stage orders", n)
		}
	}
}

// TestFWHTSignedZeros: rows of ±0 only, where a+b, a-b and their order
// decide the signs of the results.
func TestFWHTSignedZeros(t *testing.T) {
	forLevels(t, func(t *testing.T, lv cpu.Level) {
		r := rand.New(rand.NewPCG(5, uint64(lv)))
		for n := 1; n <= 2048; n *= 2 {
			for _, rows := range []int{1, 3} {
				x := make([]float32, n*rows)
				for i := range x {
					if r.IntN(2) == 0 {
						x[i] = float32(math.Copysign(0, -1))
					}
				}
				want := append([]float32(nil), x...)
				refFWHTRows(want, n)
				FWHT(x, n)
				for i := range x {
					if math.Float32bits(x[i]) != math.Float32bits(want[i]) {
						t.Fatalf("n=%d rows=%d: x[%d] = %g, reference %g", n, rows, i, x[i], want[i])
					}
				}
			}
		}
	})
}

// TestFWHTInvolution: the normalized transform is its own inverse; twice
// gives x back to 1e-6 of the row's largest magnitude.
func TestFWHTInvolution(t *testing.T) {
	forLevels(t, func(t *testing.T, lv cpu.Level) {
		r := rand.New(rand.NewPCG(9, uint64(lv)))
		for n := 1; n <= 4096; n *= 2 {
			rows := max(1, 4096/n)
			x := fwhtData(r, n*rows, false)
			y := append([]float32(nil), x...)
			FWHT(y, n)
			FWHT(y, n)
			for row := 0; row < rows; row++ {
				xr, yr := x[row*n:(row+1)*n], y[row*n:(row+1)*n]
				var m float64
				for _, v := range xr {
					m = max(m, math.Abs(float64(v)))
				}
				for i := range xr {
					if d := math.Abs(float64(yr[i]) - float64(xr[i])); d > 1e-6*m {
						t.Fatalf("n=%d row %d: FWHT(FWHT(x))[%d] = %g, x = %g: error %.3g > 1e-6·%g", n, row, i, yr[i], xr[i], d, m)
					}
				}
			}
		}
	})
}

// TestFWHTRowsIndependent: a row's result does not depend on its
// neighbours or on where the call starts (each row equals FWHT of that
// row alone), and FWHT does not write past len(x) into the capacity.
func TestFWHTRowsIndependent(t *testing.T) {
	forLevels(t, func(t *testing.T, lv cpu.Level) {
		r := rand.New(rand.NewPCG(11, uint64(lv)))
		for n := 1; n <= 1024; n *= 2 {
			const rows = 5
			buf := fwhtData(r, n*rows+n, true)
			x := buf[:n*rows]
			guard := append([]float32(nil), buf[n*rows:]...)
			orig := append([]float32(nil), x...)
			FWHT(x, n)
			for row := 0; row < rows; row++ {
				one := append([]float32(nil), orig[row*n:(row+1)*n]...)
				FWHT(one, n)
				for i := range one {
					if !sameBits(one[i], x[row*n+i]) {
						t.Fatalf("n=%d: row %d alone differs at %d", n, row, i)
					}
				}
			}
			for i, v := range buf[n*rows:] {
				if !sameBits(v, guard[i]) {
					t.Fatalf("n=%d: element %d past len(x) changed", n, i)
				}
			}
		}
	})
}

func TestFWHTPanics(t *testing.T) {
	for _, c := range []struct {
		len, n int
		msg    string
	}{
		{8, 0, "not a power of two"},
		{8, -4, "not a power of two"},
		{9, 3, "not a power of two"},
		{12, 6, "not a power of two"},
		{0, 0, "not a power of two"},
		{12, 8, "not a multiple"},
		{7, 2, "not a multiple"},
		{64, 128, "not a multiple"},
	} {
		func() {
			defer func() {
				e := recover()
				if e == nil {
					t.Fatalf("FWHT(len %d, n=%d) did not panic", c.len, c.n)
				}
				if s := fmt.Sprint(e); !strings.Contains(s, c.msg) || !strings.HasPrefix(s, "kernels.FWHT: ") {
					t.Fatalf("FWHT(len %d, n=%d) panicked with %q, want %q", c.len, c.n, s, c.msg)
				}
			}()
			FWHT(make([]float32, c.len), c.n)
		}()
	}
	FWHT(nil, 64) // no rows: fine
	FWHT(make([]float32, 0, 8), 1)
}

func TestFWHTNoAllocs(t *testing.T) {
	forLevels(t, func(t *testing.T, lv cpu.Level) {
		for _, n := range []int{1, 4, 8, 64, 128, 1024, 4096} {
			x := benchVec(4 * n)
			if a := testing.AllocsPerRun(10, func() { FWHT(x, n) }); a != 0 {
				t.Fatalf("n=%d: %v allocations per call", n, a)
			}
		}
	})
}

// BenchmarkFWHT reports ns per row for head dimensions 64 and 128: one
// row (a query head) and 256 rows (one head's cache page), each path and
// the reference loop (internal/kvcache's fwht called per row).
func BenchmarkFWHT(b *testing.B) {
	for _, n := range []int{64, 128} {
		for _, rows := range []int{1, 256} {
			x := benchVec(n * rows)
			run := func(b *testing.B, f func()) {
				b.SetBytes(int64(4 * n * rows))
				for b.Loop() {
					f()
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(rows), "ns/row")
			}
			b.Run(fmt.Sprintf("n%d/rows%d/ref", n, rows), func(b *testing.B) { run(b, func() { refFWHTRows(x, n) }) })
			for _, lv := range cpu.Float.Levels() {
				b.Run(fmt.Sprintf("n%d/rows%d/%v", n, rows, lv), func(b *testing.B) {
					defer cpu.SetLevel(lv)()
					run(b, func() { FWHT(x, n) })
				})
			}
		}
	}
}
