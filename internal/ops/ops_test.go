package ops_test

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/kvserve/kvserve/internal/cpu"
	"github.com/kvserve/kvserve/internal/kernels"
	"github.com/kvserve/kvserve/internal/ops"
	"github.com/kvserve/kvserve/internal/tensor"
)

// forTypes runs f as a subtest for every CPU level, then for every type
// of the table with kernels k, as a subtest of the level.
func forTypes(t *testing.T, k tensor.Kernel, f func(t *testing.T, typ tensor.Type)) {
	types := tensor.TypesWith(k)
	if len(types) == 0 {
		t.Fatalf("no type has kernels %b", k)
	}
	for _, lv := range cpu.Levels() {
		t.Run(lv.String(), func(t *testing.T) {
			defer cpu.SetLevel(lv)()
			for _, typ := range types {
				t.Run(typ.String(), func(t *testing.T) { f(t, typ) })
			}
		})
	}
}

func randFloats(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

// encodeRef is tensor.QuantizeRow into a new buffer. For the read-only
// types (no quantizer) it returns bytes derived from x with finite
// binary16 scales instead.
func encodeRef(typ tensor.Type, x []float32) []byte {
	b := make([]byte, typ.RowSize(len(x)))
	if tensor.Quantizable(typ) {
		tensor.QuantizeRow(typ, x, b)
		return b
	}
	for i := range b {
		b[i] = byte(math.Float32bits(x[i%len(x)]) >> (i % 3 * 8))
	}
	d := tensor.F32ToF16(0.01)
	for o := 0; o < len(b); o += typ.TypeSize() {
		if typ == tensor.IQ1_M {
			for i := 0; i < 4; i++ {
				p := o + 48 + 2*i
				b[p+1] = b[p+1]&0x0f | byte(d>>(4*i)&15)<<4
			}
		} else {
			b[o], b[o+1] = byte(d), byte(d>>8)
		}
	}
	return b
}

func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// k is a row length every kernel takes: whole K-quant super-blocks.
const k = 512

// TestGemm checks ops.Gemm against the single dot products, for every type
// with a Gemm kernel: float weights against kernels.DotF32/F16/BF16 (the
// canonical order), codebook weights against kernels.DotF32 of the decoded
// rows, block weights against tensor.VecDot, bit for bit, with
// padded strides for the block types.
func TestGemm(t *testing.T) {
	forTypes(t, tensor.KGemm, func(t *testing.T, typ tensor.Type) {
		r := rand.New(rand.NewPCG(1, uint64(typ)))
		vt := typ.VecDotType()
		m, nTok := 19, 5
		rw, rx := typ.RowSize(k), vt.RowSize(k)
		ldw, ldx, ldy := rw, rx, m+3
		if typ.Family() == tensor.BlockKernels {
			ldw, ldx = rw+typ.TypeSize(), rx+vt.TypeSize()
		}
		w := make([]byte, m*ldw)
		wf := make([][]float32, m)
		for i := range m {
			wf[i] = randFloats(r, k)
			copy(w[i*ldw:], encodeRef(typ, wf[i]))
		}
		x := make([]byte, nTok*ldx)
		xf := randFloats(r, nTok*k)
		for j := range nTok {
			copy(x[j*ldx:], ops.Activations(vt, make([]byte, rx), xf[j*k:(j+1)*k]))
		}
		y := make([]float32, nTok*ldy)
		for i := range y {
			y[i] = 7
		}
		ops.Gemm(typ, m, nTok, k, w, ldw, x, ldx, y, ldy)
		for j := range nTok {
			for i := range ldy {
				got := y[j*ldy+i]
				if i >= m {
					if got != 7 {
						t.Fatalf("y[%d][%d] outside the product was written", j, i)
					}
					continue
				}
				var want float32
				wr, xr := w[i*ldw:i*ldw+rw], x[j*ldx:j*ldx+rx]
				switch typ {
				case tensor.F32:
					want = kernels.DotF32(f32s(wr), f32s(xr))
				case tensor.F16:
					want = kernels.DotF16(u16s(wr), f32s(xr))
				case tensor.BF16:
					want = kernels.DotBF16(u16s(wr), f32s(xr))
				case tensor.CB4, tensor.CB3, tensor.CB2:
					// kernels.GemmF32 over the decoded rows.
					dec := make([]float32, k)
					tensor.DequantizeRow(typ, wr, dec)
					want = kernels.DotF32(dec, f32s(xr))
				default:
					want = tensor.VecDot(typ, k, wr, xr)
				}
				if math.Float32bits(got) != math.Float32bits(want) {
					t.Fatalf("y[%d][%d] = %g, single dot %g", j, i, got, want)
				}
			}
		}
	})
}

// TestAccumRows checks ops.AccumRows, for every type with the kernel,
// against kernels.AccumRowsF32Multi over the rows decoded by the reference
// (the kernels' documented identity), bit for bit.
func TestAccumRows(t *testing.T) {
	forTypes(t, tensor.KAccum, func(t *testing.T, typ tensor.Type) {
		r := rand.New(rand.NewPCG(2, uint64(typ)))
		const dim, n, G, lda = 128, 13, 3, 16
		rs := typ.RowSize(dim)
		stride := rs + 2*typ.TypeSize()
		rows := make([]byte, n*stride)
		dec := make([]float32, n*dim)
		for i := range n {
			copy(rows[i*stride:], encodeRef(typ, randFloats(r, dim)))
			tensor.DequantizeRow(typ, rows[i*stride:i*stride+rs], dec[i*dim:(i+1)*dim])
		}
		a := randFloats(r, (G-1)*lda+n)
		y0 := randFloats(r, G*dim)
		got, want := append([]float32(nil), y0...), append([]float32(nil), y0...)
		ops.AccumRows(typ, got, dim, a, lda, n, rows, stride)
		kernels.AccumRowsF32Multi(want, dim, a, lda, n, dec, dim)
		if !sameBits(got, want) {
			t.Fatalf("AccumRows differs from AccumRowsF32Multi over the decoded rows")
		}
	})
}

// TestEncodeDecode checks ops.Encode and ops.Decode against
// tensor.QuantizeRow and DequantizeRow for every convertible type (SIMD
// kernels and reference fallbacks alike), over several rows at once.
func TestEncodeDecode(t *testing.T) {
	var types []tensor.Type
	for i := range 64 {
		if typ := tensor.Type(i); tensor.Quantizable(typ) {
			types = append(types, typ)
		}
	}
	for _, lv := range cpu.Levels() {
		t.Run(lv.String(), func(t *testing.T) {
			defer cpu.SetLevel(lv)()
			for _, typ := range types {
				t.Run(typ.String(), func(t *testing.T) {
					r := rand.New(rand.NewPCG(3, uint64(typ)))
					x := randFloats(r, 3*k)
					want := encodeRef(typ, x)
					got := make([]byte, len(want))
					ops.Encode(typ, got, x)
					if !bytes.Equal(got, want) {
						t.Fatalf("Encode differs from QuantizeRow")
					}
					d, dref := make([]float32, len(x)), make([]float32, len(x))
					ops.Decode(typ, d, want)
					tensor.DequantizeRow(typ, want, dref)
					if !sameBits(d, dref) {
						t.Fatalf("Decode differs from DequantizeRow")
					}
				})
			}
		})
	}
}

func TestActivations(t *testing.T) {
	x := randFloats(rand.New(rand.NewPCG(4, 4)), 2*k)
	if b := ops.Activations(tensor.F32, nil, x); len(b) != 4*len(x) || &b[0] != &tensor.F32Bytes(x)[0] {
		t.Errorf("Activations(f32) copied or resized the row")
	}
	for _, vt := range []tensor.Type{tensor.Q8_0, tensor.Q8_1, tensor.Q8_K} {
		buf := make([]byte, vt.RowSize(len(x))+10)
		if got := ops.Activations(vt, buf, x); !bytes.Equal(got, encodeRef(vt, x)) || &got[0] != &buf[0] {
			t.Errorf("Activations(%s) differs from QuantizeRow or is not in buf", vt)
		}
	}
	mustPanic(t, "short buf", "buf has", func() { ops.Activations(tensor.Q8_0, make([]byte, 10), x) })
}

func mustPanic(t *testing.T, what, msg string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), msg) {
			t.Errorf("%s: recovered %v, want a panic containing %q", what, r, msg)
		}
	}()
	f()
}

