package kernels

import (
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/kvserve/kvserve/internal/cpu"
	"github.com/kvserve/kvserve/internal/cpu/cputest"
)

// forLevels runs f on every path this CPU supports.
func forLevels(t *testing.T, f func(t *testing.T, lv cpu.Level)) {
	t.Helper()
	cputest.ForLevels(t, cpu.Float, f)
}

// lanes is the accumulator width of the path's canonical order (4 partial
// sums for the generic path).
func lanes(l cpu.Level) int {
	switch l {
	case cpu.AVX2:
		return 8
	case cpu.AVX512:
		return 16
	}
	return 4
}

var fma32 = cputest.FMA32

// canonDot models the assembly paths' canonical order with L lanes.
func canonDot(L int, w, x []float32) float32 {
	acc := make([]float32, L)
	for i := range w {
		acc[i%L] = fma32(w[i], x[i], acc[i%L])
	}
	for h := L / 2; h >= 1; h /= 2 {
		for l := 0; l < h; l++ {
			acc[l] += acc[l+h]
		}
	}
	return acc[0]
}

// dotBound returns the error allowed against the exact dot for n terms of
// absolute sum abs on path lv: each lane adds ⌈n/L⌉ terms, the tree log2 L
// more roundings; +2 covers the generic path's separately rounded products.
func dotBound(lv cpu.Level, n int, abs float64) float64 {
	L := lanes(lv)
	steps := (n+L-1)/L + bits.Len(uint(L)) + 2
	return float64(steps)*0x1p-24*abs*1.01 + 1e-30
}

// randVec returns n values spread over several binades (so a different
// summation order would almost surely change the rounded result).
func randVec(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64() * math.Ldexp(1, r.IntN(12)-6))
		if r.IntN(17) == 0 {
			v[i] = 0
		}
	}
	return v
}

func toF16(v []float32) ([]uint16, []float32) {
	h := make([]uint16, len(v))
	f := make([]float32, len(v))
	for i, x := range v {
		h[i] = floatToHalf(x)
		f[i] = halfToFloat(h[i])
	}
	return h, f
}

func toBF16(v []float32) ([]uint16, []float32) {
	h := make([]uint16, len(v))
	f := make([]float32, len(v))
	for i, x := range v {
		h[i] = uint16(math.Float32bits(x) >> 16) // truncation: any bf16 will do
		f[i] = bf16ToFloat(h[i])
	}
	return h, f
}

var testLens = func() []int {
	var l []int
	for n := 0; n <= 70; n++ {
		l = append(l, n)
	}
	return append(l, 127, 128, 129, 255, 256, 257, 511, 512, 513, 1000, 1023, 1024, 1025, 4095, 4096, 4097, 10007)
}()

type dotCase struct {
	name string
	// make returns the weights in their storage type (as any), their exact
	// f32 values, and a function computing the kernel's dot with x.
	make func(v []float32) (wf []float32, dot func(x []float32) float32)
}

var dotCases = []dotCase{
	{"F32", func(v []float32) ([]float32, func([]float32) float32) {
		return v, func(x []float32) float32 { return DotF32(v, x) }
	}},
	{"F16", func(v []float32) ([]float32, func([]float32) float32) {
		h, f := toF16(v)
		return f, func(x []float32) float32 { return DotF16(h, x) }
	}},
	{"BF16", func(v []float32) ([]float32, func([]float32) float32) {
		h, f := toBF16(v)
		return f, func(x []float32) float32 { return DotBF16(h, x) }
	}},
}

func TestDot(t *testing.T) {
	forLevels(t, func(t *testing.T, lv cpu.Level) {
		r := rand.New(rand.NewPCG(1, uint64(lv)))
		for _, dc := range dotCases {
			t.Run(strings.ToLower(dc.name), func(t *testing.T) {
				for _, n := range testLens {
					wf, dot := dc.make(randVec(r, n))
					x := randVec(r, n)
					got := dot(x)
					var exact, abs float64
					for i := range wf {
						exact += float64(wf[i]) * float64(x[i])
						abs += math.Abs(float64(wf[i]) * float64(x[i]))
					}
					if d := math.Abs(float64(got) - exact); d > dotBound(lv, n, abs) {
						t.Fatalf("Dot%s n=%d: got %g, exact %g, error %g > bound %g", dc.name, n, got, exact, d, dotBound(lv, n, abs))
					}
					if lv != cpu.Generic {
						if want := canonDot(lanes(lv), wf, x); math.Float32bits(got) != math.Float32bits(want) {
							t.Fatalf("Dot%s n=%d: got %g (%#x), canonical-order model %g (%#x)", dc.name, n, got, math.Float32bits(got), want, math.Float32bits(want))
						}
					}
				}
			})
		}
	})
}

