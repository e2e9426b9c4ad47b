package tensor_test

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/kvserve/kvserve/internal/tensor"
	"github.com/kvserve/kvserve/internal/tensor/ggmlref"
)

// refTypes have a second, independent implementation in ggmlref.
var refTypes = []tensor.Type{
	tensor.F32, tensor.F16, tensor.BF16, tensor.Q8_0, tensor.Q8_1, tensor.Q4_0, tensor.Q4_1,
	tensor.Q5_0, tensor.Q5_1, tensor.IQ4_NL, tensor.Q4_K, tensor.Q5_K, tensor.Q6_K, tensor.Q8_K, tensor.MXFP4,
}

// lowBitTypes are the super-block types with a quantizer: their output is
// checked byte for byte against llama.cpp's own on real weights
// (internal/quantize's TestLowBitMatchesLlamaCpp), their decoding against
// the dequantizer here (TestSuperBlockDecoding).
var lowBitTypes = []tensor.Type{tensor.Q2_K, tensor.Q3_K, tensor.IQ4_XS}

var allTypes = append(append([]tensor.Type{}, refTypes...), lowBitTypes...)

// readOnlyTypes can be dequantized and dotted, not written (llama.cpp
// writes them): TestSuperBlockDecoding, and the perplexity of files
// llama.cpp wrote (internal/engine's TestLowBitPerplexity).
var readOnlyTypes = []tensor.Type{
	tensor.IQ3_S, tensor.IQ3_XXS, tensor.IQ2_S, tensor.IQ2_XS, tensor.IQ2_XXS, tensor.IQ1_M, tensor.IQ1_S,
}

var dotTypes = []tensor.Type{
	tensor.F32, tensor.F16, tensor.BF16, tensor.Q8_0, tensor.Q4_0, tensor.Q4_1,
	tensor.Q5_0, tensor.Q5_1, tensor.IQ4_NL, tensor.Q4_K, tensor.Q5_K, tensor.Q6_K,
	tensor.Q2_K, tensor.Q3_K, tensor.IQ4_XS, tensor.MXFP4,
}

func hasRef(t tensor.Type) bool {
	for _, r := range refTypes {
		if r == t {
			return true
		}
	}
	return false
}

type testRow struct {
	name string
	x    []float32
}

// testRows returns rows of n elements (n a multiple of 256) covering the
// cases that stress quantizers: several scales, zeros, constants, outliers,
// one-signed rows, tiny values, half-way ties, and real-looking weights.
func testRows(n int, seed uint64) []testRow {
	r := rand.New(rand.NewPCG(seed, 7))
	gauss := func(scale float64) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(r.NormFloat64() * scale)
		}
		return x
	}
	var rows []testRow
	for _, s := range []float64{1e-6, 1e-3, 0.02, 1, 1e3, 3e4} {
		rows = append(rows, testRow{fmt.Sprintf("gauss%g", s), gauss(s)})
	}
	uni := make([]float32, n)
	for i := range uni {
		uni[i] = float32(r.Float64()*2 - 1)
	}
	rows = append(rows, testRow{"uniform", uni})
	rows = append(rows, testRow{"zeros", make([]float32, n)})
	for _, c := range []float32{1, -0.37, 1e-20} {
		x := make([]float32, n)
		for i := range x {
			x[i] = c
		}
		rows = append(rows, testRow{fmt.Sprintf("const%g", c), x})
	}
	out := gauss(0.05)
	for i := 0; i < n; i += 37 {
		out[i] = float32((r.Float64()*2 - 1) * 40)
	}
	rows = append(rows, testRow{"outliers", out})
	neg, pos := gauss(1), gauss(1)
	for i := range neg {
		neg[i] = -abs(neg[i]) - 0.1
		pos[i] = abs(pos[i]) + 0.5
	}
	rows = append(rows, testRow{"negative", neg}, testRow{"positive", pos})
	tiny := gauss(1e-18)
	rows = append(rows, testRow{"tiny", tiny})
	// Blocks that are all zero next to blocks that are not.
	mixed := gauss(1)
	for i := 0; i < n; i++ {
		if (i/32)%3 == 1 || (i/256)%2 == 1 && i%256 < 128 {
			mixed[i] = 0
		}
	}
	rows = append(rows, testRow{"zero-blocks", mixed})
	// Integers and half-integers: x·id lands exactly on .5 for Q8 (amax 127).
	ties := make([]float32, n)
	for i := range ties {
		ties[i] = float32(r.IntN(254)-127) + 0.5*float32(r.IntN(2))
		if i%32 == 0 {
			ties[i] = 127
		}
	}
	rows = append(rows, testRow{"ties", ties})
	// Values on a coarse grid (like f16 weights) with repeated magnitudes.
	grid := make([]float32, n)
	for i := range grid {
		grid[i] = tensor.RoundF16(float32(r.IntN(17)-8) / 64)
	}
	rows = append(rows, testRow{"grid", grid})
	return rows
}

