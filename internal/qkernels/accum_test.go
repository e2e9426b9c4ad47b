package qkernels

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/kvserve/kvserve/internal/cpu"
	"github.com/kvserve/kvserve/internal/cpu/cputest"
	"github.com/kvserve/kvserve/internal/kernels"
	"github.com/kvserve/kvserve/internal/tensor"
)

var fma32 = cputest.FMA32

// sameOrNaN is bit equality, except that any two NaNs match.
func sameOrNaN(a, b float32) bool {
	return same(a, b) || (a != a && b != b)
}

// accumCase is one AccumRowsMulti call: G heads of dim over n rows.
type accumCase struct {
	ty          tensor.Type
	dim, G, n   int
	lda, stride int
	y0, a       []float32
	rows        []byte
	deq         [][]float32 // DequantizeRow of each row
}

// newAccumCase builds random operands: rows quantized from random data or
// raw random bytes (row by row), coefficients like softmax weights or
// signed, lda and stride with slack.
func newAccumCase(r *rand.Rand, ty tensor.Type, dim, G, n int) *accumCase {
	c := &accumCase{ty: ty, dim: dim, G: G, n: n}
	rs := ty.RowSize(dim)
	c.stride = rs + []int{0, 0, 1, 7, rs + 5}[r.IntN(5)]
	c.lda = n + []int{0, 0, 1, 3}[r.IntN(4)]
	if G == 1 && r.IntN(2) == 0 {
		c.lda = 0
	}
	c.rows = make([]byte, max(0, (n-1)*c.stride+rs))
	for i := range c.rows {
		c.rows[i] = byte(r.Uint32())
	}
	c.deq = make([][]float32, n)
	for t := 0; t < n; t++ {
		var row []byte
		if r.IntN(3) == 0 {
			row = rawRow(r, ty, dim)
		} else {
			row = quantRow(ty, randFloats(r, dim, 0.5+r.Float64()))
		}
		copy(c.rows[t*c.stride:], row)
		c.deq[t] = make([]float32, dim)
		tensor.DequantizeRow(ty, row, c.deq[t])
	}
	na := 0
	if n > 0 {
		na = (G-1)*c.lda + n
	}
	c.a = make([]float32, na)
	for i := range c.a {
		if r.IntN(2) == 0 {
			c.a[i] = float32(r.Float64()) // softmax-like
		} else {
			c.a[i] = float32(r.NormFloat64())
		}
	}
	c.y0 = randFloats(r, G*dim, 1)
	return c
}

// model returns the documented result: per output, t ascending, fma32 on
// the assembly paths and the Go expression acc += a·v on the generic
// path; and per output the exact sum and the error bound
// (n+1)·2⁻²⁴·(|y0| + Σ|a·v|).
func (c *accumCase) model(lv cpu.Level) (y []float32, exact, bound []float64) {
	y = make([]float32, len(c.y0))
	exact = make([]float64, len(c.y0))
	bound = make([]float64, len(c.y0))
	for g := 0; g < c.G; g++ {
		for d := 0; d < c.dim; d++ {
			acc := c.y0[g*c.dim+d]
			ex, abs := float64(acc), math.Abs(float64(acc))
			for t := 0; t < c.n; t++ {
				a, v := c.a[g*c.lda+t], c.deq[t][d]
				if lv == cpu.Generic {
					acc += a * v
				} else {
					acc = fma32(a, v, acc)
				}
				p := float64(a) * float64(v)
				ex += p
				abs += math.Abs(p)
			}
			i := g*c.dim + d
			y[i], exact[i] = acc, ex
			bound[i] = float64(c.n+1)*0x1p-24*abs*1.0001 + 1e-38
		}
	}
	return y, exact, bound
}

func (c *accumCase) run() []float32 {
	y := append([]float32(nil), c.y0...)
	AccumRowsMulti(c.ty, y, c.dim, c.a, c.lda, c.n, c.rows, c.stride)
	return y
}

func (c *accumCase) String() string {
	return fmt.Sprintf("%s dim=%d G=%d n=%d lda=%d stride=%d (row %d)", c.ty, c.dim, c.G, c.n, c.lda, c.stride, c.ty.RowSize(c.dim))
}