// Sanity check for the test itself: the data make summation order visible.
func TestCanonicalModelIsOrderSensitive(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	w, x := randVec(r, 1000), randVec(r, 1000)
	if canonDot(16, w, x) == canonDot(8, w, x) && canonDot(8, w, x) == canonDot(4, w, x) {
		t.Fatal("test data do not distinguish accumulation orders")
	}
}

type gemmKind struct {
	name string
	run  func(m, n, k int, wv []float32, x, y []float32, ldy int) // y via Gemm
	dot  func(wv []float32, row, k int, x []float32) float32      // one Dot
	rows func(y []float32, wv []float32, k int, x []float32)
	conv func(v []float32) []float32 // exact weight values after storage
}

var gemmKinds = []gemmKind{
	{"F32",
		func(m, n, k int, wv, x, y []float32, ldy int) { GemmF32(m, n, k, wv, x, y, ldy) },
		func(wv []float32, i, k int, x []float32) float32 { return DotF32(wv[i*k:(i+1)*k], x) },
		func(y, wv []float32, k int, x []float32) { DotF32Rows(y, wv, x) },
		func(v []float32) []float32 { return v }},
	{"F16",
		func(m, n, k int, wv, x, y []float32, ldy int) { h, _ := toF16(wv); GemmF16(m, n, k, h, x, y, ldy) },
		func(wv []float32, i, k int, x []float32) float32 {
			h, _ := toF16(wv[i*k : (i+1)*k])
			return DotF16(h, x)
		},
		func(y, wv []float32, k int, x []float32) { h, _ := toF16(wv); DotF16Rows(y, h, x) },
		func(v []float32) []float32 { _, f := toF16(v); return f }},
	{"BF16",
		func(m, n, k int, wv, x, y []float32, ldy int) { h, _ := toBF16(wv); GemmBF16(m, n, k, h, x, y, ldy) },
		func(wv []float32, i, k int, x []float32) float32 {
			h, _ := toBF16(wv[i*k : (i+1)*k])
			return DotBF16(h, x)
		},
		func(y, wv []float32, k int, x []float32) { h, _ := toBF16(wv); DotBF16Rows(y, h, x) },
		func(v []float32) []float32 { _, f := toBF16(v); return f }},
}

type shape struct{ m, n, k int }

func gemmShapes() []shape {
	var s []shape
	for _, m := range []int{1, 3, 4, 5, 7, 8, 9, 12, 16, 17, 23, 24} {
		for _, n := range []int{1, 2, 3, 4, 5, 7} {
			for _, k := range []int{0, 1, 5, 8, 15, 16, 17, 31, 32, 33, 100, 257} {
				s = append(s, shape{m, n, k})
			}
		}
	}
	// Several token blocks (gemmNC), several k panels (gemmKC), odd edges.
	return append(s, shape{17, 131, 2100}, shape{40, 130, 1024}, shape{9, 66, 2048},
		shape{24, 3, 3073}, shape{16, 128, 1025}, shape{33, 65, 1040})
}

// TestGemmBitIdenticalToDot is the batch-invariance requirement: every
// output of Gemm equals the single Dot bit for bit, and DotRows too.
func TestGemmBitIdenticalToDot(t *testing.T) {
	forLevels(t, func(t *testing.T, lv cpu.Level) {
		r := rand.New(rand.NewPCG(2, uint64(lv)))
		for _, gk := range gemmKinds {
			t.Run(strings.ToLower(gk.name), func(t *testing.T) {
				for _, s := range gemmShapes() {
					w := gk.conv(randVec(r, s.m*s.k))
					x := randVec(r, s.n*s.k)
					ldy := s.m + r.IntN(3)
					const sentinel = 0x7fc0dead
					y := make([]float32, max(0, (s.n-1)*ldy+s.m)+ldy-s.m)
					for i := range y {
						y[i] = math.Float32frombits(sentinel)
					}
					gk.run(s.m, s.n, s.k, w, x, y, ldy)
					for j := 0; j < s.n; j++ {
						xj := x[j*s.k : (j+1)*s.k]
						for i := 0; i < ldy && j*ldy+i < len(y); i++ {
							got := y[j*ldy+i]
							if i >= s.m {
								if math.Float32bits(got) != sentinel {
									t.Fatalf("Gemm%s %v ldy=%d: wrote outside the m rows at (%d,%d)", gk.name, s, ldy, i, j)
								}
								continue
							}
							want := gk.dot(w, i, s.k, xj)
							if math.Float32bits(got) != math.Float32bits(want) {
								t.Fatalf("Gemm%s %v ldy=%d: y[%d,%d] = %g (%#x), Dot = %g (%#x)",
									gk.name, s, ldy, i, j, got, math.Float32bits(got), want, math.Float32bits(want))
							}
						}
					}
					if s.n == 1 || s.n == 3 {
						yr := make([]float32, s.m)
						gk.rows(yr, w, s.k, x[:s.k])
						for i := range yr {
							if want := gk.dot(w, i, s.k, x[:s.k]); math.Float32bits(yr[i]) != math.Float32bits(want) {
								t.Fatalf("Dot%sRows %v: y[%d] = %g, Dot = %g", gk.name, s, i, yr[i], want)
							}
						}
					}
				}
			})
		}
	})
}

