package kernels

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/kvserve/kvserve/internal/cpu"
)

// accumType builds rows of one storage type from float32 values and runs
// the kernels on them; wf are the rows' exact f32 values.
type accumType struct {
	name   string
	make   func(v []float32) (wf []float32, r accumRowsOf)
	hasAxp bool // an Axpy of this type exists (the loop AccumRows replaces)
}

type accumRowsOf struct {
	single func(y, a []float32, stride int)
	multi  func(y []float32, dim int, a []float32, lda, n, stride int)
	axpy   func(a float32, off, dim int, y []float32) // Axpy with row elements [off, off+dim)
}

var accumTypes = []accumType{
	{"F32", func(v []float32) ([]float32, accumRowsOf) {
		return v, accumRowsOf{
			func(y, a []float32, stride int) { AccumRowsF32(y, a, v, stride) },
			func(y []float32, dim int, a []float32, lda, n, stride int) {
				AccumRowsF32Multi(y, dim, a, lda, n, v, stride)
			},
			func(a float32, off, dim int, y []float32) { Axpy(a, v[off:off+dim], y) },
		}
	}, true},
	{"F16", func(v []float32) ([]float32, accumRowsOf) {
		h, f := toF16(v)
		return f, accumRowsOf{
			func(y, a []float32, stride int) { AccumRowsF16(y, a, h, stride) },
			func(y []float32, dim int, a []float32, lda, n, stride int) {
				AccumRowsF16Multi(y, dim, a, lda, n, h, stride)
			},
			func(a float32, off, dim int, y []float32) { AxpyF16(a, h[off:off+dim], y) },
		}
	}, true},
	{"BF16", func(v []float32) ([]float32, accumRowsOf) {
		h, f := toBF16(v)
		return f, accumRowsOf{
			func(y, a []float32, stride int) { AccumRowsBF16(y, a, h, stride) },
			func(y []float32, dim int, a []float32, lda, n, stride int) {
				AccumRowsBF16Multi(y, dim, a, lda, n, h, stride)
			},
			nil,
		}
	}, false},
}

// accumModel is the documented order for one head: acc = y0[d], then for
// t ascending acc = fma(a[t], w(t,d), acc) on the assembly paths, and
// acc += a[t]·w(t,d) as Go computes it (the generic Axpy expression) on
// the generic path. It also returns, per d, the exact (float64) sum and
// the error bound (2n+1)·2⁻²⁴·(|y0|+Σ|a·w|).
func accumModel(lv cpu.Level, y0, a, wf []float32, stride int) (model []float32, exact, bound []float64) {
	dim, n := len(y0), len(a)
	model = make([]float32, dim)
	exact = make([]float64, dim)
	bound = make([]float64, dim)
	for d := range y0 {
		acc := y0[d]
		ex, abs := float64(y0[d]), math.Abs(float64(y0[d]))
		for t, c := range a {
			w := wf[t*stride+d]
			if lv == cpu.Generic {
				acc += c * w
			} else {
				acc = fma32(c, w, acc)
			}
			p := float64(c) * float64(w) // exact
			ex += p
			abs += math.Abs(p)
		}
		model[d], exact[d] = acc, ex
		bound[d] = float64(2*n+1)*0x1p-24*abs*1.01 + 1e-35
	}
	return model, exact, bound
}

func accumDims() []int {
	var d []int
	for i := 0; i <= 40; i++ {
		d = append(d, i)
	}
	return append(d, 47, 48, 49, 63, 64, 65, 72, 80, 95, 96, 100, 112, 127, 128, 129, 136, 144, 192, 200, 255, 256, 257, 300)
}

func isLongDim(dim int) bool {
	switch dim {
	case 7, 8, 9, 64, 80, 96, 128, 129, 256, 257:
		return true
	}
	return false
}

const accumSentinel = 0x7fc0beef

// TestAccumRows checks the single forms on every path against the model
// (bit for bit), the exact sum (bound), the Axpy loop they replace (bit
// for bit), and that nothing past y is written — over lengths 0..40 and
// past several register blocks, tails, and strides with misaligned rows.
func TestAccumRows(t *testing.T) {
	forLevels(t, func(t *testing.T, lv cpu.Level) {
		r := rand.New(rand.NewPCG(21, uint64(lv)))
		for _, at := range accumTypes {
			t.Run(strings.ToLower(at.name), func(t *testing.T) {
				for _, dim := range accumDims() {
					ns := []int{0, 1, 2, 3, 7, 33}
					if isLongDim(dim) {
						ns = append(ns, 256)
					}
					for _, n := range ns {
						for _, stride := range []int{dim, dim + 1, 2*dim + 5} {
							nrows := max(0, (n-1)*stride+dim)
							if n == 0 {
								nrows = r.IntN(3)
							}
							wf, rows := at.make(randVec(r, nrows))
							a := randVec(r, n)
							y0 := randVec(r, dim)
							y := append(append([]float32(nil), y0...), math.Float32frombits(accumSentinel))
							rows.single(y[:dim], a, stride)
							if math.Float32bits(y[dim]) != accumSentinel {
								t.Fatalf("AccumRows%s dim=%d n=%d stride=%d: wrote past y", at.name, dim, n, stride)
							}
							model, exact, bound := accumModel(lv, y0, a, wf, stride)
							for d := 0; d < dim; d++ {
								if math.Float32bits(y[d]) != math.Float32bits(model[d]) {
									t.Fatalf("AccumRows%s dim=%d n=%d stride=%d d=%d: got %g (%#x), model %g (%#x)",
										at.name, dim, n, stride, d, y[d], math.Float32bits(y[d]), model[d], math.Float32bits(model[d]))
								}
								if e := math.Abs(float64(y[d]) - exact[d]); e > bound[d] {
									t.Fatalf("AccumRows%s dim=%d n=%d d=%d: error %g > bound %g", at.name, dim, n, d, e, bound[d])
								}
							}
							if at.hasAxp {
								ya := append([]float32(nil), y0...)
								for i, c := range a {
									rows.axpy(c, i*stride, dim, ya)
								}
								for d := range ya {
									if math.Float32bits(y[d]) != math.Float32bits(ya[d]) {
										t.Fatalf("AccumRows%s dim=%d n=%d stride=%d d=%d: %g, Axpy loop %g", at.name, dim, n, stride, d, y[d], ya[d])
									}
								}
							}
						}
					}
				}
			})
		}
	})
}

