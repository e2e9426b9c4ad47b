package tensor

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"
)

// This file is the public face of the block formats: row conversion between
// float32 and every supported type, the checks that guard it, and the
// choice of activation type for dot products.
//
// Exactness. QuantizeRow and DequantizeRow reproduce ggml's reference C
// code bit for bit on x86-64 (where ggml-base is built without FMA, so no
// multiply-add is fused). Every float32 operation below is written in the
// order ggml performs it, and every product that feeds an addition is
// wrapped in an explicit float32() conversion: the Go specification lets a
// compiler fuse x*y+z into one rounding (gc does so on arm64, ppc64, s390x,
// riscv64 and on amd64 with GOAMD64=v3), and an explicit conversion is the
// only thing that forbids it.

// Quantizable reports whether QuantizeRow can produce rows of type t.
func Quantizable(t Type) bool { return row(t).quantize != nil }

// Dequantizable reports whether DequantizeRow can read rows of type t: the
// Quantizable types and the read-only IQ types (IQ3_S, IQ3_XXS, IQ2_S,
// IQ2_XS, IQ2_XXS, IQ1_M, IQ1_S). (ggml itself has no dequantizer for
// Q8_1; here its value is d·q, the sum field s being redundant.)
func Dequantizable(t Type) bool { return row(t).dequantize != nil }

// HasVecDot reports whether VecDot supports weights of type t.
func HasVecDot(t Type) bool { return row(t).dot != nil }

// VecDotType is the type a row of activations must be quantized to before
// VecDot can take its dot product with a row of weights of type t (the
// table's vec-dot column). It is ggml's CPU vec_dot_type except for float
// weights, whose activations stay float32 here:
//
//	Q4_0, Q5_0, Q8_0, IQ4_NL → Q8_0
//	Q4_1, Q5_1               → Q8_1
//	Q2_K … Q6_K, IQ4_XS, IQ*  → Q8_K
//	F32, F16, BF16           → F32
//
// For a type without a dot product (see HasVecDot) it returns t itself.
func (t Type) VecDotType() Type {
	if r := row(t); r.BlockSize != 0 {
		return r.VecDot
	}
	return t
}

// CheckRow returns nil if rows of n elements of type t can be converted by
// QuantizeRow and DequantizeRow, and otherwise an error naming the type and
// the reason: unknown type, no converter for it, negative n, or n not a
// whole number of blocks.
func CheckRow(t Type, n int) error { return checkRow(t, n, true) }

// checkRow is CheckRow; with quant false, a type that can only be read
// (dequantized, dotted) passes.
func checkRow(t Type, n int, quant bool) error {
	if !t.Known() {
		return fmt.Errorf("tensor: unknown type %d", uint32(t))
	}
	if quant && !Quantizable(t) || !Dequantizable(t) {
		return fmt.Errorf("tensor: type %s cannot be converted to or from float32 (no quantizer/dequantizer)", t)
	}
	if n < 0 {
		return fmt.Errorf("tensor: negative row length %d for type %s", n, t)
	}
	if bs := t.BlockSize(); n%bs != 0 {
		return fmt.Errorf("tensor: row of %d elements is not a multiple of %s's block size %d", n, t, bs)
	}
	return nil
}

func checkBuffers(t Type, n, nbytes int) error { return checkBuffersFor(t, n, nbytes, true) }

// checkBuffersFor is checkBuffers for reading (quant false) or writing.
func checkBuffersFor(t Type, n, nbytes int, quant bool) error {
	if err := checkRow(t, n, quant); err != nil {
		return err
	}
	if want := t.RowSize(n); nbytes != want {
		return fmt.Errorf("tensor: %d elements of %s take %d bytes, buffer has %d", n, t, want, nbytes)
	}
	return nil
}

// Quantize is QuantizeRow with its preconditions checked: it returns an
// error instead of panicking.
func Quantize(t Type, src []float32, dst []byte) error {
	if err := checkBuffers(t, len(src), len(dst)); err != nil {
		return err
	}
	quantizeRow(t, src, dst, false)
	return nil
}

// Dequantize is DequantizeRow with its preconditions checked: it returns an
// error instead of panicking.
func Dequantize(t Type, src []byte, dst []float32) error {
	if err := checkBuffersFor(t, len(dst), len(src), false); err != nil {
		return err
	}
	dequantizeRow(t, src, dst)
	return nil
}

