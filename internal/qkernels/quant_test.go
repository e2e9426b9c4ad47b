package qkernels

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kvserve/kvserve/internal/gguf"
	"github.com/kvserve/kvserve/internal/tensor"
	"github.com/kvserve/kvserve/internal/testassets"
)

var actTypes = []tensor.Type{tensor.Q8_0, tensor.Q8_1, tensor.Q8_K}

func checkQuantize(t *testing.T, ty tensor.Type, src []float32, what string) {
	t.Helper()
	want := make([]byte, ty.RowSize(len(src)))
	tensor.QuantizeRow(ty, src, want)
	got := make([]byte, len(want))
	for i := range got {
		got[i] = 0xa5
	}
	Quantize(ty, got, src)
	if !bytes.Equal(got, want) {
		for i := range got {
			if got[i] != want[i] {
				bs := ty.TypeSize()
				t.Fatalf("%s %s: byte %d (block %d, offset %d) = %#02x, want %#02x", ty, what, i, i/bs, i%bs, got[i], want[i])
			}
		}
	}
}

// halfTies returns values that land exactly on, and a few ulps either
// side of, every k+0.5 (|k| ≤ 127) once scaled by the quantizer (a block
// maximum of 127 makes d = 1 and the inverse scale 1; a maximum of -127
// makes Q8_K's iscale 1).
func halfTies(neg bool) []float32 {
	var v []float32
	for k := -127; k <= 126; k++ {
		h := float32(k) + 0.5
		v = append(v, h, math.Nextafter32(h, 200), math.Nextafter32(h, -200),
			math.Nextafter32(math.Nextafter32(h, 200), 200), float32(k))
	}
	v = append(v, 0.49999997, -0.49999997, 0.5, -0.5, 1.4999999, -1.4999999, 0, float32(math.Copysign(0, -1)))
	// Blocks of 32 (and super-blocks of 256) each led by the maximum.
	var out []float32
	lead := float32(127)
	if neg {
		lead = -127
	}
	for i := 0; i < len(v); i += 31 {
		blk := []float32{lead}
		blk = append(blk, v[i:min(i+31, len(v))]...)
		for len(blk) < 32 {
			blk = append(blk, 0.5)
		}
		out = append(out, blk...)
	}
	for len(out)%256 != 0 {
		out = append(out, 0.5)
	}
	return out
}

func TestQuantizeTies(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		for _, ty := range actTypes {
			t.Run(ty.String(), func(t *testing.T) {
				checkQuantize(t, ty, halfTies(false), "ties, max +127")
				checkQuantize(t, ty, halfTies(true), "ties, max -127")
				// Same with a power-of-two scale: the products stay exact.
				for _, e := range []float32{1.0 / 1024, 8, 1 << 20} {
					v := halfTies(ty == tensor.Q8_K)
					for i := range v {
						v[i] *= e
					}
					checkQuantize(t, ty, v, "scaled ties")
				}
			})
		}
	})
}

func TestQuantizeSpecial(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(11, 12))
		cases := map[string]func(i int) float32{
			"zeros":       func(i int) float32 { return 0 },
			"neg zeros":   func(i int) float32 { return float32(math.Copysign(0, -1)) },
			"one nonzero": func(i int) float32 { return map[bool]float32{true: -3.25}[i%97 == 5] },
			"huge":        func(i int) float32 { return float32(r.NormFloat64() * 1e37) },
			"max float":   func(i int) float32 { return map[bool]float32{true: math.MaxFloat32, false: 1}[i%7 == 0] },
			"tiny":        func(i int) float32 { return float32(r.NormFloat64() * 1e-38) },
			"subnormal":   func(i int) float32 { return float32(r.NormFloat64() * 1e-42) },
			"sign ties":   func(i int) float32 { return float32([]int{3, -3, 1, -2}[i%4]) }, // first max decides Q8_K's sign
			"sign ties 2": func(i int) float32 { return float32([]int{-3, 3, 1, -2}[i%4]) },
			"inf":         func(i int) float32 { return map[bool]float32{true: float32(math.Inf(1))}[i%50 == 3] + 1 },
			"-inf":        func(i int) float32 { return map[bool]float32{true: float32(math.Inf(-1))}[i%50 == 3] + 1 },
			"integers":    func(i int) float32 { return float32(i%255 - 127) },
		}
		rows := map[string][]float32{}
		for name, f := range cases {
			v := make([]float32, 512)
			for i := range v {
				v[i] = f(i)
			}
			rows[name] = v
		}
		for _, ty := range actTypes {
			t.Run(ty.String(), func(t *testing.T) {
				for name, v := range rows {
					checkQuantize(t, ty, v, name)
				}
			})
		}
	})
}

func TestQuantizeRandom(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(13, 14))
		var rows [][]float32
		for rep := 0; rep < 200; rep++ {
			n := 256 * (1 + r.IntN(8))
			scale := math.Pow(10, float64(r.IntN(13)-6))
			rows = append(rows, randFloats(r, n, scale))
		}
		short := map[tensor.Type][2][]float32{}
		for _, ty := range []tensor.Type{tensor.Q8_0, tensor.Q8_1} {
			short[ty] = [2][]float32{randFloats(r, 32, 1), randFloats(r, 96, 1)}
		}
		for _, ty := range actTypes {
			t.Run(ty.String(), func(t *testing.T) {
				for _, v := range rows {
					checkQuantize(t, ty, v, "random")
				}
				if s, ok := short[ty]; ok {
					checkQuantize(t, ty, s[0], "one block")
					checkQuantize(t, ty, s[1], "three blocks")
				}
			})
		}
	})
}

