package tensor

import (
	"encoding/binary"
	"fmt"
	"math"
)

// The traits table: one row per ggml type whose block layout is known, the
// only list of types in the program. A row says the type's layout, the
// activation type of its dot products, what the engine may use it for
// (weights, KV cache pages), which kernel package computes with it and
// which of that package's kernels it has (internal/ops dispatches on
// these), and its plain-Go reference conversions and dot product. Every
// other list of types — kvcache.Types, the forward pass's weight types,
// qkernels.Supported, Quantizable, HasVecDot — is a query of this table.
//
// Adding a type: one row here (the reference functions in a file of their
// own), plus its kernels in internal/kernels or internal/qkernels; no
// caller changes. See docs/kernels.md.

// Use is a set of things the engine may do with a type.
type Use uint8

const (
	// Weight: the forward pass can multiply by matrices of the type (it
	// needs a Gemm kernel).
	Weight Use = 1 << iota
	// Cache: a KV cache page may hold the type (it needs the Gemm,
	// AccumRows, Encode and Decode kernels).
	Cache
)

// Family is the kernel package that computes with a type (the families of
// internal/cpu).
type Family uint8

const (
	// NoKernels: the layout is known, nothing computes with the type.
	NoKernels Family = iota
	// FloatKernels: internal/kernels (element types, block size 1).
	FloatKernels
	// BlockKernels: internal/qkernels (ggml block formats).
	BlockKernels
	// CodebookKernels: internal/cbkernels (kvserve's codebook cache types).
	CodebookKernels
)

func (f Family) String() string {
	switch f {
	case NoKernels:
		return "none"
	case FloatKernels:
		return "kernels"
	case BlockKernels:
		return "qkernels"
	case CodebookKernels:
		return "cbkernels"
	}
	return fmt.Sprintf("Family(%d)", int(f))
}

// Kernel is a set of the kernels internal/ops dispatches to a type's
// family for.
type Kernel uint8

const (
	// KGemm: matrix products of rows of the type with activations in its
	// vec-dot type (ops.Gemm).
	KGemm Kernel = 1 << iota
	// KAccum: weighted sums of rows of the type, attention's V
	// (ops.AccumRows).
	KAccum
	// KEncode: SIMD conversion from float32, bit-identical to QuantizeRow
	// (ops.Encode, ops.QuantizeActivations; without it ops.Encode runs
	// QuantizeRow).
	KEncode
	// KDecode: SIMD conversion to float32, bit-identical to DequantizeRow
	// (ops.Decode; without it DequantizeRow).
	KDecode

	kAll = KGemm | KAccum | KEncode | KDecode
)

// Traits is one row of the table.
type Traits struct {
	Type      Type
	Name      string // ggml's name
	BlockSize int    // elements per block (1 for element types)
	TypeSize  int    // bytes per block
	VecDot    Type   // the activations' type in dot products (F32 for float types; the type itself when it has none)
	Uses      Use
	Family    Family
	Kernels   Kernel

	// The plain-Go references (nil: none): quantize and dequantize convert
	// whole blocks, exactly as ggml's reference code; dot is VecDot.
	quantize   func(x []float32, y []byte)
	dequantize func(x []byte, y []float32)
	dot        func(n int, w, x []byte) float32
}

// layoutOnly is a row for a type that can be parsed and sized but not
// computed with.
func layoutOnly(t Type, name string, blockSize, typeSize int) Traits {
	return Traits{Type: t, Name: name, BlockSize: blockSize, TypeSize: typeSize, VecDot: t}
}