func (c *accumCase) check(t *testing.T, lv cpu.Level) {
	t.Helper()
	got := c.run()
	want, exact, bound := c.model(lv)
	for i := range got {
		if !same(got[i], want[i]) {
			t.Fatalf("%v: y[head %d][%d] = %g (%#x), model %g (%#x)", c, i/c.dim, i%c.dim,
				got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
		}
		if e := math.Abs(float64(got[i]) - exact[i]); !(e <= bound[i]) {
			t.Fatalf("%v: y[head %d][%d] = %g, exact %g: error %g > bound %g", c, i/c.dim, i%c.dim, got[i], exact[i], e, bound[i])
		}
	}
}

func accumDims() []int { return []int{32, 64, 96, 128, 160, 192, 256, 288} }

// TestAccumRowsMulti checks AccumRowsMulti on every path against the model
// bit for bit and against the exact sum within the bound: every type,
// heads 1..12 (groups beyond 8, and beyond 4 on AVX2), dims of 1 to 9
// blocks (several passes, uneven last passes), n from 0 to 256 (across
// the 64-row chunks), strides and lda with slack.
func TestAccumRowsMulti(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		lv := cpu.Block.Level()
		r := rand.New(rand.NewPCG(31, uint64(lv)))
		for _, ty := range legacyTypes {
			t.Run(ty.String(), func(t *testing.T) {
				for _, dim := range accumDims() {
					for G := 1; G <= 12; G++ {
						if G > 8 && dim > 96 {
							continue
						}
						// Rows go in chunks of 64 in the assembly.
						ns := []int{0, 1, 2, 3, 7, 17}
						if G%2 == 1 || G == 4 || G == 8 {
							ns = append(ns, 65)
							if dim == 64 || dim == 128 {
								ns = append(ns, 63, 64, 129, 256)
							}
						}
						for _, n := range ns {
							newAccumCase(r, ty, dim, G, n).check(t, lv)
						}
					}
				}
			})
		}
	})
}

// TestAccumRowsMultiPerHead checks the batch identity: a Multi call equals
// one single-head call per head, and the paths agree within the bound.
func TestAccumRowsMultiPerHead(t *testing.T) {
	r := rand.New(rand.NewPCG(32, 1))
	for _, ty := range legacyTypes {
		t.Run(ty.String(), func(t *testing.T) {
			for _, dim := range []int{64, 128, 96} {
				for _, G := range []int{2, 4, 5, 8} {
					c := newAccumCase(r, ty, dim, G, 40)
					var ref []float32
					for _, lv := range cpu.Block.Levels() {
						restore := cpu.SetLevel(lv)
						got := c.run()
						for g := 0; g < G; g++ {
							yg := append([]float32(nil), c.y0[g*dim:(g+1)*dim]...)
							AccumRowsMulti(ty, yg, dim, c.a[g*c.lda:g*c.lda+c.n], 0, c.n, c.rows, c.stride)
							for d := range yg {
								if !same(yg[d], got[g*dim+d]) {
									t.Fatalf("%v %v: head %d alone differs at %d: %g vs %g", lv, c, g, d, yg[d], got[g*dim+d])
								}
							}
						}
						_, exact, bound := c.model(lv)
						if ref != nil {
							for i := range got {
								if e := math.Abs(float64(got[i]) - float64(ref[i])); !(e <= 2*bound[i]) {
									t.Fatalf("%v %v: y[%d] = %g, generic %g (exact %g)", lv, c, i, got[i], ref[i], exact[i])
								}
							}
						} else {
							ref = got
						}
						restore()
					}
				}
			}
		})
	}
}

// TestAccumRowsMultiMatchesKernels checks the assembly paths against
// kernels.AccumRowsF32Multi (whose assembly paths use the same fma chain)
// on the dequantized rows.
func TestAccumRowsMultiMatchesKernels(t *testing.T) {
	if cpu.Float.Level() == cpu.Generic {
		t.Skip("kernels has no assembly path here")
	}
	forLevels(t, func(t *testing.T) {
		if cpu.Block.Level() == cpu.Generic {
			t.Skip("the generic path is checked against its model")
		}
		r := rand.New(rand.NewPCG(38, uint64(cpu.Block.Level())))
		for _, ty := range legacyTypes {
			t.Run(ty.String(), func(t *testing.T) {
				for _, dim := range []int{64, 128, 96} {
					for _, G := range []int{1, 3, 4, 8} {
						c := newAccumCase(r, ty, dim, G, 100)
						got := c.run()
						f := make([]float32, c.n*dim)
						for t := range c.deq {
							copy(f[t*dim:], c.deq[t])
						}
						want := append([]float32(nil), c.y0...)
						kernels.AccumRowsF32Multi(want, dim, c.a, c.lda, c.n, f, dim)
						for i := range got {
							if !same(got[i], want[i]) {
								t.Fatalf("%v: y[%d] = %g, kernels.AccumRowsF32Multi %g", c, i, got[i], want[i])
							}
						}
					}
				}
			})
		}
	})
}

