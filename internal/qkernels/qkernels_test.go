package qkernels

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/kvserve/kvserve/internal/cpu"
	"github.com/kvserve/kvserve/internal/cpu/cputest"
	"github.com/kvserve/kvserve/internal/tensor"
)

var (
	legacyTypes = []tensor.Type{tensor.Q8_0, tensor.Q4_0, tensor.Q4_1, tensor.Q5_0, tensor.Q5_1, tensor.IQ4_NL}
	kTypes      = []tensor.Type{tensor.Q4_K, tensor.Q5_K, tensor.Q6_K, tensor.Q3_K, tensor.Q2_K, tensor.IQ4_XS,
		tensor.IQ3_S, tensor.IQ3_XXS, tensor.IQ2_S, tensor.IQ2_XS, tensor.IQ2_XXS, tensor.IQ1_M, tensor.IQ1_S}
	// Weight-only 32-blocks (no cache kernels): MXFP4.
	weightOnlyTypes = []tensor.Type{tensor.MXFP4}
	allTypes        = append(append(append([]tensor.Type{}, legacyTypes...), kTypes...), weightOnlyTypes...)
)

// forLevels runs f once per path this CPU supports, as a subtest.
func forLevels(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	cputest.ForLevels(t, cpu.Block, func(t *testing.T, _ cpu.Level) { f(t) })
}

func randFloats(r *rand.Rand, n int, scale float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64() * scale)
	}
	// Some outliers and exact zeros, as real activations have.
	for i := 0; i < n/50; i++ {
		v[r.IntN(n)] *= 20
		v[r.IntN(n)] = 0
	}
	return v
}

func quantRow(t tensor.Type, v []float32) []byte {
	if !tensor.Quantizable(t) {
		// Read-only types: random bytes with sane scales.
		return rawRow(rand.New(rand.NewPCG(uint64(len(v)), uint64(t))), t, len(v))
	}
	b := make([]byte, t.RowSize(len(v)))
	tensor.QuantizeRow(t, v, b)
	return b
}

// rawRow returns a row of type t whose quantized values are uniformly random
// bytes (so every extreme value occurs: Q8 bytes of -128, nibbles of 15, all
// high bits set...) and whose scales are random finite binary16 values.
func rawRow(r *rand.Rand, t tensor.Type, n int) []byte {
	b := make([]byte, t.RowSize(n))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	f16 := func(off int) {
		binary.LittleEndian.PutUint16(b[off:], tensor.F32ToF16(float32(r.NormFloat64()*0.05)))
	}
	bs := t.TypeSize()
	for blk := 0; blk < len(b)/bs; blk++ {
		o := blk * bs
		switch t {
		case tensor.Q8_0, tensor.Q4_0, tensor.Q5_0, tensor.IQ4_NL:
			f16(o)
		case tensor.MXFP4:
			b[o] = byte(115 + r.IntN(16)) // scales 2^-13 .. 2^2
		case tensor.Q4_1, tensor.Q5_1, tensor.Q4_K, tensor.Q5_K:
			f16(o)
			f16(o + 2)
		case tensor.Q8_1:
			f16(o)
			f16(o + 2)
		case tensor.Q6_K:
			f16(o + 208)
		case tensor.Q2_K:
			f16(o + 80)
			f16(o + 82)
		case tensor.Q3_K:
			f16(o + 108)
		case tensor.IQ4_XS, tensor.IQ3_S, tensor.IQ3_XXS, tensor.IQ2_S, tensor.IQ2_XS, tensor.IQ2_XXS, tensor.IQ1_S:
			f16(o)
		case tensor.IQ1_M:
			// d's four nibbles are the top nibbles of the scales' uint16s.
			d := tensor.F32ToF16(float32(r.NormFloat64() * 0.05))
			for i := 0; i < 4; i++ {
				p := o + 48 + 2*i
				v := binary.LittleEndian.Uint16(b[p:])&0x0fff | (d>>(4*i)&15)<<12
				binary.LittleEndian.PutUint16(b[p:], v)
			}
		case tensor.Q8_K:
			binary.LittleEndian.PutUint32(b[o:], math.Float32bits(float32(r.NormFloat64()*0.01)))
		}
	}
	return b
}

// rowPair returns a weight row of type t and an activation row of its
// vec-dot type, either quantized from random data or raw random bytes.
func rowPair(r *rand.Rand, t tensor.Type, n int, raw bool) (w, x []byte) {
	vt := t.VecDotType()
	if raw {
		return rawRow(r, t, n), rawRow(r, vt, n)
	}
	return quantRow(t, randFloats(r, n, 0.02)), quantRow(vt, randFloats(r, n, 1))
}

