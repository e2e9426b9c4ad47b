package qkernels

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kvserve/kvserve/internal/gguf"
	"github.com/kvserve/kvserve/internal/tensor"
	"github.com/kvserve/kvserve/internal/testassets"
)

// The KV-cache quantizers (Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL) against
// tensor.QuantizeRow, on every path.

var kvTypes = []tensor.Type{tensor.Q4_0, tensor.Q4_1, tensor.Q5_0, tensor.Q5_1, tensor.IQ4_NL}

// kvLens covers one to 40 blocks (every IQ4_NL remainder after groups of
// 16 and 8), then longer rows up to 16384 values (a page of a 64-wide head).
var kvLens = func() []int {
	var n []int
	for nb := 1; nb <= 40; nb++ {
		n = append(n, 32*nb)
	}
	return append(n, 32*47, 2048, 32*129, 4096, 16384)
}()

// checkKV checks Quantize and the typed entry point against
// tensor.QuantizeRow for one KV type.
func checkKV(t *testing.T, ty tensor.Type, src []float32, what string) {
	t.Helper()
	want := make([]byte, ty.RowSize(len(src)))
	tensor.QuantizeRow(ty, src, want)
	typed := map[tensor.Type]func([]byte, []float32){
		tensor.Q4_0: QuantizeQ4_0, tensor.Q4_1: QuantizeQ4_1, tensor.Q5_0: QuantizeQ5_0,
		tensor.Q5_1: QuantizeQ5_1, tensor.IQ4_NL: QuantizeIQ4_NL,
	}[ty]
	got := make([]byte, len(want))
	for k, f := range []func([]byte, []float32){func(d []byte, s []float32) { Quantize(ty, d, s) }, typed} {
		for i := range got {
			got[i] = 0xa5
		}
		f(got, src)
		if !bytes.Equal(got, want) {
			for i := range got {
				if got[i] != want[i] {
					bs := ty.TypeSize()
					t.Fatalf("%s %s (entry %d): byte %d (block %d, offset %d) = %#02x, want %#02x", ty, what, k, i, i/bs, i%bs, got[i], want[i])
				}
			}
		}
	}
}

func TestQuantizeKVRandom(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(21, 22))
		scales := []float64{1e-6, 1e-4, 3e-3, 0.1, 1, 7, 300, 3e4}
		type input struct {
			v    []float32
			what string
		}
		var inputs []input
		for _, n := range kvLens {
			reps := 4
			if n > 4096 {
				reps = 1
			}
			for rep := 0; rep < reps; rep++ {
				s := scales[r.IntN(len(scales))]
				v := randFloats(r, n, s)
				// Per-block scales from 1e-6 to 3e4 in the same row.
				w := randFloats(r, n, 1)
				for b := 0; b < n/32; b++ {
					f := float32(math.Pow(10, -6+r.Float64()*10.5))
					for i := 32 * b; i < 32*b+32; i++ {
						w[i] *= f
					}
				}
				inputs = append(inputs, input{v, fmt.Sprintf("n=%d scale %g", n, s)}, input{w, fmt.Sprintf("n=%d mixed block scales", n)})
			}
		}
		for _, ty := range kvTypes {
			t.Run(ty.String(), func(t *testing.T) {
				for _, in := range inputs {
					checkKV(t, ty, in.v, in.what)
				}
			})
		}
	})
}