// TestAccumRowsMultiSpecial runs rows with extreme, subnormal, zero,
// infinite and NaN scales and mins, and infinite coefficients: the
// assembly paths must still match the model (NaN payloads aside).
func TestAccumRowsMultiSpecial(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		lv := cpu.Block.Level()
		r := rand.New(rand.NewPCG(33, uint64(lv)))
		scales := []uint16{0x0000, 0x8000, 0x0001, 0x8001, 0x03ff, 0x0400, 0x7bff, 0xfbff, 0x7c00, 0xfc00, 0x7e00, 0x7d01, 0x3c00, 0x1234}
		for _, ty := range legacyTypes {
			t.Run(ty.String(), func(t *testing.T) {
				for _, G := range []int{1, 4, 8} {
					c := newAccumCase(r, ty, 64, G, 50)
					bs := ty.TypeSize()
					for t := 0; t < c.n; t++ {
						row := c.rows[t*c.stride : t*c.stride+ty.RowSize(64)]
						for b := 0; b < 2; b++ {
							binary.LittleEndian.PutUint16(row[b*bs:], scales[r.IntN(len(scales))])
							if ty == tensor.Q4_1 || ty == tensor.Q5_1 {
								binary.LittleEndian.PutUint16(row[b*bs+2:], scales[r.IntN(len(scales))])
							}
						}
						tensor.DequantizeRow(ty, row, c.deq[t])
					}
					c.a[r.IntN(len(c.a))] = float32(math.Inf(1))
					got := c.run()
					want, _, _ := c.model(lv)
					for i := range got {
						if !sameOrNaN(got[i], want[i]) {
							t.Fatalf("%v: y[%d] = %g, model %g", c, i, got[i], want[i])
						}
					}
				}
			})
		}
	})
}

// TestAccumRowsMultiGenericIsAxpy checks that the generic path computes,
// where Go does not fuse a·v + y (amd64 at GOAMD64 v1/v2), what AxpyRows
// computes for each head.
func TestAccumRowsMultiGenericIsAxpy(t *testing.T) {
	if !goSplitsMulAdd() {
		t.Skip("the compiler fuses float32 a*b + c here")
	}
	defer cpu.SetLevel(cpu.Generic)()
	r := rand.New(rand.NewPCG(34, 1))
	for _, ty := range legacyTypes {
		t.Run(ty.String(), func(t *testing.T) {
			c := newAccumCase(r, ty, 128, 4, 33)
			got := c.run()
			for g := 0; g < c.G; g++ {
				yg := append([]float32(nil), c.y0[g*c.dim:(g+1)*c.dim]...)
				AxpyRows(ty, c.dim, c.rows, c.stride, c.n, c.a[g*c.lda:], yg)
				for d := range yg {
					if !same(yg[d], got[g*c.dim+d]) {
						t.Fatalf("%v: head %d: y[%d] = %g, AxpyRows %g", c, g, d, got[g*c.dim+d], yg[d])
					}
				}
			}
		})
	}
}

//go:noinline
func mulAdd32(a, b, c float32) float32 { return c + a*b }

// goSplitsMulAdd reports whether the compiler rounds a*b before adding c
// (a = 1+2⁻²³, b = 1-2⁻²³, c = -1: fused, the result is -2⁻⁴⁶; split, 0).
func goSplitsMulAdd() bool {
	return mulAdd32(1+0x1p-23, 1-0x1p-23, -1) == 0
}

// TestDequantize checks Dequantize on every path against
// tensor.DequantizeRow bit for bit: quantized and raw random rows of 1 to
// 70 blocks, and every special scale.
func TestDequantize(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(35, uint64(cpu.Block.Level())))
		for _, ty := range legacyTypes {
			t.Run(ty.String(), func(t *testing.T) {
				for nb := 0; nb <= 70; nb++ {
					n := 32 * nb
					for _, raw := range []bool{false, true} {
						var src []byte
						if raw {
							src = rawRow(r, ty, n)
						} else {
							src = quantRow(ty, randFloats(r, n, 1))
						}
						checkDequantize(t, ty, src, n, fmt.Sprintf("nb=%d raw=%v", nb, raw))
					}
				}
				// Every binary16 scale (and min) value, including subnormals,
				// infinities and NaNs, in blocks of random bytes.
				src := rawRow(r, ty, 32*1024)
				bs := ty.TypeSize()
				for h := 0; h < 1<<16; h++ {
					b := h % 1024
					binary.LittleEndian.PutUint16(src[b*bs:], uint16(h))
					if ty == tensor.Q4_1 || ty == tensor.Q5_1 {
						binary.LittleEndian.PutUint16(src[b*bs+2:], uint16(h*7919))
					}
					if b == 1023 {
						checkDequantize(t, ty, src, 32*1024, fmt.Sprintf("scales up to %#x", h))
					}
				}
			})
		}
	})
}