func sizesFor(t tensor.Type) []int {
	if t.BlockSize() == 256 {
		return []int{256, 512, 768, 1280, 2048, 4352}
	}
	return []int{32, 64, 96, 128, 160, 224, 256, 480, 512, 544, 1024, 1408, 2080}
}

func same(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) }

func TestDotMatchesVecDot(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		for _, ty := range allTypes {
			t.Run(ty.String(), func(t *testing.T) {
				for _, n := range sizesFor(ty) {
					for rep := 0; rep < 6; rep++ {
						w, x := rowPair(r, ty, n, rep%2 == 1)
						want := tensor.VecDot(ty, n, w, x)
						if got := Dot(ty, n, w, x); !same(got, want) {
							t.Fatalf("%s n=%d rep=%d: Dot=%g (%08x), VecDot=%g (%08x)", ty, n, rep, got, math.Float32bits(got), want, math.Float32bits(want))
						}
					}
				}
			})
		}
	})
}

func TestDotRows(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		for _, ty := range allTypes {
			t.Run(ty.String(), func(t *testing.T) {
				ns := []int{64, 128, 256, 512}
				if ty.BlockSize() == 256 {
					ns = []int{256, 512, 1024}
				}
				for _, n := range ns {
					rs := ty.RowSize(n)
					for _, rows := range []int{1, 2, 3, 5, 16, 17, 37} {
						for _, pad := range []int{0, 7, rs} {
							stride := rs + pad
							w := make([]byte, (rows-1)*stride+rs)
							for i := 0; i < rows; i++ {
								wr, _ := rowPair(r, ty, n, i%3 == 2)
								copy(w[i*stride:], wr)
							}
							_, x := rowPair(r, ty, n, rows%2 == 1)
							y := make([]float32, rows+3)
							for i := range y {
								y[i] = -7
							}
							DotRows(ty, n, w, stride, rows, x, y)
							for i := 0; i < rows; i++ {
								want := tensor.VecDot(ty, n, w[i*stride:i*stride+rs], x)
								if !same(y[i], want) {
									t.Fatalf("%s n=%d rows=%d stride=%d row %d: %g, want %g", ty, n, rows, stride, i, y[i], want)
								}
							}
							for i := rows; i < len(y); i++ {
								if y[i] != -7 {
									t.Fatalf("%s: DotRows wrote y[%d] beyond rows=%d", ty, i, rows)
								}
							}
						}
					}
				}
			})
		}
	})
}

// checkGemm runs Gemm on the given matrices and checks every output against
// Dot (bit-identical: batch invariance) and tensor.VecDot, and that nothing
// else in y was written.
func checkGemm(t *testing.T, ty tensor.Type, m, nTok, k int, w []byte, ldw int, x []byte, ldx int) {
	t.Helper()
	vt := ty.VecDotType()
	ldy := m + 3
	y := make([]float32, (nTok-1)*ldy+m+5)
	for i := range y {
		y[i] = -7
	}
	Gemm(ty, m, nTok, k, w, ldw, x, ldx, y, ldy)
	rw, rx := ty.RowSize(k), vt.RowSize(k)
	for j := 0; j < nTok; j++ {
		xj := x[j*ldx : j*ldx+rx]
		for i := 0; i < m; i++ {
			wi := w[i*ldw : i*ldw+rw]
			got := y[j*ldy+i]
			if d := Dot(ty, k, wi, xj); !same(got, d) {
				t.Fatalf("%s m=%d nTok=%d k=%d: y[tok %d][row %d] = %g (%08x), Dot = %g (%08x)", ty, m, nTok, k, j, i, got, math.Float32bits(got), d, math.Float32bits(d))
			}
			if v := tensor.VecDot(ty, k, wi, xj); !same(got, v) {
				t.Fatalf("%s m=%d nTok=%d k=%d: y[tok %d][row %d] = %g, VecDot = %g", ty, m, nTok, k, j, i, got, v)
			}
		}
	}
	for j := 0; j < nTok; j++ {
		for i := m; i < ldy && j*ldy+i < len(y); i++ {
			if y[j*ldy+i] != -7 {
				t.Fatalf("%s: Gemm wrote y[%d] outside the m×nTok outputs", ty, j*ldy+i)
			}
		}
	}
}