func abs(v float32) float32 { return float32(math.Abs(float64(v))) }

func sameBits(a, b []float32) int {
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) && !(a[i] != a[i] && b[i] != b[i]) {
			return i
		}
	}
	return -1
}

func TestQuantizeMatchesReference(t *testing.T) {
	const n = 1024
	for _, typ := range refTypes {
		t.Run(typ.String(), func(t *testing.T) {
			for _, row := range testRows(n, uint64(typ)+1) {
				got := make([]byte, typ.RowSize(n))
				tensor.QuantizeRow(typ, row.x, got)
				want := ggmlref.Quantize(typ, row.x, false)
				if !bytes.Equal(got, want) {
					t.Errorf("%s %s: QuantizeRow differs from reference at byte %d", typ, row.name, firstDiff(got, want))
				}
				tensor.QuantizeRowCPU(typ, row.x, got)
				want = ggmlref.Quantize(typ, row.x, true)
				if !bytes.Equal(got, want) {
					t.Errorf("%s %s: QuantizeRowCPU differs from reference at byte %d", typ, row.name, firstDiff(got, want))
				}
			}
		})
	}
}

// Q8_0/Q8_1 reference and CPU rounding really differ on ties (x.5 → away
// from zero vs to even); elsewhere CPU = reference.
func TestQuantizeRowCPUDiffers(t *testing.T) {
	x := make([]float32, 32)
	x[0] = 127
	x[1] = 2.5
	x[2] = -3.5
	ref, cpu := make([]byte, 34), make([]byte, 34)
	tensor.QuantizeRow(tensor.Q8_0, x, ref)
	tensor.QuantizeRowCPU(tensor.Q8_0, x, cpu)
	if int8(ref[3]) != 3 || int8(cpu[3]) != 2 || int8(ref[4]) != -4 || int8(cpu[4]) != -4 {
		t.Fatalf("ties: ref %d %d, cpu %d %d", int8(ref[3]), int8(ref[4]), int8(cpu[3]), int8(cpu[4]))
	}
}

func firstDiff(a, b []byte) int {
	for i := range a {
		if i >= len(b) || a[i] != b[i] {
			return i
		}
	}
	return len(a)
}

func TestDequantizeMatchesReference(t *testing.T) {
	const n = 512
	r := rand.New(rand.NewPCG(3, 4))
	for _, typ := range refTypes {
		t.Run(typ.String(), func(t *testing.T) {
			// Rows produced by the quantizer.
			for _, row := range testRows(n, 99) {
				q := make([]byte, typ.RowSize(n))
				tensor.QuantizeRow(typ, row.x, q)
				got := make([]float32, n)
				tensor.DequantizeRow(typ, q, got)
				if i := sameBits(got, ggmlref.Dequantize(typ, q, n)); i >= 0 {
					t.Errorf("%s %s: element %d differs from reference", typ, row.name, i)
				}
			}
			// Arbitrary bytes (every bit pattern of the packed fields), with the
			// scale fields kept finite.
			for trial := 0; trial < 20; trial++ {
				q := make([]byte, typ.RowSize(n))
				for i := range q {
					q[i] = byte(r.IntN(256))
				}
				sanitizeScales(typ, q, r)
				got := make([]float32, n)
				tensor.DequantizeRow(typ, q, got)
				if i := sameBits(got, ggmlref.Dequantize(typ, q, n)); i >= 0 {
					t.Errorf("%s random bytes: element %d differs from reference", typ, i)
				}
			}
		})
	}
}