// QuantizeRow converts len(src) float32 values into dst, which must hold
// exactly t.RowSize(len(src)) bytes; len(src) must be a multiple of t's
// block size. It panics (with CheckRow's message) if those conditions fail;
// use Quantize for an error instead.
//
// The result is bit-identical to ggml's reference quantizer for t:
//
//   - F32: the values' bits; F16: round to nearest even (GGML_FP32_TO_FP16);
//     BF16: round to nearest even, NaN kept quiet (ggml_fp32_to_bf16).
//   - Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q4_K, Q5_K, Q6_K, Q8_K:
//     quantize_row_*_ref, which is what llama.cpp's model quantizer writes
//     when no importance matrix is given, and (except Q8_0/Q8_1, see
//     QuantizeRowCPU) what ggml's CPU backend uses to write float rows into
//     a tensor (KV cache) of the type.
//   - Q2_K, Q3_K: quantize_row_q2_K_ref / quantize_row_q3_K_ref; IQ4_XS:
//     quantize_iq4_xs without importance matrix (= quantize_row_iq4_xs_ref):
//     what llama.cpp's model quantizer writes without an importance matrix.
//   - IQ4_NL: quantize_row_iq4_nl_ref, which is what ggml's CPU backend
//     (from_float = quantize_row_iq4_nl) uses: per block, weights x², the
//     initial scale -max/127, one least-squares refit of the scale and no
//     search over alternative scales (ntry = -1). Note that llama.cpp's
//     model quantizer uses quantize_iq4_nl instead (ntry = 7 plus a final
//     requantization), which gives different bits; this package follows
//     the CPU backend since IQ4_NL matters here as a KV-cache type.
//     Levels are picked as ggml's current best_index_int8 does (exact
//     midpoint comparison, ties to the upper level).
func QuantizeRow(t Type, src []float32, dst []byte) {
	if err := checkBuffers(t, len(src), len(dst)); err != nil {
		panic(err)
	}
	quantizeRow(t, src, dst, false)
}

// QuantizeRowCPU is QuantizeRow as ggml's x86-64 CPU backend built with AVX
// or AVX2 does it (its from_float, used both to write float32 rows into a
// KV cache and to quantize activations for matrix products). It differs
// from QuantizeRow only for Q8_0 and Q8_1, whose AVX code computes the
// inverse scale as 127/amax (not 1/(amax/127)) and rounds x·id half to even
// (not half away from zero); the scale d = amax/127 is the same. Other
// builds of ggml differ again (ARM NEON rounds half to even with 1/d; a
// build without SIMD uses the reference, i.e. QuantizeRow).
func QuantizeRowCPU(t Type, src []float32, dst []byte) {
	if err := checkBuffers(t, len(src), len(dst)); err != nil {
		panic(err)
	}
	quantizeRow(t, src, dst, true)
}

// DequantizeRow converts the row in src (exactly t.RowSize(len(dst))
// bytes) into len(dst) float32 values, exactly as ggml's dequantize_row_*
// (to_float) does. It panics with CheckRow's message on bad sizes; use
// Dequantize for an error instead.
//
// QuantizeRow, DequantizeRow and VecDot call t's functions through the
// traits table, so their slices escape: a caller that must not allocate
// passes heap (e.g. pooled) memory, not a stack array.
func DequantizeRow(t Type, src []byte, dst []float32) {
	if err := checkBuffersFor(t, len(dst), len(src), false); err != nil {
		panic(err)
	}
	dequantizeRow(t, src, dst)
}

func quantizeRow(t Type, x []float32, y []byte, cpu bool) {
	switch {
	case cpu && t == Q8_0:
		quantizeQ8_0AVX(x, y)
	case cpu && t == Q8_1:
		quantizeQ8_1AVX(x, y)
	case row(t).quantize != nil:
		row(t).quantize(x, y)
	default:
		panic("tensor: no quantizer for " + t.String())
	}
}

func dequantizeRow(t Type, x []byte, y []float32) {
	f := row(t).dequantize
	if f == nil {
		panic("tensor: no dequantizer for " + t.String())
	}
	f(x, y)
}

// ---- small helpers shared by the formats ----

func abs32(v float32) float32 {
	return math.Float32frombits(math.Float32bits(v) &^ (1 << 31))
}

// f16 reads the binary16 value at b[0:2] as float32.
func f16(b []byte) float32 { return F16ToF32(binary.LittleEndian.Uint16(b)) }

func putF16(b []byte, v float32) { binary.LittleEndian.PutUint16(b, F32ToF16(v)) }

// nearestInt is ggml's nearest_int: round to nearest, ties to even, by
// adding 1.5·2^23 and reading the mantissa. Valid for |f| ≤ 4194303; like
// ggml (whose assert is compiled out) it returns garbage beyond that.
func nearestInt(f float32) int32 {
	v := f + 12582912
	return int32(math.Float32bits(v)&0x007fffff) - 0x00400000
}

// roundAway is C's roundf (half away from zero) converted to an integer,
// for |f| < 2^31.
func roundAway(f float32) int32 {
	t := int32(f)
	r := f - float32(t) // exact: the fractional part of f
	if r >= 0.5 {
		t++
	} else if r <= -0.5 {
		t--
	}
	return t
}

// littleEndian is true on little-endian machines, where float32 rows can
// be viewed in place.
var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// F32View returns b viewed as float32 values (len(b)/4 of them) without
// copying, when the machine is little-endian and b is 4-byte aligned; ok is
// false otherwise and the caller must decode the bytes.
func F32View(b []byte) (v []float32, ok bool) {
	if len(b) < 4 {
		return nil, littleEndian
	}
	if !littleEndian || uintptr(unsafe.Pointer(&b[0]))%4 != 0 {
		return nil, false
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4), true
}

// F32Bytes returns the bytes of v (little-endian machines only, where they
// are the GGUF encoding of an F32 row) without copying.
func F32Bytes(v []float32) []byte {
	if len(v) == 0 {
		return nil
	}
	if !littleEndian {
		panic("tensor: F32Bytes needs a little-endian machine")
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))
}