func randMatrix(r *rand.Rand, ty tensor.Type, rows, k, ld int, raw bool, scale float64) []byte {
	rs := ty.RowSize(k)
	b := make([]byte, (rows-1)*ld+rs)
	for i := 0; i < rows; i++ {
		var row []byte
		if raw {
			row = rawRow(r, ty, k)
		} else {
			row = quantRow(ty, randFloats(r, k, scale))
		}
		copy(b[i*ld:], row)
	}
	return b
}

// TestGemmBatchInvariance checks Gemm against Dot output by output over many
// shapes: every m (row-panel remainders), every nTok up to beyond two token
// tiles, several k.
func TestGemmBatchInvariance(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(5, 6))
		for _, ty := range allTypes {
			t.Run(ty.String(), func(t *testing.T) {
				ks := []int{32, 96, 128, 512, 544}
				if ty.BlockSize() == 256 {
					ks = []int{256, 512, 1280}
				}
				vt := ty.VecDotType()
				for _, k := range ks {
					for _, shape := range [][2]int{{1, 1}, {3, 2}, {16, 8}, {17, 9}, {33, 17}, {40, 24}, {5, 31}} {
						m, nTok := shape[0], shape[1]
						ldw := ty.RowSize(k) + r.IntN(3)*ty.TypeSize()
						ldx := vt.RowSize(k) + r.IntN(2)*5
						raw := r.IntN(2) == 0
						w := randMatrix(r, ty, m, k, ldw, raw, 0.02)
						x := randMatrix(r, vt, nTok, k, ldx, !raw, 1)
						checkGemm(t, ty, m, nTok, k, w, ldw, x, ldx)
					}
				}
			})
		}
	})
}

// TestGemmExhaustiveShapes sweeps every m and nTok in a range for one k per
// block family.
func TestGemmExhaustiveShapes(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, 8))
		for _, ty := range []tensor.Type{tensor.Q8_0, tensor.Q4_1, tensor.Q5_0, tensor.Q4_K, tensor.Q6_K} {
			t.Run(ty.String(), func(t *testing.T) {
				k := 160
				if ty.BlockSize() == 256 {
					k = 512
				}
				vt := ty.VecDotType()
				w := randMatrix(r, ty, 35, k, ty.RowSize(k), false, 0.02)
				x := randMatrix(r, vt, 19, k, vt.RowSize(k), false, 1)
				for m := 1; m <= 35; m += 1 + m/8 {
					for nTok := 1; nTok <= 19; nTok++ {
						checkGemm(t, ty, m, nTok, k, w, ty.RowSize(k), x, vt.RowSize(k))
					}
				}
			})
		}
	})
}

func TestGemmLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	forLevels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(9, 10))
		for _, ty := range []tensor.Type{tensor.Q8_0, tensor.Q4_K, tensor.IQ4_NL} {
			t.Run(ty.String(), func(t *testing.T) {
				k := 1408
				if ty.BlockSize() == 256 {
					k = 2048
				}
				vt := ty.VecDotType()
				m, nTok := 70, 41
				w := randMatrix(r, ty, m, k, ty.RowSize(k), false, 0.02)
				x := randMatrix(r, vt, nTok, k, vt.RowSize(k), false, 1)
				checkGemm(t, ty, m, nTok, k, w, ty.RowSize(k), x, vt.RowSize(k))
			})
		}
	})
}

func TestBadSizesPanic(t *testing.T) {
	mustPanic := func(name string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s: no panic", name)
			}
		}()
		f()
	}
	w := make([]byte, tensor.Q8_0.RowSize(64))
	x := make([]byte, tensor.Q8_0.RowSize(64))
	mustPanic("Dot short w", func() { Dot(tensor.Q8_0, 64, w[:10], x) })
	mustPanic("Dot bad n", func() { Dot(tensor.Q8_0, 60, w, x) })
	mustPanic("Dot bad type", func() { Dot(tensor.F16, 64, w, x) })
	mustPanic("Gemm short y", func() { Gemm(tensor.Q8_0, 1, 2, 64, w, len(w), append(x, x...), len(x), make([]float32, 1), 1) })
	mustPanic("Gemm ldy", func() { Gemm(tensor.Q8_0, 1, 1, 64, w, len(w), x, len(x), make([]float32, 4), 0) })
	mustPanic("DotRows stride", func() { DotRows(tensor.Q8_0, 64, w, 3, 1, x, make([]float32, 1)) })
	mustPanic("Quantize type", func() { Quantize(tensor.Q4_K, make([]byte, tensor.Q4_K.RowSize(256)), make([]float32, 256)) })
	mustPanic("QuantizeQ8_K size", func() { QuantizeQ8_K(make([]byte, 292), make([]float32, 32)) })
	mustPanic("AxpyRow size", func() { AxpyRow(tensor.Q4_0, 1, make([]byte, 17), make([]float32, 32)) })
}