// sanitizeScales replaces the float scale fields of random blocks by finite
// values of a sensible size (float element types are left as they are).
func sanitizeScales(typ tensor.Type, q []byte, r *rand.Rand) {
	ts := typ.TypeSize()
	h := func() (byte, byte) {
		v := tensor.F32ToF16(float32(r.NormFloat64() * 0.01))
		return byte(v), byte(v >> 8)
	}
	for b := 0; b < len(q)/ts; b++ {
		blk := q[b*ts : (b+1)*ts]
		switch typ {
		case tensor.Q4_0, tensor.Q5_0, tensor.Q8_0, tensor.IQ4_NL:
			blk[0], blk[1] = h()
		case tensor.Q4_1, tensor.Q5_1, tensor.Q8_1, tensor.Q4_K, tensor.Q5_K:
			blk[0], blk[1] = h()
			blk[2], blk[3] = h()
		case tensor.Q6_K:
			blk[208], blk[209] = h()
		case tensor.Q2_K:
			blk[80], blk[81] = h()
			blk[82], blk[83] = h()
		case tensor.Q3_K:
			blk[108], blk[109] = h()
		case tensor.IQ4_XS, tensor.IQ3_S, tensor.IQ3_XXS, tensor.IQ2_S, tensor.IQ2_XS, tensor.IQ2_XXS, tensor.IQ1_S:
			blk[0], blk[1] = h()
		case tensor.IQ1_M:
			// d's four nibbles are the top nibbles of the scales' uint16s.
			lo, hi := h()
			d := uint16(lo) | uint16(hi)<<8
			for i := 0; i < 4; i++ {
				o := 48 + 2*i
				v := uint16(blk[o]) | uint16(blk[o+1])<<8&0x0fff | (d>>(4*i)&15)<<12
				blk[o], blk[o+1] = byte(v), byte(v>>8)
			}
		case tensor.Q8_K:
			v := math.Float32bits(float32(r.NormFloat64() * 0.01))
			blk[0], blk[1], blk[2], blk[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
		}
	}
}

// Q8_K's bsums must be the sums of its quants.
func TestQ8KBsums(t *testing.T) {
	for _, row := range testRows(512, 5) {
		q := make([]byte, tensor.Q8_K.RowSize(512))
		tensor.QuantizeRow(tensor.Q8_K, row.x, q)
		for b := 0; b < 2; b++ {
			blk := q[b*292:]
			for g := 0; g < 16; g++ {
				s := 0
				for _, v := range blk[4+16*g : 4+16*g+16] {
					s += int(int8(v))
				}
				if got := int(int16(uint16(blk[260+2*g]) | uint16(blk[261+2*g])<<8)); got != s {
					t.Fatalf("%s: block %d bsum %d = %d, want %d", row.name, b, g, got, s)
				}
			}
		}
	}
}

// Round-trip error, RMS(x - deq(q(x))) / RMS(x), on Gaussian rows, for every
// type, must stay below the bound measured for ggml's algorithms (with a
// little headroom). The measured values are logged.
func TestRoundTripError(t *testing.T) {
	// Measured (this seed, Gaussian rows, n = 4096 × 16): f16 0.00021,
	// bf16 0.00166, q8_0 0.00535, q8_1 0.00534, q8_K 0.00708, q6_K 0.01778,
	// q5_K 0.03604, q5_1 0.03802, q5_0 0.04265, q4_K 0.07151, q4_1 0.07801,
	// iq4_nl 0.07893, q4_0 0.08515, iq4_xs 0.07691, q3_K 0.15048, q2_K 0.29481.
	// Bounds are these plus about 5%.
	bounds := map[tensor.Type]float64{
		tensor.F32: 0, tensor.F16: 0.00023, tensor.BF16: 0.00175,
		tensor.Q8_0: 0.0057, tensor.Q8_1: 0.0057, tensor.Q8_K: 0.0075,
		tensor.Q6_K: 0.0187, tensor.Q5_0: 0.045, tensor.Q5_1: 0.040, tensor.Q5_K: 0.038,
		tensor.Q4_0: 0.090, tensor.Q4_1: 0.082, tensor.Q4_K: 0.075, tensor.IQ4_NL: 0.083,
		tensor.MXFP4: 0.12, // power-of-two scales and E2M1 levels
		tensor.Q3_K:  0.158, tensor.Q2_K: 0.310, tensor.IQ4_XS: 0.081,
	}
	const n = 4096
	r := rand.New(rand.NewPCG(11, 12))
	var report []string
	for _, typ := range allTypes {
		t.Run(typ.String(), func(t *testing.T) {
			var se, sx float64
			for rep := 0; rep < 16; rep++ {
				x := make([]float32, n)
				for i := range x {
					x[i] = float32(r.NormFloat64() * 0.02)
				}
				q := make([]byte, typ.RowSize(n))
				tensor.QuantizeRow(typ, x, q)
				y := make([]float32, n)
				tensor.DequantizeRow(typ, q, y)
				for i := range x {
					d := float64(x[i]) - float64(y[i])
					se += d * d
					sx += float64(x[i]) * float64(x[i])
				}
			}
			rel := math.Sqrt(se / sx)
			report = append(report, fmt.Sprintf("%s %.5f", typ, rel))
			if rel > bounds[typ] {
				t.Errorf("%s: relative RMS round-trip error %.5f above bound %.5f", typ, rel, bounds[typ])
			}
		})
	}
	t.Logf("relative RMS round-trip error: %s", strings.Join(report, ", "))
}

// Constant and zero rows round-trip exactly enough: zero stays zero.
func TestZeroRowRoundTrip(t *testing.T) {
	for _, typ := range allTypes {
		t.Run(typ.String(), func(t *testing.T) {
			x := make([]float32, 256)
			q := make([]byte, typ.RowSize(256))
			tensor.QuantizeRow(typ, x, q)
			y := make([]float32, 256)
			tensor.DequantizeRow(typ, q, y)
			for i, v := range y {
				if v != 0 {
					t.Fatalf("%s: zero row dequantizes to %g at %d", typ, v, i)
				}
			}
		})
	}
}

func TestVecDot(t *testing.T) {
	const n = 1024
	r := rand.New(rand.NewPCG(21, 22))
	for _, typ := range dotTypes {
		t.Run(typ.String(), func(t *testing.T) {
			vt := typ.VecDotType()
			for trial := 0; trial < 12; trial++ {
				wx := make([]float32, n)
				ax := make([]float32, n)
				for i := range wx {
					wx[i] = float32(r.NormFloat64() * 0.05)
					ax[i] = float32(r.NormFloat64() * 3)
				}
				if trial == 1 { // outliers in the activations
					for i := 0; i < n; i += 50 {
						ax[i] *= 40
					}
				}
				if trial == 2 { // all-positive activations (exercise the mins)
					for i := range ax {
						ax[i] = abs(ax[i])
					}
				}
				w := make([]byte, typ.RowSize(n))
				x := make([]byte, vt.RowSize(n))
				tensor.QuantizeRow(typ, wx, w)
				if trial%2 == 0 {
					tensor.QuantizeRow(vt, ax, x)
				} else {
					tensor.QuantizeRowCPU(vt, ax, x)
				}
				got := tensor.VecDot(typ, n, w, x)
				// Exactly the documented contract.
				if !hasRef(typ) {
					// (the super-block types: TestSuperBlockDecoding)
				} else if want := ggmlref.VecDot(typ, n, w, x); math.Float32bits(got) != math.Float32bits(want) {
					t.Errorf("%s trial %d: VecDot %g, reference contract %g", typ, trial, got, want)
				}
				// Close to the float64 dot product of the dequantized rows.
				wd := make([]float32, n)
				xd := make([]float32, n)
				tensor.DequantizeRow(typ, w, wd)
				tensor.DequantizeRow(vt, x, xd)
				var exact, mag float64
				for i := range wd {
					p := float64(wd[i]) * float64(xd[i])
					exact += p
					mag += math.Abs(p)
				}
				if vt == tensor.Q8_1 {
					// ggml's Q8_1 carries s = d·Σq rounded to binary16 and the
					// dot product uses it for the min term: model that rounding.
					exact += q8_1SCorrection(typ, n, w, x)
				}
				if diff := math.Abs(float64(got) - exact); diff > 2e-6*mag+1e-30 {
					t.Errorf("%s trial %d: VecDot %g, dequantized dot %g (diff %g, Σ|p| %g)", typ, trial, got, exact, diff, mag)
				}
			}
		})
	}
}

func TestErrorsNotPanics(t *testing.T) {
	for _, typ := range allTypes {
		t.Run(typ.String(), func(t *testing.T) {
			bs := typ.BlockSize()
			if bs > 1 {
				if err := tensor.CheckRow(typ, bs+1); err == nil || !strings.Contains(err.Error(), typ.String()) {
					t.Errorf("%s: CheckRow(%d) = %v", typ, bs+1, err)
				}
				if err := tensor.Quantize(typ, make([]float32, bs+1), make([]byte, typ.TypeSize()*2)); err == nil {
					t.Errorf("%s: Quantize with a partial block gave no error", typ)
				}
				if err := tensor.Dequantize(typ, make([]byte, typ.TypeSize()), make([]float32, bs+1)); err == nil {
					t.Errorf("%s: Dequantize with a partial block gave no error", typ)
				}
			}
			if err := tensor.CheckRow(typ, -bs); err == nil {
				t.Errorf("%s: negative length accepted", typ)
			}
			if err := tensor.Quantize(typ, make([]float32, bs), make([]byte, typ.TypeSize()+1)); err == nil {
				t.Errorf("%s: Quantize with a wrong output size gave no error", typ)
			}
			if err := tensor.Dequantize(typ, make([]byte, typ.TypeSize()-1), make([]float32, bs)); err == nil {
				t.Errorf("%s: Dequantize with a short input gave no error", typ)
			}
			if err := tensor.CheckRow(typ, 4*bs); err != nil {
				t.Errorf("%s: CheckRow(%d): %v", typ, 4*bs, err)
			}
		})
	}
	for _, typ := range readOnlyTypes {
		if tensor.Quantizable(typ) || !tensor.Dequantizable(typ) {
			t.Errorf("%s: read-only type reported quantizable %v, dequantizable %v", typ, tensor.Quantizable(typ), tensor.Dequantizable(typ))
		}
		if err := tensor.Quantize(typ, make([]float32, 256), make([]byte, typ.RowSize(256))); err == nil {
			t.Errorf("%s: Quantize gave no error", typ)
		}
		if err := tensor.Dequantize(typ, make([]byte, typ.RowSize(256)), make([]float32, 256)); err != nil {
			t.Errorf("%s: Dequantize: %v", typ, err)
		}
	}
	for _, typ := range []tensor.Type{tensor.TQ1_0, tensor.TQ2_0, tensor.Type(999)} {
		if err := tensor.CheckRow(typ, 256); err == nil {
			t.Errorf("%s: CheckRow accepted an unsupported type", typ)
		}
		if tensor.Quantizable(typ) || tensor.Dequantizable(typ) {
			t.Errorf("%s reported as supported", typ)
		}
		if err := tensor.Quantize(typ, make([]float32, 256), make([]byte, max(1, typ.RowSize(256)))); err == nil {
			t.Errorf("%s: Quantize gave no error", typ)
		}
	}
	for _, typ := range dotTypes {
		t.Run(typ.String(), func(t *testing.T) {
			n := typ.BlockSize() * 8
			if typ.BlockSize() == 1 {
				n = 64
			}
			w := make([]byte, typ.RowSize(n))
			x := make([]byte, typ.VecDotType().RowSize(n))
			if _, err := tensor.VecDotChecked(typ, n, w, x[:len(x)-1]); err == nil {
				t.Errorf("%s: VecDotChecked with a short activation row gave no error", typ)
			}
			if _, err := tensor.VecDotChecked(typ, n, w[:len(w)-1], x); err == nil {
				t.Errorf("%s: VecDotChecked with a short weight row gave no error", typ)
			}
			if _, err := tensor.VecDotChecked(typ, n, w, x); err != nil {
				t.Errorf("%s: VecDotChecked: %v", typ, err)
			}
		})
	}
	if _, err := tensor.VecDotChecked(tensor.Q8_K, 256, make([]byte, 292), make([]byte, 292)); err == nil {
		t.Error("Q8_K weights accepted by VecDotChecked")
	}
	// The unchecked forms panic with the same message rather than corrupt.
	func() {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "block size") {
				t.Errorf("QuantizeRow with a partial block: recovered %v", r)
			}
		}()
		tensor.QuantizeRow(tensor.Q4_K, make([]float32, 100), make([]byte, 144))
	}()
}