// table holds the rows in the order type lists are reported in (the cache
// types in llama.cpp's order first).
var table = [...]Traits{
	// type, name, block, bytes, vec-dot, uses, family, kernels, reference quantize, dequantize, dot
	{F32, "f32", 1, 4, F32, Weight | Cache, FloatKernels, kAll, quantizeF32, dequantizeF32, vecDotF32},
	{F16, "f16", 1, 2, F32, Weight | Cache, FloatKernels, kAll, quantizeF16, dequantizeF16, vecDotF16},
	{BF16, "bf16", 1, 2, F32, Weight | Cache, FloatKernels, kAll, quantizeBF16, dequantizeBF16, vecDotBF16},
	{Q8_0, "q8_0", 32, 34, Q8_0, Weight | Cache, BlockKernels, kAll, quantizeQ8_0, dequantizeQ8_0, vecDotQ8_0},
	{Q5_1, "q5_1", 32, 24, Q8_1, Weight | Cache, BlockKernels, kAll, quantizeQ5_1, dequantizeQ5_1, vecDotQ5_1},
	{Q5_0, "q5_0", 32, 22, Q8_0, Weight | Cache, BlockKernels, kAll, quantizeQ5_0, dequantizeQ5_0, vecDotQ5_0},
	{Q4_1, "q4_1", 32, 20, Q8_1, Weight | Cache, BlockKernels, kAll, quantizeQ4_1, dequantizeQ4_1, vecDotQ4_1},
	{Q4_0, "q4_0", 32, 18, Q8_0, Weight | Cache, BlockKernels, kAll, quantizeQ4_0, dequantizeQ4_0, vecDotQ4_0},
	{IQ4_NL, "iq4_nl", 32, 18, Q8_0, Weight | Cache, BlockKernels, kAll, quantizeIQ4NL, dequantizeIQ4NL, vecDotIQ4NL},
	// kvserve's codebook cache types (codebook.go): rotated rows only.
	{CB4, "cb4", 64, 34, F32, Cache, CodebookKernels, kAll, quantizeCB4, dequantizeCB4, vecDotCB4},
	{CB3, "cb3", 64, 26, F32, Cache, CodebookKernels, kAll, quantizeCB3, dequantizeCB3, vecDotCB3},
	{CB2, "cb2", 32, 10, F32, Cache, CodebookKernels, kAll, quantizeCB2, dequantizeCB2, vecDotCB2},
	{Q4_K, "q4_K", 256, 144, Q8_K, Weight, BlockKernels, KGemm, quantizeQ4_K, dequantizeQ4_K, vecDotQ4_K},
	{Q5_K, "q5_K", 256, 176, Q8_K, Weight, BlockKernels, KGemm, quantizeQ5_K, dequantizeQ5_K, vecDotQ5_K},
	{Q6_K, "q6_K", 256, 210, Q8_K, Weight, BlockKernels, KGemm, quantizeQ6_K, dequantizeQ6_K, vecDotQ6_K},
	{MXFP4, "mxfp4", 32, 17, Q8_0, Weight, BlockKernels, KGemm, quantizeMXFP4, dequantizeMXFP4, vecDotMXFP4},
	{Q3_K, "q3_K", 256, 110, Q8_K, Weight, BlockKernels, KGemm, quantizeQ3_K, dequantizeQ3_K, vecDotQ3_K},
	{Q2_K, "q2_K", 256, 84, Q8_K, Weight, BlockKernels, KGemm, quantizeQ2_K, dequantizeQ2_K, vecDotQ2_K},
	{IQ4_XS, "iq4_xs", 256, 136, Q8_K, Weight, BlockKernels, KGemm, quantizeIQ4_XS, dequantizeIQ4_XS, vecDotIQ4_XS},
	// Read-only: no quantizer (llama.cpp writes them).
	{IQ3_S, "iq3_s", 256, 110, Q8_K, Weight, BlockKernels, KGemm, nil, dequantizeIQ3_S, vecDotIQ3_S},
	{IQ3_XXS, "iq3_xxs", 256, 98, Q8_K, Weight, BlockKernels, KGemm, nil, dequantizeIQ3_XXS, vecDotIQ3_XXS},
	{IQ2_S, "iq2_s", 256, 82, Q8_K, Weight, BlockKernels, KGemm, nil, dequantizeIQ2_S, vecDotIQ2_S},
	{IQ2_XS, "iq2_xs", 256, 74, Q8_K, Weight, BlockKernels, KGemm, nil, dequantizeIQ2_XS, vecDotIQ2_XS},
	{IQ2_XXS, "iq2_xxs", 256, 66, Q8_K, Weight, BlockKernels, KGemm, nil, dequantizeIQ2_XXS, vecDotIQ2_XXS},
	{IQ1_M, "iq1_m", 256, 56, Q8_K, Weight, BlockKernels, KGemm, nil, dequantizeIQ1_M, vecDotIQ1_M},
	{IQ1_S, "iq1_s", 256, 50, Q8_K, Weight, BlockKernels, KGemm, nil, dequantizeIQ1_S, vecDotIQ1_S},
	// Activation types (the vec-dot types of the quantized weights).
	{Q8_1, "q8_1", 32, 36, Q8_1, 0, BlockKernels, KEncode, quantizeQ8_1, dequantizeQ8_1, nil},
	{Q8_K, "q8_K", 256, 292, Q8_K, 0, BlockKernels, KEncode, quantizeQ8_K, dequantizeQ8_K, nil},
	// Known layouts only.
	layoutOnly(I8, "i8", 1, 1),
	layoutOnly(I16, "i16", 1, 2),
	layoutOnly(I32, "i32", 1, 4),
	layoutOnly(I64, "i64", 1, 8),
	layoutOnly(F64, "f64", 1, 8),
	layoutOnly(TQ1_0, "tq1_0", 256, 54),
	layoutOnly(TQ2_0, "tq2_0", 256, 66),
}