func TestF16ToF32AllValues(t *testing.T) {
	src := make([]uint16, 1<<16)
	for i := range src {
		src[i] = uint16(i)
	}
	forLevels(t, func(t *testing.T, lv cpu.Level) {
		for _, off := range []int{0, 1, 3} {
			s := src[off:]
			dst := make([]float32, len(s))
			F16ToF32(dst, s)
			for i, h := range s {
				if want := halfToFloat(h); math.Float32bits(dst[i]) != math.Float32bits(want) {
					t.Fatalf("F16ToF32(%#04x) = %#08x, want %#08x", h, math.Float32bits(dst[i]), math.Float32bits(want))
				}
			}
		}
	})
}

func f32ToF16Inputs() []float32 {
	var in []float32
	for _, b := range []uint32{0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0xffc12345,
		0x477fe000, 0x477fefff, 0x477ff000, 0x477fffff, 0x47800000, // around 65504 / overflow
		0x38800000, 0x387fffff, 0x33800000, 0x33000000, 0x33000001, 0x32ffffff, 0x00000001, 0x00800000} {
		in = append(in, math.Float32frombits(b))
	}
	// Every half value, the midpoints between neighbours and their float32 neighbours.
	for h := 0; h < 0x7c00; h++ {
		lo := halfToFloat(uint16(h))
		hi := halfToFloat(uint16(h + 1))
		mid := float32((float64(lo) + float64(hi)) / 2)
		in = append(in, lo, -lo, mid, -mid, math.Nextafter32(mid, 0), math.Nextafter32(mid, 1e9))
	}
	r := rand.New(rand.NewPCG(3, 3))
	for range 1 << 18 {
		in = append(in, math.Float32frombits(r.Uint32()))
	}
	return in
}

func TestF32ToF16(t *testing.T) {
	in := f32ToF16Inputs()
	forLevels(t, func(t *testing.T, lv cpu.Level) {
		for _, off := range []int{0, 1, 5} {
			s := in[off:]
			dst := make([]uint16, len(s))
			F32ToF16(dst, s)
			for i, f := range s {
				if want := floatToHalf(f); dst[i] != want {
					t.Fatalf("F32ToF16(%#08x) = %#04x, want %#04x", math.Float32bits(f), dst[i], want)
				}
			}
		}
		// Tails of every length, and nothing written past the end.
		for n := 0; n < 40; n++ {
			dst := make([]uint16, n+8)
			for i := range dst {
				dst[i] = 0xbeef
			}
			F32ToF16(dst[:n], in[100:100+n])
			for i := range dst {
				want := uint16(0xbeef)
				if i < n {
					want = floatToHalf(in[100+i])
				}
				if dst[i] != want {
					t.Fatalf("n=%d: dst[%d] = %#04x want %#04x", n, i, dst[i], want)
				}
			}
		}
	})
}