func TestVecDotTypes(t *testing.T) {
	want := map[tensor.Type]tensor.Type{
		tensor.Q4_0: tensor.Q8_0, tensor.Q5_0: tensor.Q8_0, tensor.Q8_0: tensor.Q8_0, tensor.IQ4_NL: tensor.Q8_0,
		tensor.Q4_1: tensor.Q8_1, tensor.Q5_1: tensor.Q8_1,
		tensor.Q4_K: tensor.Q8_K, tensor.Q5_K: tensor.Q8_K, tensor.Q6_K: tensor.Q8_K,
		tensor.F16: tensor.F32, tensor.BF16: tensor.F32, tensor.F32: tensor.F32,
	}
	for typ, vt := range want {
		if got := typ.VecDotType(); got != vt {
			t.Errorf("%s.VecDotType() = %s, want %s", typ, got, vt)
		}
		if !tensor.HasVecDot(typ) {
			t.Errorf("HasVecDot(%s) = false", typ)
		}
	}
}

// q8_1SCorrection is Σ_blocks m_w·(s_x - d_x·Σq_x): the difference the
// binary16 rounding of Q8_1's s field makes to a Q4_1/Q5_1 dot product.
func q8_1SCorrection(typ tensor.Type, n int, w, x []byte) float64 {
	var c float64
	wt := typ.TypeSize()
	for b := 0; b < n/32; b++ {
		bw, bx := w[b*wt:], x[b*36:]
		sum := 0
		for _, q := range bx[4:36] {
			sum += int(int8(q))
		}
		c += float64(ggmlref.F16At(bw[2:])) * (float64(ggmlref.F16At(bx[2:])) - float64(ggmlref.F16At(bx))*float64(sum))
	}
	return c
}