func TestMissingKernels(t *testing.T) {
	y := make([]float32, 256)
	for _, typ := range []tensor.Type{tensor.TQ1_0, tensor.Q8_1, tensor.Q8_K, tensor.Type(999)} {
		mustPanic(t, "Gemm "+typ.String(), "no kernel for type", func() {
			ops.Gemm(typ, 1, 1, 256, make([]byte, 400), 400, make([]byte, 400), 400, y, 1)
		})
	}
	for _, typ := range []tensor.Type{tensor.Q4_K, tensor.Q6_K, tensor.Q8_1} {
		mustPanic(t, "AccumRows "+typ.String(), "no kernel for type", func() {
			ops.AccumRows(typ, y, 256, make([]float32, 1), 1, 1, make([]byte, 400), 400)
		})
	}
	mustPanic(t, "Encode tq1_0", "cannot be converted", func() { ops.Encode(tensor.TQ1_0, make([]byte, 54), y) })
	mustPanic(t, "Decode tq1_0", "cannot be converted", func() { ops.Decode(tensor.TQ1_0, y, make([]byte, 54)) })
	mustPanic(t, "Gemm f16 strided", "contiguous", func() {
		ops.Gemm(tensor.F16, 1, 1, 4, make([]byte, 16), 16, make([]byte, 16), 16, y, 1)
	})
}

// TestZeroAllocs: no front call allocates once warm.
func TestZeroAllocs(t *testing.T) {
	forTypes(t, tensor.KGemm, func(t *testing.T, typ tensor.Type) {
		vt := typ.VecDotType()
		w := make([]byte, 16*typ.RowSize(k))
		x := make([]byte, 4*vt.RowSize(k))
		xf := make([]float32, 4*k)
		y := make([]float32, 3*k)
		calls := map[string]func(){
			"Gemm":        func() { ops.Gemm(typ, 16, 4, k, w, typ.RowSize(k), x, vt.RowSize(k), y, 16) },
			"Activations": func() { ops.Activations(vt, x, xf) },
			"Decode":      func() { ops.Decode(typ, xf, w[:typ.RowSize(len(xf))]) },
		}
		if tensor.Quantizable(typ) {
			calls["Encode"] = func() { ops.Encode(typ, w[:typ.RowSize(len(xf))], xf) }
		}
		if typ.Has(tensor.KAccum) {
			calls["AccumRows"] = func() { ops.AccumRows(typ, y[:3*k/8], k/8, xf, 16, 16, w, typ.RowSize(k/8)) }
		}
		for name, f := range calls {
			f()
			if n := testing.AllocsPerRun(10, f); n != 0 {
				t.Errorf("%s allocates %v times per call", name, n)
			}
		}
	})
}