// kvSpecial returns named rows of 1024 values (32 blocks).
func kvSpecial(r *rand.Rand) map[string][]float32 {
	negZero := float32(math.Copysign(0, -1))
	inf := float32(math.Inf(1))
	cases := map[string]func(i int) float32{
		"zeros":            func(i int) float32 { return 0 },
		"neg zeros":        func(i int) float32 { return negZero },
		"mixed zeros":      func(i int) float32 { return []float32{0, negZero}[r.IntN(2)] },
		"zeros then pos":   func(i int) float32 { return []float32{0, negZero, 0.5, 1, 3}[r.IntN(5)] },
		"zeros then neg":   func(i int) float32 { return []float32{0, negZero, -0.5, -1, -3}[r.IntN(5)] },
		"pos then zero":    func(i int) float32 { return map[bool]float32{true: 2}[i%32 < 5] * float32(1-2*(i/32%2)) },
		"constant":         func(i int) float32 { return 0.7 },
		"neg constant":     func(i int) float32 { return -1234.5 },
		"block constants":  func(i int) float32 { return float32(i/32-16) * 0.37 },
		"one nonzero":      func(i int) float32 { return map[bool]float32{true: -3.25}[i%97 == 5] },
		"outlier":          func(i int) float32 { return float32(r.NormFloat64()) + map[bool]float32{true: 900}[i%32 == 17] },
		"neg outlier":      func(i int) float32 { return float32(r.NormFloat64()*0.01) - map[bool]float32{true: 50}[i%32 == 3] },
		"negative only":    func(i int) float32 { return -float32(math.Abs(r.NormFloat64())) - 0.1 },
		"positive only":    func(i int) float32 { return float32(math.Abs(r.NormFloat64())) + 2 },
		"huge":             func(i int) float32 { return float32(r.NormFloat64() * 1e37) },
		"3e4":              func(i int) float32 { return float32(r.NormFloat64() * 3e4) },
		"max float":        func(i int) float32 { return map[bool]float32{true: math.MaxFloat32, false: 1}[i%7 == 0] },
		"-max float":       func(i int) float32 { return map[bool]float32{true: -math.MaxFloat32, false: 1}[i%7 == 0] },
		"max float span":   func(i int) float32 { return []float32{math.MaxFloat32, -math.MaxFloat32, 0}[i%3] },
		"tiny":             func(i int) float32 { return float32(r.NormFloat64() * 1e-38) },
		"subnormal":        func(i int) float32 { return float32(r.NormFloat64() * 1e-42) },
		"subnormal 2":      func(i int) float32 { return float32(r.NormFloat64() * 1e-44) },
		"smallest":         func(i int) float32 { return []float32{1e-45, -1e-45, 0, 3e-45}[r.IntN(4)] },
		"below eps":        func(i int) float32 { return float32(r.NormFloat64() * 3e-16) },
		"near eps":         func(i int) float32 { return []float32{1e-15, -1e-15, 0.99999e-15, 5e-16}[r.IntN(4)] },
		"sign ties":        func(i int) float32 { return float32([]int{3, -3, 1, -2}[i%4]) },
		"sign ties 2":      func(i int) float32 { return float32([]int{-3, 3, 1, -2}[i%4]) },
		"sign ties late":   func(i int) float32 { return float32([]int{1, -2, -3, 3}[i%4]) },
		"inf":              func(i int) float32 { return map[bool]float32{true: inf}[i%50 == 3] + 1 },
		"-inf":             func(i int) float32 { return map[bool]float32{true: -inf}[i%50 == 3] + 1 },
		"infs":             func(i int) float32 { return []float32{inf, -inf, 1, 0}[r.IntN(4)] },
		"integers":         func(i int) float32 { return float32(i%255 - 127) },
		"small integers":   func(i int) float32 { return float32(i%33 - 16) },
		"powers of two":    func(i int) float32 { return float32(math.Ldexp(1, r.IntN(60)-30)) * float32(1-2*r.IntN(2)) },
		"subnormal scales": func(i int) float32 { return float32(r.NormFloat64() * math.Pow(10, float64(-45+i/32%10))) },
	}
	out := map[string][]float32{}
	for name, f := range cases {
		v := make([]float32, 1024)
		for i := range v {
			v[i] = f(i)
		}
		out[name] = v
	}
	return out
}

func TestQuantizeKVSpecial(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(23, 24))
		special := kvSpecial(r)
		for _, ty := range kvTypes {
			t.Run(ty.String(), func(t *testing.T) {
				for name, v := range special {
					for _, n := range []int{32, 96, 224, 512, 1024} {
						checkKV(t, ty, v[:n], name)
					}
				}
			})
		}
	})
}