func TestEmpty(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		if got := Dot(tensor.Q8_0, 0, nil, nil); got != 0 {
			t.Fatalf("empty Dot = %g", got)
		}
		y := []float32{5, 5}
		Gemm(tensor.Q4_K, 2, 1, 0, nil, 0, nil, 0, y, 2)
		if y[0] != 0 || y[1] != 0 {
			t.Fatalf("k=0 Gemm left %v", y)
		}
	})
}

func ExampleGemm() {
	const k = 64
	w := make([]byte, tensor.Q8_0.RowSize(k))
	tensor.QuantizeRow(tensor.Q8_0, make([]float32, k), w)
	x := make([]byte, tensor.Q8_0.RowSize(k))
	QuantizeQ8_0(x, make([]float32, k))
	y := make([]float32, 1)
	Gemm(tensor.Q8_0, 1, 1, k, w, len(w), x, len(x), y, 1)
	fmt.Println(y[0])
	// Output: 0
}

// TestConcurrent runs Gemm and DotRows from several goroutines at once (the
// scratch pool must hand each call its own memory).
func TestConcurrent(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	ty, k, m, nTok := tensor.Q4_K, 512, 37, 11
	vt := ty.VecDotType()
	w := randMatrix(r, ty, m, k, ty.RowSize(k), false, 0.02)
	x := randMatrix(r, vt, nTok, k, vt.RowSize(k), false, 1)
	want := make([]float32, m*nTok)
	for j := 0; j < nTok; j++ {
		for i := 0; i < m; i++ {
			want[j*m+i] = tensor.VecDot(ty, k, w[i*ty.RowSize(k):(i+1)*ty.RowSize(k)], x[j*vt.RowSize(k):(j+1)*vt.RowSize(k)])
		}
	}
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func(g int) {
			y := make([]float32, m*nTok)
			for rep := 0; rep < 20; rep++ {
				if g%2 == 0 {
					Gemm(ty, m, nTok, k, w, ty.RowSize(k), x, vt.RowSize(k), y, m)
				} else {
					for j := 0; j < nTok; j++ {
						DotRows(ty, k, w, ty.RowSize(k), m, x[j*vt.RowSize(k):(j+1)*vt.RowSize(k)], y[j*m:])
					}
				}
				for i := range y {
					if !same(y[i], want[i]) {
						errs <- fmt.Errorf("goroutine %d: y[%d] = %g, want %g", g, i, y[i], want[i])
						return
					}
				}
			}
			errs <- nil
		}(g)
	}
	for g := 0; g < 8; g++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestTypesMatchTable: the type lists these tests run every kernel over
// are exactly the block types tensor's traits table gives each kernel, so
// no row claims a kernel that is not tested here.
func TestTypesMatchTable(t *testing.T) {
	sorted := func(x []tensor.Type) []tensor.Type { x = slices.Clone(x); slices.Sort(x); return x }
	for _, c := range []struct {
		k    tensor.Kernel
		want []tensor.Type
	}{
		{tensor.KGemm, allTypes},
		{tensor.KAccum, legacyTypes},
		{tensor.KDecode, legacyTypes},
		{tensor.KEncode, append(append([]tensor.Type{tensor.Q8_0}, actTypes[1:]...), kvTypes...)},
	} {
		if got := typesWith(c.k); !slices.Equal(sorted(got), sorted(c.want)) {
			t.Errorf("table: block types with kernels %b = %v, tested %v", c.k, got, c.want)
		}
	}
	for _, ty := range allTypes {
		if !Supported(ty) {
			t.Errorf("Supported(%s) = false", ty)
		}
	}
	for _, ty := range []tensor.Type{tensor.F32, tensor.F16, tensor.Q8_1, tensor.Q8_K, tensor.TQ1_0, tensor.Type(999)} {
		if Supported(ty) || CanDequantize(ty) {
			t.Errorf("%s: Supported %v, CanDequantize %v", ty, Supported(ty), CanDequantize(ty))
		}
	}
}