func checkDequantize(t *testing.T, ty tensor.Type, src []byte, n int, what string) {
	t.Helper()
	want := make([]float32, n)
	tensor.DequantizeRow(ty, src, want)
	got := make([]float32, n+1)
	got[n] = -7
	Dequantize(ty, got[:n], src)
	for i := range want {
		if !same(got[i], want[i]) {
			t.Fatalf("%s %s: element %d = %g (%#x), DequantizeRow %g (%#x)", ty, what, i,
				got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
		}
	}
	if got[n] != -7 {
		t.Fatalf("%s %s: wrote past the end", ty, what)
	}
}

func TestAccumDequantizeZeroAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(36, 1))
	forLevels(t, func(t *testing.T) {
		for _, ty := range legacyTypes {
			t.Run(ty.String(), func(t *testing.T) {
				c := newAccumCase(r, ty, 128, 4, 64)
				c8 := newAccumCase(r, ty, 96, 12, 200)
				y := append([]float32(nil), c.y0...)
				y8 := append([]float32(nil), c8.y0...)
				dst := make([]float32, 128)
				checks := map[string]func(){
					"AccumRowsMulti":   func() { AccumRowsMulti(ty, y, 128, c.a, c.lda, c.n, c.rows, c.stride) },
					"AccumRowsMulti12": func() { AccumRowsMulti(ty, y8, 96, c8.a, c8.lda, c8.n, c8.rows, c8.stride) },
					"Dequantize":       func() { Dequantize(ty, dst, c.rows[:ty.RowSize(128)]) },
				}
				for name, f := range checks {
					f()
					if n := testing.AllocsPerRun(20, f); n != 0 {
						t.Errorf("%s %s: %v allocations per call", ty, name, n)
					}
				}
			})
		}
	})
}

func TestAccumDequantizeBadSizes(t *testing.T) {
	mustPanic := func(name, want string, f func()) {
		t.Helper()
		defer func() {
			t.Helper()
			e := recover()
			if e == nil {
				t.Errorf("%s: no panic", name)
				return
			}
			if s := fmt.Sprint(e); !strings.Contains(s, "qkernels.") || !strings.Contains(s, want) {
				t.Errorf("%s: panic %q, want it to mention %q", name, s, want)
			}
		}()
		f()
	}
	q := tensor.Q4_0
	rs := q.RowSize(64) // 36
	rows := make([]byte, 3*rs)
	a := make([]float32, 8)
	y := make([]float32, 128)
	mustPanic("type", "unsupported type", func() { AccumRowsMulti(tensor.Q4_K, y, 64, a, 3, 3, rows, rs) })
	mustPanic("type f16", "unsupported type", func() { AccumRowsMulti(tensor.F16, y, 64, a, 3, 3, rows, rs) })
	mustPanic("dim", "dim=48", func() { AccumRowsMulti(q, y[:96], 48, a, 3, 3, rows, rs) })
	mustPanic("neg dim", "negative", func() { AccumRowsMulti(q, y, -32, a, 3, 3, rows, rs) })
	mustPanic("neg n", "negative", func() { AccumRowsMulti(q, y, 64, a, 3, -1, rows, rs) })
	mustPanic("dim 0", "dim=0", func() { AccumRowsMulti(q, y, 0, a, 3, 3, rows, rs) })
	mustPanic("heads", "whole number of heads", func() { AccumRowsMulti(q, y[:96], 64, a, 3, 3, rows, rs) })
	mustPanic("lda", "lda=2", func() { AccumRowsMulti(q, y, 64, a, 2, 3, rows, rs) })
	mustPanic("short a", "coefficients", func() { AccumRowsMulti(q, y, 64, a[:5], 3, 3, rows, rs) })
	mustPanic("short a one head", "coefficients", func() { AccumRowsMulti(q, y[:64], 64, a[:2], 0, 3, rows, rs) })
	mustPanic("stride", "stride 35", func() { AccumRowsMulti(q, y, 64, a, 3, 3, rows, rs-1) })
	mustPanic("short rows", "bytes for 3 rows", func() { AccumRowsMulti(q, y, 64, a, 3, 3, rows[:3*rs-1], rs) })
	mustPanic("short rows stride", "bytes for 3 rows", func() { AccumRowsMulti(q, y, 64, a, 3, 3, rows, rs+1) })
	mustPanic("one short row", "bytes for 1 rows", func() { AccumRowsMulti(q, y, 64, a, 3, 1, rows[:rs-1], rs) })
	mustPanic("Dequantize type", "unsupported type", func() { Dequantize(tensor.Q6_K, make([]float32, 256), make([]byte, 210)) })
	mustPanic("Dequantize n", "whole number", func() { Dequantize(q, make([]float32, 48), make([]byte, 27)) })
	mustPanic("Dequantize src", "src has 35", func() { Dequantize(q, make([]float32, 64), rows[:rs-1]) })
	// Valid edge cases do not panic.
	AccumRowsMulti(q, nil, 0, nil, 0, 5, nil, 0)
	AccumRowsMulti(q, y, 64, nil, 0, 0, nil, 0)
	AccumRowsMulti(q, nil, 64, a, 3, 3, rows, rs)
	Dequantize(q, nil, nil)
}