// TestQuantizeKVSubnormalScale builds blocks whose scale d is a subnormal
// with few significant bits (extremes of 1..80 units of 2^-149), so that
// x·(1/d) overshoots the quantizer's range: the reference's int8 wrap,
// signed clamp and byte packing then show in the output.
func TestQuantizeKVSubnormalScale(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(31, 32))
		unit := float32(math.Float32frombits(1)) // 2^-149
		var v []float32
		for k := 1; k <= 80; k++ {
			for _, sign := range []float32{1, -1} {
				blk := make([]float32, 32)
				blk[0] = sign * float32(k) * unit
				for i := 1; i < 32; i++ {
					blk[i] = float32(r.IntN(2*k+1)-k) * unit
				}
				blk[1+r.IntN(31)] = -blk[0] // the opposite extreme
				v = append(v, blk...)
				// min/max types: lo = -a units, hi = b units.
				a, b := r.IntN(k+1), r.IntN(2*k+1)
				for i := range blk {
					blk[i] = float32(r.IntN(a+b+1)-a) * unit
				}
				blk[r.IntN(32)], blk[r.IntN(32)] = -float32(a)*unit, float32(b)*unit
				v = append(v, blk...)
			}
		}
		for _, ty := range kvTypes {
			t.Run(ty.String(), func(t *testing.T) {
				checkKV(t, ty, v, "subnormal scales")
				for o := 0; o+128 <= len(v); o += 128 * 7 {
					checkKV(t, ty, v[o:o+128], "subnormal scales, one head")
				}
			})
		}
	})
}

// kvTies returns blocks whose values, once scaled by the quantizer, land
// exactly on (and one ulp either side of) every rounding boundary: the
// first element (or the minimum and maximum) fixes the scale at ±1, and
// the boundaries are k+0.5 before the offset (Q4_x, Q5_x) or midpoints of
// neighbouring levels (IQ4_NL).
func kvTies(ty tensor.Type, neg bool) []float32 {
	var lead, lo, hi float32 // lead: the maximum; lo/hi: the min/max pair
	var mids []float32
	switch ty {
	case tensor.Q4_0, tensor.Q5_0:
		m := float32(8)
		if ty == tensor.Q5_0 {
			m = 16
		}
		lead = -m
		if neg {
			lead = m
		}
		for k := -m - 1; k <= m; k++ {
			mids = append(mids, k+0.5)
		}
	case tensor.Q4_1, tensor.Q5_1:
		lo, hi = 0, 15
		if ty == tensor.Q5_1 {
			hi = 31
		}
		if neg {
			lo, hi = lo-hi, 0
		}
		for k := lo; k < hi; k++ {
			mids = append(mids, k+0.5)
		}
	case tensor.IQ4_NL:
		lead = -127
		if neg {
			lead = 127
		}
		kv := []int{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}
		for j := 1; j < 16; j++ {
			h := float32(kv[j-1]+kv[j]) / 2
			if neg {
				h = -h
			}
			mids = append(mids, h)
		}
	}
	var vals []float32
	for _, h := range mids {
		vals = append(vals, h, math.Nextafter32(h, 1000), math.Nextafter32(h, -1000), h+1)
	}
	var out []float32
	for i := 0; i < len(vals); i += 29 {
		var blk []float32
		if ty == tensor.Q4_1 || ty == tensor.Q5_1 {
			blk = append(blk, lo, hi, lo)
		} else {
			blk = append(blk, lead, 0, -lead/2)
		}
		for _, v := range vals[i:min(i+29, len(vals))] {
			// Keep the scale: nothing may exceed the lead's magnitude or
			// leave [lo, hi].
			switch {
			case ty == tensor.Q4_1 || ty == tensor.Q5_1:
				v = max(lo, min(hi, v))
			case float32(math.Abs(float64(v))) > float32(math.Abs(float64(lead))):
				v = lead / 2
			}
			blk = append(blk, v)
		}
		for len(blk) < 32 {
			blk = append(blk, blk[3])
		}
		out = append(out, blk...)
	}
	return out
}

func TestQuantizeKVTies(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		for _, ty := range kvTypes {
			t.Run(ty.String(), func(t *testing.T) {
				for _, neg := range []bool{false, true} {
					base := kvTies(ty, neg)
					// Power-of-two scales keep every product exact.
					for _, e := range []float32{1, 1.0 / 1024, 1 << 12, 1.0 / (1 << 30)} {
						v := append([]float32(nil), base...)
						for i := range v {
							v[i] *= e
						}
						// The scaled rows land on the boundaries: check that
						// the construction does (d = ±e exactly).
						if e == 1 && ty != tensor.Q4_1 && ty != tensor.Q5_1 {
							blk := make([]byte, ty.RowSize(32))
							tensor.QuantizeRow(ty, v[:32], blk)
							if d := tensor.F16ToF32(uint16(blk[0]) | uint16(blk[1])<<8); ty != tensor.IQ4_NL && math.Abs(float64(d)) != 1 {
								t.Fatalf("%s ties: d = %g, want ±1", ty, d)
							}
						}
						checkKV(t, ty, v, fmt.Sprintf("ties neg=%v scale %g", neg, e))
					}
				}
			})
		}
	})
}