// sameOrClose: exact bits for the assembly paths (single IEEE operation or
// FMA), and for the generic path either the fused or the unfused result.
func TestAxpy(t *testing.T) {
	forLevels(t, func(t *testing.T, lv cpu.Level) {
		r := rand.New(rand.NewPCG(4, uint64(lv)))
		for _, n := range testLens {
			x := randVec(r, n)
			y0 := randVec(r, n+3)
			a := float32(r.NormFloat64())
			xh, xf := toF16(x)
			for _, isF16 := range []bool{false, true} {
				y := append([]float32(nil), y0...)
				if isF16 {
					AxpyF16(a, xh, y[:n])
				} else {
					Axpy(a, x, y[:n])
				}
				xv := x
				if isF16 {
					xv = xf
				}
				for i := range y {
					if i >= n {
						if y[i] != y0[i] {
							t.Fatalf("n=%d: wrote y[%d]", n, i)
						}
						continue
					}
					fused := fma32(a, xv[i], y0[i])
					unfused := y0[i] + a*xv[i]
					if y[i] != fused && (lv != cpu.Generic || y[i] != unfused) {
						t.Fatalf("Axpy f16=%v n=%d i=%d: got %g, fma %g, mul+add %g", isF16, n, i, y[i], fused, unfused)
					}
				}
			}
		}
	})
}

func TestScaleAddMul(t *testing.T) {
	forLevels(t, func(t *testing.T, lv cpu.Level) {
		r := rand.New(rand.NewPCG(5, uint64(lv)))
		for _, n := range testLens {
			a, b := randVec(r, n+2), randVec(r, n+2)
			s := float32(r.NormFloat64())
			x := append([]float32(nil), a...)
			Scale(s, x[:n])
			dst := make([]float32, n+2)
			Add(dst[:n], a[:n], b[:n])
			prod := append([]float32(nil), a...)
			Mul(prod[:n], prod[:n], b[:n]) // aliasing dst == a
			for i := 0; i < n+2; i++ {
				wantS, wantA, wantM := a[i]*s, a[i]+b[i], a[i]*b[i]
				if i >= n {
					wantS, wantA, wantM = a[i], 0, a[i]
				}
				if x[i] != wantS || dst[i] != wantA || prod[i] != wantM {
					t.Fatalf("n=%d i=%d: scale %g/%g add %g/%g mul %g/%g", n, i, x[i], wantS, dst[i], wantA, prod[i], wantM)
				}
			}
		}
	})
}

func TestSumSquares(t *testing.T) {
	forLevels(t, func(t *testing.T, lv cpu.Level) {
		r := rand.New(rand.NewPCG(6, uint64(lv)))
		for _, n := range testLens {
			x := randVec(r, n)
			var exact float64
			for _, v := range x {
				exact += float64(v) * float64(v)
			}
			got := SumSquares(x)
			// Four accumulators of L lanes: at most ⌈n/4L⌉+2 additions per lane, then 2+log2 L.
			if d := math.Abs(float64(got) - exact); d > dotBound(lv, n, exact) {
				t.Fatalf("n=%d: got %g want %g (err %g)", n, got, exact, d)
			}
		}
	})
}

func TestMax(t *testing.T) {
	forLevels(t, func(t *testing.T, lv cpu.Level) {
		r := rand.New(rand.NewPCG(7, uint64(lv)))
		if m := Max(nil); !math.IsInf(float64(m), -1) {
			t.Fatalf("Max(nil) = %g", m)
		}
		for _, n := range testLens {
			if n == 0 {
				continue
			}
			for _, pos := range []int{0, n - 1, r.IntN(n)} {
				x := randVec(r, n)
				for i := range x {
					x[i] = -1 - float32(math.Abs(float64(x[i]))) // all negative: masked lanes must not win
				}
				x[pos] = -0.5
				if got := Max(x); got != -0.5 {
					t.Fatalf("n=%d pos=%d: Max = %g", n, pos, got)
				}
			}
		}
		x := []float32{float32(math.Inf(-1)), float32(math.Inf(-1))}
		if got := Max(x); !math.IsInf(float64(got), -1) {
			t.Fatalf("Max(-Inf, -Inf) = %g", got)
		}
	})
}

// ulpErr returns |got - want| in units of the float32 spacing at want
// (subnormal spacing below the normal range).
func ulpErr(got float32, want float64) float64 {
	if math.IsInf(want, 0) || want > math.MaxFloat32 {
		if math.IsInf(float64(got), 1) {
			return 0
		}
		return math.Inf(1)
	}
	e := math.Max(math.Abs(want), 0x1p-126)
	ulp := math.Ldexp(1, math.Ilogb(e)-23)
	return math.Abs(float64(got)-want) / ulp
}