// TestAccumRowsMulti: for G = 1..10 heads (two head groups past 8), every
// column-block split of both assembly paths, padded lda and stride, the
// Multi form equals one single-form call per head bit for bit (and so
// the model), and writes nothing past y.
func TestAccumRowsMulti(t *testing.T) {
	dims := []int{1, 5, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 40, 48, 56, 63, 64, 65, 72, 80, 96, 112, 128, 129, 136, 192, 200, 256}
	forLevels(t, func(t *testing.T, lv cpu.Level) {
		r := rand.New(rand.NewPCG(22, uint64(lv)))
		for _, at := range accumTypes {
			t.Run(strings.ToLower(at.name), func(t *testing.T) {
				for G := 1; G <= 10; G++ {
					for _, dim := range dims {
						for _, n := range []int{1, 4, 37} {
							lda := n + 3*r.IntN(2)
							stride := dim + 3*r.IntN(2)
							wf, rows := at.make(randVec(r, (n-1)*stride+dim))
							a := randVec(r, (G-1)*lda+n)
							y0 := randVec(r, G*dim)
							y := append(append([]float32(nil), y0...), math.Float32frombits(accumSentinel))
							rows.multi(y[:G*dim], dim, a, lda, n, stride)
							if math.Float32bits(y[G*dim]) != accumSentinel {
								t.Fatalf("AccumRows%sMulti G=%d dim=%d n=%d: wrote past y", at.name, G, dim, n)
							}
							for g := 0; g < G; g++ {
								ys := append([]float32(nil), y0[g*dim:(g+1)*dim]...)
								ag := a[g*lda : g*lda+n]
								rows.single(ys, ag, stride)
								model, _, _ := accumModel(lv, y0[g*dim:(g+1)*dim], ag, wf, stride)
								for d := 0; d < dim; d++ {
									got := y[g*dim+d]
									if math.Float32bits(got) != math.Float32bits(ys[d]) || math.Float32bits(got) != math.Float32bits(model[d]) {
										t.Fatalf("AccumRows%sMulti G=%d dim=%d n=%d lda=%d stride=%d head %d d=%d: got %g, single %g, model %g",
											at.name, G, dim, n, lda, stride, g, d, got, ys[d], model[d])
									}
								}
							}
						}
					}
				}
			})
		}
	})
}

// Inf and NaN go through the chain as IEEE arithmetic says: an Inf row
// element makes Inf, 0·Inf makes NaN, NaN propagates.
func TestAccumRowsSpecial(t *testing.T) {
	inf := float32(math.Inf(1))
	nan := float32(math.NaN())
	forLevels(t, func(t *testing.T, lv cpu.Level) {
		for _, dim := range []int{5, 16, 37} {
			rows := make([]float32, 3*dim)
			for i := range rows {
				rows[i] = 1
			}
			rows[0], rows[2], rows[2*dim+1] = inf, nan, inf
			y := make([]float32, dim)
			AccumRowsF32(y, []float32{1, -1, 0}, rows, dim)
			if !math.IsInf(float64(y[0]), 1) || y[1] == y[1] || y[2] == y[2] || y[3] != 0 || y[dim-1] != 0 {
				t.Fatalf("dim=%d: got %v", dim, y)
			}
		}
	})
}

func TestAccumRowsPanics(t *testing.T) {
	y, a, r := make([]float32, 8), make([]float32, 4), make([]float32, 64)
	h := make([]uint16, 64)
	for name, f := range map[string]func(){
		"stride<dim":     func() { AccumRowsF32(y, a, r, 7) },
		"short rows":     func() { AccumRowsF16(y, a, h[:3*9+7], 9) },
		"short rows 1":   func() { AccumRowsBF16(y, a[:1], h[:7], 8) },
		"huge stride":    func() { AccumRowsF32(y, a, r, math.MaxInt) },
		"multi ragged y": func() { AccumRowsF16Multi(y[:7], 2, a, 4, 2, h, 2) },
		"multi dim 0":    func() { AccumRowsF32Multi(y, 0, a, 4, 2, r, 2) },
		"multi neg n":    func() { AccumRowsF32Multi(y, 4, a, 4, -1, r, 4) },
		"multi lda<n":    func() { AccumRowsF32Multi(y, 4, a, 1, 2, r, 4) },
		"multi short a":  func() { AccumRowsF32Multi(y, 4, a, 3, 2, r, 4) },
		"multi huge lda": func() { AccumRowsF32Multi(y, 4, a, math.MaxInt/2+1, 2, r, 4) },
		"multi short r":  func() { AccumRowsF32Multi(y, 4, a, 2, 2, r[:7], 4) },
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
	// Empty work is fine whatever the (unused) shapes.
	AccumRowsF32(nil, a, nil, 0)
	AccumRowsF32(y, nil, nil, 0)
	AccumRowsF16Multi(nil, 0, nil, 0, 0, nil, 0)
	AccumRowsF16Multi(y, 4, nil, 0, 0, nil, 0)
}