// refAxpy is the definition AxpyRows is bit-identical to.
func refAxpy(ty tensor.Type, n int, rows []byte, stride, count int, a, y []float32) {
	v := make([]float32, n)
	for r := 0; r < count; r++ {
		tensor.DequantizeRow(ty, rows[r*stride:r*stride+ty.RowSize(n)], v)
		for i := range y {
			y[i] = y[i] + float32(a[r]*v[i])
		}
	}
}

func TestAxpyRows(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(15, 16))
		for _, ty := range allTypes {
			t.Run(ty.String(), func(t *testing.T) {
				ns := []int{32, 64, 128, 256, 288, 1024}
				if ty.BlockSize() == 256 {
					ns = []int{256, 512}
				}
				for _, n := range ns {
					for _, count := range []int{1, 2, 7, 64, 65, 130} {
						rs := ty.RowSize(n)
						stride := rs + r.IntN(2)*13
						rows := randMatrix(r, ty, count, n, stride, r.IntN(2) == 0, 0.5)
						a := randFloats(r, count, 1)
						y := randFloats(r, n, 1)
						want := append([]float32(nil), y...)
						refAxpy(ty, n, rows, stride, count, a, want)
						if count == 1 {
							AxpyRow(ty, a[0], rows[:rs], y)
						} else {
							AxpyRows(ty, n, rows, stride, count, a, y)
						}
						for i := range y {
							if !same(y[i], want[i]) {
								t.Fatalf("%s n=%d count=%d: y[%d] = %g, want %g", ty, n, count, i, y[i], want[i])
							}
						}
					}
				}
			})
		}
	})
}

func TestZeroAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	forLevels(t, func(t *testing.T) {
		for _, ty := range allTypes {
			t.Run(ty.String(), func(t *testing.T) {
				k := 512
				vt := ty.VecDotType()
				w := randMatrix(r, ty, 40, k, ty.RowSize(k), false, 0.02)
				x := randMatrix(r, vt, 20, k, vt.RowSize(k), false, 1)
				y := make([]float32, 40*20)
				src := randFloats(r, k, 1)
				dst := make([]byte, vt.RowSize(k))
				a := randFloats(r, 40, 1)
				yv := make([]float32, k)
				checks := map[string]func(){
					"Dot":      func() { sink = Dot(ty, k, w[:ty.RowSize(k)], x[:vt.RowSize(k)]) },
					"DotRows":  func() { DotRows(ty, k, w, ty.RowSize(k), 40, x[:vt.RowSize(k)], y) },
					"Gemm":     func() { Gemm(ty, 40, 20, k, w, ty.RowSize(k), x, vt.RowSize(k), y, 40) },
					"GemmN2":   func() { Gemm(ty, 40, 2, k, w, ty.RowSize(k), x, vt.RowSize(k), y, 40) },
					"Quantize": func() { Quantize(vt, dst, src) },
					"AxpyRow":  func() { AxpyRow(ty, 0.5, w[:ty.RowSize(k)], yv) },
					"AxpyRows": func() { AxpyRows(ty, k, w, ty.RowSize(k), 40, a, yv) },
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

// TestRealWeights runs every kernel on rows of the test model's weights
// (q4_K, q5_0, q6_K and q8_0 tensors) against real-looking activations.
func TestRealWeights(t *testing.T) {
	path := testassets.Path(t, "models/llamacpp-quantized/kvtest-27m-Q4_K_M.gguf")
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[tensor.Type]bool{}
	r := rand.New(rand.NewPCG(19, 20))
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		ty := ti.Type
		if !Supported(ty) || seen[ty] || len(ti.Dims) != 2 {
			continue
		}
		seen[ty] = true
		k, rows := int(ti.Dims[0]), int(ti.Dims[1])
		data := f.TensorData(ti)
		m := min(rows, 70)
		w := data[:m*ty.RowSize(k)]
		vt := ty.VecDotType()
		nTok := 13
		x := make([]byte, nTok*vt.RowSize(k))
		for j := 0; j < nTok; j++ {
			tensor.QuantizeRow(vt, randFloats(r, k, 1), x[j*vt.RowSize(k):(j+1)*vt.RowSize(k)])
		}
		t.Logf("%s: %s, %d rows of %d, testing %d rows", ti.Name, ty, rows, k, m)
		t.Run(ty.String()+"_"+ti.Name, func(t *testing.T) {
			forLevels(t, func(t *testing.T) {
				checkGemm(t, ty, m, nTok, k, w, ty.RowSize(k), x, vt.RowSize(k))
				checkGemm(t, ty, m, 1, k, w, ty.RowSize(k), x, vt.RowSize(k))
				y := make([]float32, m)
				DotRows(ty, k, w, ty.RowSize(k), m, x[:vt.RowSize(k)], y)
				for i := 0; i < m; i++ {
					if want := tensor.VecDot(ty, k, w[i*ty.RowSize(k):(i+1)*ty.RowSize(k)], x[:vt.RowSize(k)]); !same(y[i], want) {
						t.Fatalf("%s DotRows row %d: %g, want %g", ty, i, y[i], want)
					}
				}
				a := randFloats(r, m, 0.1)
				yv := randFloats(r, k, 1)
				want := append([]float32(nil), yv...)
				refAxpy(ty, k, w, ty.RowSize(k), m, a, want)
				AxpyRows(ty, k, w, ty.RowSize(k), m, a, yv)
				for i := range yv {
					if !same(yv[i], want[i]) {
						t.Fatalf("%s AxpyRows: y[%d] = %g, want %g", ty, i, yv[i], want[i])
					}
				}
			})
		})
	}
	for _, ty := range []tensor.Type{tensor.Q4_K, tensor.Q5_0, tensor.Q6_K, tensor.Q8_0} {
		if !seen[ty] {
			t.Errorf("no %s tensor found in %s", ty, path)
		}
	}
}