// TestExpAccuracy sweeps every 251st float32 in [-110, 89] and
// states the maximum error of the vectorised exp on each path.
func TestExpAccuracy(t *testing.T) {
	var in []float32
	const step = 251                                // a prime, so the low mantissa bits vary too
	for b := uint32(0); b < 0x42b20000; b += step { // [0, 89)
		in = append(in, math.Float32frombits(b))
	}
	for b := uint32(0x80000000); b < 0xc2dc0000; b += step { // (-110, -0]
		in = append(in, math.Float32frombits(b))
	}
	forLevels(t, func(t *testing.T, lv cpu.Level) {
		x := append([]float32(nil), in...)
		ExpSub(x, 0)
		worst, at := 0.0, float32(0)
		for i, v := range in {
			if e := ulpErr(x[i], math.Exp(float64(v))); e > worst {
				worst, at = e, v
			}
		}
		t.Logf("%v: max exp error %.3f ulp (at %g) over %d inputs", lv, worst, at, len(in))
		if worst > 1 {
			t.Fatalf("exp error %.3f ulp at %g exceeds 1", worst, at)
		}
	})
}

func TestExpSub(t *testing.T) {
	inf := float32(math.Inf(1))
	nan := float32(math.NaN())
	forLevels(t, func(t *testing.T, lv cpu.Level) {
		r := rand.New(rand.NewPCG(8, uint64(lv)))
		for _, n := range testLens {
			x0 := randVec(r, n+4)
			for i := range x0 {
				x0[i] *= 8
			}
			m := Max(x0[:max(n, 1)])
			x := append([]float32(nil), x0...)
			sum := ExpSub(x[:n], m)
			var exact float64
			for i := 0; i < n; i++ {
				want := math.Exp(float64(x0[i] - m))
				exact += want
				if e := ulpErr(x[i], want); e > 1 {
					t.Fatalf("n=%d i=%d: exp(%g) = %g, want %g (%.2f ulp)", n, i, x0[i]-m, x[i], want, e)
				}
			}
			for i := n; i < n+4; i++ {
				if x[i] != x0[i] {
					t.Fatalf("n=%d: wrote x[%d]", n, i)
				}
			}
			if d := math.Abs(float64(sum) - exact); d > dotBound(lv, n, exact)+3*0x1p-24*exact {
				t.Fatalf("n=%d: sum %g want %g", n, sum, exact)
			}
		}
		sp := []float32{float32(math.Inf(-1)), inf, nan, -200, 200, 88.7, -103.5, -87.5, 0, float32(math.Copysign(0, -1))}
		for n := 1; n <= len(sp); n++ { // specials at every lane position incl. tails
			x := append([]float32(nil), sp[:n]...)
			ExpSub(x, 0)
			for i, v := range sp[:n] {
				want := float32(math.Exp(float64(v)))
				if v != v {
					if x[i] == x[i] {
						t.Fatalf("exp(NaN) = %g", x[i])
					}
					continue
				}
				if ulpErr(x[i], math.Exp(float64(v))) > 1 {
					t.Fatalf("exp(%g) = %g, want %g", v, x[i], want)
				}
			}
		}
	})
}

func TestSiLUMul(t *testing.T) {
	forLevels(t, func(t *testing.T, lv cpu.Level) {
		r := rand.New(rand.NewPCG(9, uint64(lv)))
		worst := 0.0
		for _, n := range testLens {
			g, u := randVec(r, n+3), randVec(r, n+3)
			for i := range g {
				g[i] *= 4
			}
			g[0] = -120 // exp(-g) overflows: silu → -0
			dst := make([]float32, n+3)
			SiLUMul(dst[:n], g[:n], u[:n])
			for i := 0; i < n+3; i++ {
				if i >= n {
					if dst[i] != 0 {
						t.Fatalf("n=%d: wrote dst[%d]", n, i)
					}
					continue
				}
				gg := float64(g[i])
				want := gg / (1 + math.Exp(-gg)) * float64(u[i])
				// Below g ≈ -87, exp(-|g|) is subnormal, with an absolute
				// accuracy of 2^-150: allow that on top of 4 ulp.
				tiny := math.Abs(gg*float64(u[i])) * 0x1p-149
				e := ulpErr(dst[i], want)
				if e > 4 && math.Abs(float64(dst[i])-want) > tiny {
					t.Fatalf("n=%d i=%d: silu(%g)*%g = %g, want %g (%.2f ulp)", n, i, g[i], u[i], dst[i], want, e)
				}
				if gg > -87 {
					worst = max(worst, e)
				}
			}
			// dst aliasing gate.
			g2 := append([]float32(nil), g...)
			SiLUMul(g2[:n], g2[:n], u[:n])
			for i := 0; i < n; i++ {
				if g2[i] != dst[i] {
					t.Fatalf("aliased SiLUMul differs at %d", i)
				}
			}
		}
		t.Logf("%v: max SiLUMul error %.2f ulp (gate > -87)", lv, worst)
		inf := float32(math.Inf(1))
		sp := []float32{inf, float32(math.Inf(-1)), float32(math.NaN()), 0, 200, -200}
		dst := make([]float32, len(sp))
		SiLUMul(dst, sp, []float32{1, 1, 1, 1, 1, 1})
		if dst[0] != inf || dst[1] == dst[1] || dst[2] == dst[2] || dst[3] != 0 || dst[4] != 200 || dst[5] != 0 {
			t.Fatalf("silu(+Inf, -Inf, NaN, 0, 200, -200) = %v", dst)
		}
	})
}

func TestNoAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(10, 10))
	const k = 1100
	w, x := randVec(r, 20*k), randVec(r, 5*k)
	wh, _ := toF16(w)
	y := make([]float32, 5*20)
	forLevels(t, func(t *testing.T, lv cpu.Level) {
		checks := map[string]func(){
			"DotF32":       func() { DotF32(w[:k], x[:k]) },
			"DotF16":       func() { DotF16(wh[:k], x[:k]) },
			"DotBF16":      func() { DotBF16(wh[:k], x[:k]) },
			"DotF16Rows":   func() { DotF16Rows(y[:19], wh, x[:k]) },
			"GemmF32":      func() { GemmF32(20, 5, k, w, x, y, 20) },
			"GemmF16":      func() { GemmF16(20, 5, k, wh, x, y, 20) },
			"GemmBF16":     func() { GemmBF16(17, 5, k, wh, x, y, 20) },
			"F16ToF32":     func() { F16ToF32(y[:37], wh[:37]) },
			"F32ToF16":     func() { F32ToF16(wh[:37], x[:37]) },
			"Axpy":         func() { Axpy(0.5, x[:37], y[:37]) },
			"AxpyF16":      func() { AxpyF16(0.5, wh[:37], y[:37]) },
			"Scale":        func() { Scale(1, y[:37]) },
			"Add":          func() { Add(y[:37], y[:37], x[:37]) },
			"Mul":          func() { Mul(y[:37], y[:37], x[:37]) },
			"SumSquares":   func() { SumSquares(x[:37]) },
			"Max":          func() { Max(x[:37]) },
			"ExpSub":       func() { ExpSub(y[:37], 10) },
			"SiLUMul":      func() { SiLUMul(y[:37], x[:37], x[37:74]) },
			"DotF32Stack":  func() { var a [37]float32; DotF32(a[:], a[:]) },
			"AccumRowsF32": func() { AccumRowsF32(y[:77], x[:19], w, 100) },
			"AccumRowsF16": func() { AccumRowsF16(y[:64], x[:256], wh, 64) },
			"AccumRowsBF16Multi": func() {
				AccumRowsBF16Multi(y[:100], 10, x, 300, 256, wh, 80)
			},
		}
		for name, f := range checks {
			if n := testing.AllocsPerRun(20, f); n != 0 {
				t.Errorf("%s allocates %v times per call", name, n)
			}
		}
	})
}

func TestPanicsOnBadShapes(t *testing.T) {
	for name, f := range map[string]func(){
		"Dot":        func() { DotF32(make([]float32, 3), make([]float32, 4)) },
		"Rows":       func() { DotF16Rows(make([]float32, 3), make([]uint16, 8), make([]float32, 3)) },
		"GemmW":      func() { GemmF32(2, 2, 3, make([]float32, 5), make([]float32, 6), make([]float32, 4), 2) },
		"GemmX":      func() { GemmF32(2, 2, 3, make([]float32, 6), make([]float32, 5), make([]float32, 4), 2) },
		"GemmY":      func() { GemmF32(2, 2, 3, make([]float32, 6), make([]float32, 6), make([]float32, 4), 3) },
		"GemmLdy":    func() { GemmF32(2, 2, 3, make([]float32, 6), make([]float32, 6), make([]float32, 4), 1) },
		"Conversion": func() { F16ToF32(make([]float32, 3), make([]uint16, 4)) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

func Example() {
	w := []uint16{0x3c00, 0x4000, 0xc000} // f16 1, 2, -2
	x := []float32{1, 2, 3}
	fmt.Println(DotF16(w, x))
	// Output: -1
}