// IQ4_NL's level choice with the scale fixed at exactly 1 (max -127):
// every value of 2x on a midpoint, one ulp either side, and the refit.
func TestQuantizeIQ4NLMidpoints(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(25, 26))
		for rep := 0; rep < 50; rep++ {
			v := make([]float32, 32*33)
			for b := 0; b < 33; b++ {
				blk := v[32*b : 32*b+32]
				blk[0] = -127
				if b%2 == 1 {
					blk[0] = 127
				}
				for i := 1; i < 32; i++ {
					x := float32(r.IntN(254*4)-127*4) / 4 // quarter steps hit every .5 midpoint
					switch r.IntN(3) {
					case 1:
						x = math.Nextafter32(x, 200)
					case 2:
						x = math.Nextafter32(x, -200)
					}
					blk[i] = max(-127, min(127, x))
				}
			}
			checkKV(t, tensor.IQ4_NL, v, "midpoints")
		}
	})
}

// Blocks with NaNs may differ from the reference (documented), but must
// not disturb the other blocks or crash.
func TestQuantizeKVNaNIsolated(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(27, 28))
		nan := float32(math.NaN())
		for _, ty := range kvTypes {
			t.Run(ty.String(), func(t *testing.T) {
				for _, n := range []int{32, 64, 160, 512, 1024} {
					v := randFloats(r, n, 1)
					bad := map[int]bool{}
					for k := 0; k < 1+n/128; k++ {
						i := r.IntN(n)
						v[i] = nan
						bad[i/32] = true
					}
					want := make([]byte, ty.RowSize(n))
					got := make([]byte, len(want))
					tensor.QuantizeRow(ty, v, want)
					Quantize(ty, got, v)
					bs := ty.TypeSize()
					for b := 0; b < n/32; b++ {
						if !bad[b] && !bytes.Equal(got[b*bs:(b+1)*bs], want[b*bs:(b+1)*bs]) {
							t.Fatalf("%s n=%d: block %d (no NaN) differs", ty, n, b)
						}
					}
				}
			})
		}
	})
}

// Real keys and values: rows of kvtest-27m's (and kvtest-qwen3-14m's)
// K and V projections of token embeddings, with their outlier channels,
// one head (64 or 128 values) at a time and a page of 256 tokens at once.
func TestQuantizeKVReal(t *testing.T) {
	for _, model := range []string{"models/kvtest-27m-f16.gguf", "models/kvtest-qwen3-14m-f16.gguf"} {
		f, err := gguf.Open(testassets.Path(t, model))
		if err != nil {
			t.Fatal(err)
		}
		rows := kvRows(t, f)
		f.Close()
		forLevels(t, func(t *testing.T) {
			for _, ty := range kvTypes {
				t.Run(ty.String(), func(t *testing.T) {
					for name, v := range rows {
						for _, hd := range []int{64, 128} {
							for o := 0; o+hd <= len(v) && o < 64*hd; o += hd {
								checkKV(t, ty, v[o:o+hd], name)
							}
						}
						checkKV(t, ty, v[:len(v)/32*32], name+" page")
					}
				})
			}
		})
	}
}

// kvRows returns, for a few layers, 256 tokens' K and V projections
// (layer input = the token embedding), concatenated.
func kvRows(t *testing.T, f *gguf.File) map[string][]float32 {
	t.Helper()
	tensorOf := func(name string) (ti *gguf.TensorInfo, in, out int) {
		ti, ok := f.Tensor(name)
		if !ok {
			t.Fatalf("no tensor %s", name)
		}
		return ti, int(ti.Dims[0]), int(ti.Dims[1])
	}
	row := func(ti *gguf.TensorInfo, in, r int, dst []float32) {
		rs := ti.Type.RowSize(in)
		tensor.DequantizeRow(ti.Type, f.TensorData(ti)[r*rs:(r+1)*rs], dst)
	}
	et, dm, nv := tensorOf("token_embd.weight")
	emb := make([]float32, 256*dm)
	for tok := 0; tok < 256; tok++ {
		row(et, dm, (tok*37+11)%nv, emb[tok*dm:(tok+1)*dm])
	}
	res := map[string][]float32{}
	for _, l := range []int{0, 3, 5} {
		for _, kv := range []string{"k", "v"} {
			wt, in, out := tensorOf(fmt.Sprintf("blk.%d.attn_%s.weight", l, kv))
			if in != dm {
				t.Fatalf("attn_%s: %d inputs, embeddings have %d", kv, in, dm)
			}
			w := make([]float32, in*out)
			for o := 0; o < out; o++ {
				row(wt, in, o, w[o*in:(o+1)*in])
			}
			var rows []float32
			for tok := 0; tok < 256; tok++ {
				x := emb[tok*dm : (tok+1)*dm]
				for o := 0; o < out; o++ {
					var s float32
					for i, wi := range w[o*in : (o+1)*in] {
						s += wi * x[i]
					}
					rows = append(rows, s)
				}
			}
			res[fmt.Sprintf("layer %d %s", l, kv)] = rows
		}
	}
	return res
}

func TestQuantizeKVZeroAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(29, 30))
	forLevels(t, func(t *testing.T) {
		for _, ty := range kvTypes {
			t.Run(ty.String(), func(t *testing.T) {
				for _, n := range []int{64, 128, 32 * 13, 32 * 23, 16384} {
					src := randFloats(r, n, 1)
					dst := make([]byte, ty.RowSize(n))
					f := func() { Quantize(ty, dst, src) }
					f()
					if a := testing.AllocsPerRun(20, f); a != 0 {
						t.Errorf("%s n=%d: %v allocations per call", ty, n, a)
					}
				}
			})
		}
	})
}

func TestQuantizeBadSizes(t *testing.T) {
	for _, ty := range kvTypes {
		t.Run(ty.String(), func(t *testing.T) {
			for _, c := range []struct{ n, b int }{{31, ty.RowSize(32)}, {32, ty.RowSize(32) - 1}, {64, ty.RowSize(32)}} {
				func() {
					defer func() {
						if recover() == nil {
							t.Errorf("%s: %d values into %d bytes did not panic", ty, c.n, c.b)
						}
					}()
					Quantize(ty, make([]byte, c.b), make([]float32, c.n))
				}()
			}
			if !CanQuantize(ty) {
				t.Errorf("CanQuantize(%s) = false", ty)
			}
		})
	}
	for _, ty := range []tensor.Type{tensor.F16, tensor.Q4_K, tensor.Q6_K} {
		if CanQuantize(ty) {
			t.Errorf("CanQuantize(%s) = true", ty)
		}
	}
}

// TestQuantizeKVManyBlocks runs 2^17 blocks of varied data per type: the
// refitted IQ4_NL scale (and every d) is compared through its binary16
// rounding, so a one-ulp float32 difference shows only now and then.
func TestQuantizeKVManyBlocks(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	r := rand.New(rand.NewPCG(33, 34))
	const nb = 1 << 17
	v := make([]float32, 32*nb)
	for b := 0; b < nb; b++ {
		s := math.Pow(10, -5+r.Float64()*9)
		blk := v[32*b : 32*b+32]
		switch b % 4 {
		case 0: // Gaussian
			for i := range blk {
				blk[i] = float32(r.NormFloat64() * s)
			}
		case 1: // heavy tails
			for i := range blk {
				blk[i] = float32(r.NormFloat64() * s / (0.1 + r.Float64()))
			}
		case 2: // uniform, shifted
			for i := range blk {
				blk[i] = float32((r.Float64() + 0.3*r.NormFloat64()) * s)
			}
		case 3: // few distinct values
			for i := range blk {
				blk[i] = float32(float64(r.IntN(9)-4) * s)
			}
		}
	}
	forLevels(t, func(t *testing.T) {
		for _, ty := range kvTypes {
			t.Run(ty.String(), func(t *testing.T) {
				checkKV(t, ty, v, "many blocks")
				// The same blocks in calls of 4 and of 13 blocks (the short-row
				// kernels and padded tails).
				want := make([]byte, ty.RowSize(len(v)))
				tensor.QuantizeRow(ty, v, want)
				got := make([]byte, len(want))
				bs := ty.TypeSize()
				for _, c := range []int{4, 7, 13} {
					for b := 0; b < nb; b += c {
						e := min(nb, b+c)
						Quantize(ty, got[b*bs:e*bs], v[32*b:32*e])
					}
					if !bytes.Equal(got, want) {
						t.Fatalf("%s many blocks in calls of %d differ", ty, c)
					}
				}
			})
		}
	})
}