// The super-block decoding (UnpackSuperBlock, which VecDot and the kernels
// use) is the dequantizer's value: x = mult·d·scale·q − dmin·min, with
// the dequantizer's own float operations, for quantized rows and random
// bytes.
func TestSuperBlockDecoding(t *testing.T) {
	const n = 512
	r := rand.New(rand.NewPCG(31, 32))
	for _, typ := range superTypes() {
		t.Run(typ.String(), func(t *testing.T) {
			mult, mins, maxQ := tensor.SuperBlockForm(typ)
			check := func(what string, q []byte) {
				want := make([]float32, n)
				tensor.DequantizeRow(typ, q, want)
				var u tensor.SuperBlock
				for s := 0; s < n/256; s++ {
					tensor.UnpackSuperBlock(typ, q[s*typ.TypeSize():], &u)
					for e := 0; e < 256; e++ {
						if a := u.Q[e]; a > maxQ || -a > maxQ {
							t.Fatalf("%s: |q| = %d above the form's bound %d", what, a, maxQ)
						}
						v := float64(mult) * float64(u.D) * float64(u.Scale[e/16]) * float64(u.Q[e])
						if mins {
							v -= float64(u.DMin) * float64(u.Min[e/16])
						}
						w := float64(want[256*s+e])
						if math.Abs(v-w) > 1e-6*math.Abs(w)+1e-30 {
							t.Fatalf("%s: element %d decodes to %g, dequantizes to %g", what, 256*s+e, v, w)
						}
					}
				}
			}
			if tensor.Quantizable(typ) {
				for _, row := range testRows(n, 17) {
					q := make([]byte, typ.RowSize(n))
					tensor.QuantizeRow(typ, row.x, q)
					check(row.name, q)
				}
			}
			for trial := 0; trial < 20; trial++ {
				q := make([]byte, typ.RowSize(n))
				for i := range q {
					q[i] = byte(r.IntN(256))
				}
				sanitizeScales(typ, q, r)
				check(fmt.Sprintf("random %d", trial), q)
			}
		})
	}
}

func superTypes() []tensor.Type {
	var out []tensor.Type
	for i := 0; i < 64; i++ {
		if tensor.IsSuperBlock(tensor.Type(i)) {
			out = append(out, tensor.Type(i))
		}
	}
	return out
}