// byType is the table indexed by type, for the hot paths (sizes are looked
// up per row); a zero BlockSize marks an unknown type.
var byType = func() (a [64]Traits) {
	for _, r := range table {
		if int(r.Type) >= len(a) || a[r.Type].BlockSize != 0 {
			panic(fmt.Sprintf("tensor: table row %s: type %d out of range or listed twice", r.Name, r.Type))
		}
		a[r.Type] = r
	}
	return a
}()

// unknown is the row of every unknown type (all zero).
var unknown Traits

// row returns t's row, or a zero row (BlockSize 0) for an unknown t.
func row(t Type) *Traits {
	if int(t) < len(byType) {
		return &byType[t]
	}
	return &unknown
}

// Traits returns t's row of the table; ok is false for an unknown type.
func (t Type) Traits() (r Traits, ok bool) {
	r = *row(t)
	return r, r.BlockSize != 0
}

// Allows reports whether the engine may use type t for u (all of u's uses).
func (t Type) Allows(u Use) bool { return u != 0 && row(t).Uses&u == u }

// Has reports whether t's kernel family has all the kernels k for it.
func (t Type) Has(k Kernel) bool { return k != 0 && row(t).Kernels&k == k }

// Family is the kernel package that computes with t.
func (t Type) Family() Family { return row(t).Family }

// TypesFor lists the types allowing u, in the table's order.
func TypesFor(u Use) []Type { return typesWhere(func(t Type) bool { return t.Allows(u) }) }

// TypesWith lists the types whose kernel family has all the kernels k, in
// the table's order.
func TypesWith(k Kernel) []Type { return typesWhere(func(t Type) bool { return t.Has(k) }) }

func typesWhere(keep func(Type) bool) []Type {
	var out []Type
	for _, r := range table {
		if keep(r.Type) {
			out = append(out, r.Type)
		}
	}
	return out
}

// ---- the reference conversions and dot products of the float types ----

func quantizeF32(x []float32, y []byte) {
	for i, v := range x {
		binary.LittleEndian.PutUint32(y[4*i:], math.Float32bits(v))
	}
}

func quantizeF16(x []float32, y []byte) {
	for i, v := range x {
		binary.LittleEndian.PutUint16(y[2*i:], F32ToF16(v))
	}
}

func quantizeBF16(x []float32, y []byte) {
	for i, v := range x {
		binary.LittleEndian.PutUint16(y[2*i:], F32ToBF16(v))
	}
}

func dequantizeF32(x []byte, y []float32) {
	for i := range y {
		y[i] = math.Float32frombits(binary.LittleEndian.Uint32(x[4*i:]))
	}
}

func dequantizeF16(x []byte, y []float32) {
	for i := range y {
		y[i] = F16ToF32(binary.LittleEndian.Uint16(x[2*i:]))
	}
}

func dequantizeBF16(x []byte, y []float32) {
	for i := range y {
		y[i] = BF16ToF32(binary.LittleEndian.Uint16(x[2*i:]))
	}
}

func vecDotF32(n int, w, x []byte) float32  { return vecDotFloat(F32, n, w, x) }
func vecDotF16(n int, w, x []byte) float32  { return vecDotFloat(F16, n, w, x) }
func vecDotBF16(n int, w, x []byte) float32 { return vecDotFloat(BF16, n, w, x) }
