// Package qkernels owns the SIMD kernels for ggml block-quantized data:
// dot products of quantized weight (or KV-cache) rows with quantized
// activations (Dot, the matrix forms Gemm and DotRows), the fused
// dequantize-accumulate used for attention values (AxpyRow, AxpyRows, and
// the grouped-query AccumRowsMulti, order in accum.go), SIMD
// dequantization of the KV-cache types (Dequantize), the fast activation
// quantizers (QuantizeQ8_0, QuantizeQ8_1, QuantizeQ8_K) and the KV-cache
// quantizers (QuantizeQ4_0, QuantizeQ4_1, QuantizeQ5_0,
// QuantizeQ5_1, QuantizeIQ4_NL; Q8_0 is both), all reached through
// Quantize. The block formats themselves, and the plain-Go references
// these kernels are proved against, belong to package tensor.
//
// Weight types: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 and IQ4_NL (32-element blocks),
// Q4_K, Q5_K and Q6_K (256-element super-blocks), and the low-bit
// super-block types (Q2_K, Q3_K, IQ4_XS and the read-only IQ types:
// superblock.go), which decode to one common form. The activations x are
// always rows already quantized to t.VecDotType() (Q8_0, Q8_1 or Q8_K).
//
// # Paths
//
// Every kernel has a pure-Go implementation (the generic path, the only one
// off amd64) and, on amd64, Go-assembly implementations for AVX-512 (needs
// AVX-512 F, BW, VL, DQ, VNNI, VBMI and BITALG plus BMI2: Ice Lake,
// Sapphire Rapids, Zen 4 and later) and for AVX2 (needs AVX2, FMA, F16C
// and BMI1; only VEX encodings), chosen per call from internal/cpu's level
// for the block family (cpu.SetLevel forces a path for tests and
// benchmarks). The assembly is written by gen/main.go (go generate), which
// spells out each kernel's instruction sequence; layout_amd64.go describes
// the data layouts the kernels share.
//
// # Accumulation order: every path is bit-identical to tensor.VecDot
//
// The package keeps the idea of internal/kernels — one canonical
// accumulation order per output, so that a matrix product's outputs are
// bit-identical to the single dot products however the work is batched —
// and takes it one step further: the canonical order is tensor.VecDot's own.
// For every type, path, batch size and shape:
//
//  1. Each block's integer sums (isum, and imin for Q4_K/Q5_K, in
//     tensor.VecDot's contract) are computed exactly in int32. The SIMD
//     code multiplies an unsigned form of the weights, u = q + off, by the
//     signed activations (VPDPBUSD on AVX-512; VPMADDUBSW+VPMADDWD on AVX2,
//     with u split into its low 7 bits and its top bit where u can exceed
//     63, so that no 16-bit intermediate can saturate) and adds -off·Σx;
//     integer addition being associative, any grouping of the products
//     gives the same exact sum, for any input bytes.
//  2. The per-block float arithmetic is exactly tensor.VecDot's, operation
//     for operation, each product and sum rounded to float32 on its own (no
//     fused multiply-add), and each output's accumulator runs over the
//     blocks in increasing order starting from +0.
//
// So Dot, each output of DotRows and each output of Gemm equal
// tensor.VecDot bit for bit, and hence each other: a token's result never
// depends on how many tokens or requests share a batch, nor on the path or
// the machine. The SIMD kernels get their parallelism across blocks (the
// float terms of 16 blocks are computed as one vector), across rows (16
// rows' accumulators in one vector, after a transpose of their terms) and,
// in Gemm, across rows and tokens (each vector lane is one weight row, one
// register per token), never by reassociating one output's float sum.
// Padding blocks contribute terms of exactly ±0, which cannot change an
// accumulator that starts at +0.
//
// AxpyRow is bit-identical on every path to y[i] = y[i] + float32(a·v[i])
// with v = tensor.DequantizeRow(row) (two roundings, no fused
// multiply-add), and AxpyRows to AxpyRow applied to rows 0, 1, ... in turn.
// AccumRowsMulti instead accumulates each output with one fused
// multiply-add per row, rows in order, on the assembly paths (see
// accum.go); Dequantize is bit-identical to tensor.DequantizeRow.
//
// The quantizers are bit-identical to tensor.QuantizeRow on amd64 for every
// input without NaNs: the block maximum is order-free, the scales use IEEE
// divisions, Q8_0/Q8_1 round v·(1/d) exactly as tensor's roundAway does
// (truncate, exact remainder, step away from zero at |r| ≥ 0.5 — so ties
// go away from zero and even overflowing products wrap as Go's int32
// conversion does on amd64), and Q8_K rounds half to even as ggml's
// nearest_int (VCVTPS2DQ). With NaNs, ggml's result depends on the scan
// order of its maximum, which the SIMD code does not reproduce.
//
// The KV-cache quantizers are bit-identical to tensor.QuantizeRow on every
// path for every input without NaNs (infinities, subnormals, signed zeros
// included), doing the reference's float operations one by one (IEEE
// divisions, each product and sum rounded on its own): Q4_0/Q5_0 take the
// first element of largest magnitude (+0 for an all-zero block) from an
// order-free maximum and a first-index search; Q4_1/Q5_1's minimum and
// maximum are order-free except for a zero's sign, which is the first
// zero's as in the reference; q is truncate(x·id + offset) (VCVTTPS2DQ,
// as Go's int32 conversion on amd64) wrapped to a byte and clamped with a
// signed byte minimum, exactly the reference's integer steps. IQ4_NL runs
// 16 blocks (AVX2: 8) at once with one block per vector lane, so that each
// lane executes the reference's scalar code in its order (first-maximum
// scan, nearest level with ties up, the weighted sums Σw·q·x and Σw·q²
// accumulated element by element); short rows (a head of one token)
// quantize four blocks at a time, elements across the vector and the four
// blocks' sums in the lanes of one register. The level search picks a
// bucket by a scaled (fused, inexact) conversion, then decides with the
// reference's exact comparison, so the choice is the reference's. A block
// holding a NaN may be quantized differently from the reference (not the
// other blocks of the row).
//
// Matrix products are single-threaded; callers parallelise by splitting
// rows or tokens, which cannot change any output. Bad sizes are programming
// errors and panic with a message; no call allocates once warm (scratch
// memory comes from a sync.Pool), and calls may run concurrently.
package qkernels

import (
	"fmt"

	"github.com/kvserve/kvserve/internal/cpu"
	"github.com/kvserve/kvserve/internal/tensor"
)

// level is the path the kernels run at: internal/cpu's level for the
// block family (requirements in internal/cpu's package comment).
func level() cpu.Level { return cpu.Block.Level() }

// Supported reports whether Dot, DotRows and Gemm accept weights of type t:
// the block types with a Gemm kernel in tensor's traits table (Q8_0, Q4_0,
// Q4_1, Q5_0, Q5_1, IQ4_NL, Q4_K, Q5_K, Q6_K).
func Supported(t tensor.Type) bool { return has(t, tensor.KGemm) }

// has reports whether the traits table gives block type t kernels k here.
func has(t tensor.Type, k tensor.Kernel) bool {
	return t.Family() == tensor.BlockKernels && t.Has(k)
}

// typesWith lists the block types with kernels k (for error messages).
func typesWith(k tensor.Kernel) []tensor.Type {
	var out []tensor.Type
	for _, t := range tensor.TypesWith(k) {
		if t.Family() == tensor.BlockKernels {
			out = append(out, t)
		}
	}
	return out
}

func checkType(op string, t tensor.Type) {
	if !Supported(t) {
		panic(fmt.Sprintf("qkernels.%s: unsupported weight type %s", op, t))
	}
}

func checkN(op string, t tensor.Type, n int) {
	if n < 0 || n%t.BlockSize() != 0 {
		panic(fmt.Sprintf("qkernels.%s: %d elements is not a whole number of %s blocks (%d)", op, n, t, t.BlockSize()))
	}
}

// Dot returns the dot product of one row w of n elements of type t
// (t.RowSize(n) bytes) with one row x of activations quantized to
// t.VecDotType() (t.VecDotType().RowSize(n) bytes). The result is
// bit-identical to tensor.VecDot(t, n, w, x).
func Dot(t tensor.Type, n int, w, x []byte) float32 {
	checkType("Dot", t)
	checkN("Dot", t, n)
	if len(w) != t.RowSize(n) {
		panic(fmt.Sprintf("qkernels.Dot: %d elements of %s take %d bytes, w has %d", n, t, t.RowSize(n), len(w)))
	}
	if vt := t.VecDotType(); len(x) != vt.RowSize(n) {
		panic(fmt.Sprintf("qkernels.Dot: %d activations of %s take %d bytes, x has %d", n, vt, vt.RowSize(n), len(x)))
	}
	if n == 0 {
		return 0
	}
	return dot(t, n, w, x)
}

// DotRows sets y[r] = Dot(t, n, w[r·stride : r·stride+t.RowSize(n)], x)
// for r < rows: one quantized query x against rows spaced stride bytes
// apart (e.g. the keys of a KV cache). Each output is bit-identical to the
// corresponding Dot. len(y) must be at least rows.
func DotRows(t tensor.Type, n int, w []byte, stride int, rows int, x []byte, y []float32) {
	checkType("DotRows", t)
	checkN("DotRows", t, n)
	rs := t.RowSize(n)
	switch {
	case rows < 0:
		panic(fmt.Sprintf("qkernels.DotRows: negative row count %d", rows))
	case rows == 0:
		return
	case stride < rs:
		panic(fmt.Sprintf("qkernels.DotRows: stride %d shorter than a row (%d bytes)", stride, rs))
	case len(w) < (rows-1)*stride+rs:
		panic(fmt.Sprintf("qkernels.DotRows: %d bytes for %d rows of %d bytes at stride %d", len(w), rows, rs, stride))
	case len(y) < rows:
		panic(fmt.Sprintf("qkernels.DotRows: %d outputs for %d rows", len(y), rows))
	}
	if vt := t.VecDotType(); len(x) != vt.RowSize(n) {
		panic(fmt.Sprintf("qkernels.DotRows: %d activations of %s take %d bytes, x has %d", n, vt, vt.RowSize(n), len(x)))
	}
	if n == 0 {
		clear(y[:rows])
		return
	}
	dotRows(t, n, w, stride, rows, x, y)
}

// Gemm sets y[j·ldy+i] = Dot(t, k, w[i·ldw:][:t.RowSize(k)], x[j·ldx:][:vt.RowSize(k)])
// for i < m (weight rows) and j < nTok (tokens), vt = t.VecDotType(); other
// elements of y are left alone. Every output is bit-identical to that Dot
// call (and to tensor.VecDot), whatever m, nTok and k.
//
// On AVX-512, from 3 tokens on, it unpacks 16 weight rows at a time into a
// panel (one vector lane per row) and runs a 16-row × 8-token register
// tile over it with VPDPBUSD, each lane accumulating one output in the
// canonical order; 1 or 2 tokens run the matrix-vector kernel (DotRows)
// once per token. The AVX2 and generic paths unpack each weight row once
// and take its dot product with every token.
func Gemm(t tensor.Type, m, nTok, k int, w []byte, ldw int, x []byte, ldx int, y []float32, ldy int) {
	checkType("Gemm", t)
	checkN("Gemm", t, k)
	vt := t.VecDotType()
	rw, rx := t.RowSize(k), vt.RowSize(k)
	switch {
	case m < 0 || nTok < 0:
		panic(fmt.Sprintf("qkernels.Gemm: negative shape m=%d nTok=%d", m, nTok))
	case m == 0 || nTok == 0:
		return
	case ldw < rw:
		panic(fmt.Sprintf("qkernels.Gemm: ldw=%d shorter than a %s row of %d (%d bytes)", ldw, t, k, rw))
	case ldx < rx:
		panic(fmt.Sprintf("qkernels.Gemm: ldx=%d shorter than a %s row of %d (%d bytes)", ldx, vt, k, rx))
	case ldy < m:
		panic(fmt.Sprintf("qkernels.Gemm: ldy=%d < m=%d", ldy, m))
	case len(w) < (m-1)*ldw+rw:
		panic(fmt.Sprintf("qkernels.Gemm: %d weight bytes for m=%d rows (ldw=%d, row %d bytes)", len(w), m, ldw, rw))
	case len(x) < (nTok-1)*ldx+rx:
		panic(fmt.Sprintf("qkernels.Gemm: %d activation bytes for nTok=%d rows (ldx=%d, row %d bytes)", len(x), nTok, ldx, rx))
	case len(y) < (nTok-1)*ldy+m:
		panic(fmt.Sprintf("qkernels.Gemm: %d outputs for nTok=%d ldy=%d m=%d", len(y), nTok, ldy, m))
	}
	if k == 0 {
		for j := 0; j < nTok; j++ {
			clear(y[j*ldy : j*ldy+m])
		}
		return
	}
	gemm(t, m, nTok, k, w, ldw, x, ldx, y, ldy)
}

// AxpyRow sets y[i] += a·v[i] for i < len(y), where v is the row
// dequantized (row holds t.RowSize(len(y)) bytes). It is bit-identical to
// y[i] = y[i] + float32(a·v[i]) with v = tensor.DequantizeRow(t, row) (two
// roundings, no fused multiply-add), on every path. The 32-element types
// (the KV-cache types) have SIMD kernels; the K-quants are accepted too and
// go through the generic code.
func AxpyRow(t tensor.Type, a float32, row []byte, y []float32) {
	checkType("AxpyRow", t)
	checkN("AxpyRow", t, len(y))
	if len(row) != t.RowSize(len(y)) {
		panic(fmt.Sprintf("qkernels.AxpyRow: %d elements of %s take %d bytes, row has %d", len(y), t, t.RowSize(len(y)), len(row)))
	}
	if len(y) == 0 {
		return
	}
	axpyRows(t, len(y), row, 0, 1, []float32{a}, y)
}

// AxpyRows sets y += Σ_r a[r]·dequant(row r) for r < count, rows of n =
// len(y) elements of type t spaced stride bytes apart in rows. It is
// bit-identical to calling AxpyRow for r = 0, 1, ..., count-1 in turn (the
// SIMD paths keep y in registers across rows). len(a) must be at least
// count.
func AxpyRows(t tensor.Type, n int, rows []byte, stride, count int, a []float32, y []float32) {
	checkType("AxpyRows", t)
	checkN("AxpyRows", t, n)
	rs := t.RowSize(n)
	switch {
	case n != len(y):
		panic(fmt.Sprintf("qkernels.AxpyRows: n=%d but len(y)=%d", n, len(y)))
	case count < 0:
		panic(fmt.Sprintf("qkernels.AxpyRows: negative count %d", count))
	case count == 0 || n == 0:
		return
	case stride < rs:
		panic(fmt.Sprintf("qkernels.AxpyRows: stride %d shorter than a row (%d bytes)", stride, rs))
	case len(rows) < (count-1)*stride+rs:
		panic(fmt.Sprintf("qkernels.AxpyRows: %d bytes for %d rows of %d bytes at stride %d", len(rows), count, rs, stride))
	case len(a) < count:
		panic(fmt.Sprintf("qkernels.AxpyRows: %d coefficients for %d rows", len(a), count))
	}
	axpyRows(t, n, rows, stride, count, a, y)
}

func checkQuant(op string, t tensor.Type, dst []byte, src []float32) {
	if len(src)%t.BlockSize() != 0 {
		panic(fmt.Sprintf("qkernels.%s: %d values is not a whole number of %s blocks (%d)", op, len(src), t, t.BlockSize()))
	}
	if want := t.RowSize(len(src)); len(dst) != want {
		panic(fmt.Sprintf("qkernels.%s: %d values of %s take %d bytes, dst has %d", op, len(src), t, want, len(dst)))
	}
}

// QuantizeQ8_0 quantizes src (a multiple of 32 values) into dst
// (tensor.Q8_0.RowSize(len(src)) bytes), bit-identical to
// tensor.QuantizeRow(tensor.Q8_0, src, dst) for inputs without NaNs:
// d = amax/127 stored as binary16, q = roundf(v·(1/d)) (half away from
// zero).
func QuantizeQ8_0(dst []byte, src []float32) {
	checkQuant("QuantizeQ8_0", tensor.Q8_0, dst, src)
	quantQ8_0(dst, src)
}

// QuantizeQ8_1 is QuantizeQ8_0 for Q8_1 (which adds s = d·Σq per block),
// bit-identical to tensor.QuantizeRow(tensor.Q8_1, ...) without NaNs.
func QuantizeQ8_1(dst []byte, src []float32) {
	checkQuant("QuantizeQ8_1", tensor.Q8_1, dst, src)
	quantQ8_1(dst, src)
}

// QuantizeQ8_K quantizes src (a multiple of 256 values) into Q8_K,
// bit-identical to tensor.QuantizeRow(tensor.Q8_K, ...) for inputs without
// NaNs: iscale = -127/max (max the first value of largest magnitude),
// q = min(127, nearest-even(iscale·v)), d = 1/iscale, bsums of 16.
func QuantizeQ8_K(dst []byte, src []float32) {
	checkQuant("QuantizeQ8_K", tensor.Q8_K, dst, src)
	quantQ8_K(dst, src)
}

// QuantizeQ4_0 quantizes src (a multiple of 32 values) into Q4_0
// (tensor.Q4_0.RowSize(len(src)) bytes), bit-identical to
// tensor.QuantizeRow(tensor.Q4_0, src, dst) for inputs without NaNs:
// max the first value of largest magnitude (+0 if all are zero),
// d = max/-8 stored as binary16, id = d≠0 ? 1/d : 0,
// q = min(15, int8(int32(x·id + 8.5))), product and sum rounded apart.
func QuantizeQ4_0(dst []byte, src []float32) {
	checkQuant("QuantizeQ4_0", tensor.Q4_0, dst, src)
	quantKV(tensor.Q4_0, dst, src)
}

// QuantizeQ4_1 quantizes src into Q4_1, bit-identical to
// tensor.QuantizeRow(tensor.Q4_1, ...) without NaNs: d = (max-min)/15,
// m = min (a zero minimum keeps the sign of the first zero),
// q = min(15, int8(int32((x-min)·id + 0.5))).
func QuantizeQ4_1(dst []byte, src []float32) {
	checkQuant("QuantizeQ4_1", tensor.Q4_1, dst, src)
	quantKV(tensor.Q4_1, dst, src)
}

// QuantizeQ5_0 quantizes src into Q5_0, bit-identical to
// tensor.QuantizeRow(tensor.Q5_0, ...) without NaNs: as Q4_0 with
// d = max/-16, q = min(31, int8(int32(x·id + 16.5))), the fifth bits in qh.
func QuantizeQ5_0(dst []byte, src []float32) {
	checkQuant("QuantizeQ5_0", tensor.Q5_0, dst, src)
	quantKV(tensor.Q5_0, dst, src)
}

// QuantizeQ5_1 quantizes src into Q5_1, bit-identical to
// tensor.QuantizeRow(tensor.Q5_1, ...) without NaNs: as Q4_1 with
// d = (max-min)/31 and q = uint8(int32((x-min)·id + 0.5)).
func QuantizeQ5_1(dst []byte, src []float32) {
	checkQuant("QuantizeQ5_1", tensor.Q5_1, dst, src)
	quantKV(tensor.Q5_1, dst, src)
}

// QuantizeIQ4_NL quantizes src into IQ4_NL, bit-identical to
// tensor.QuantizeRow(tensor.IQ4_NL, ...) for inputs without NaNs (ggml's
// quantize_row_iq4_nl_ref: levels chosen against d = max/-127 with ties
// to the upper level, then the scale refitted as Σw·q·x / Σw·q² with
// w = x², the sums taken over the block in order). The SIMD paths
// quantize 16 (AVX2: 8) blocks at once, one per vector lane.
func QuantizeIQ4_NL(dst []byte, src []float32) {
	checkQuant("QuantizeIQ4_NL", tensor.IQ4_NL, dst, src)
	quantKV(tensor.IQ4_NL, dst, src)
}

// CanQuantize reports whether Quantize accepts type t: the block types with
// an Encode kernel in tensor's traits table — the activation types Q8_0,
// Q8_1 and Q8_K and the quantized KV-cache types Q4_0, Q4_1, Q5_0, Q5_1
// and IQ4_NL (Q8_0 is both).
func CanQuantize(t tensor.Type) bool { return has(t, tensor.KEncode) }

// Quantize quantizes src into dst for any t that CanQuantize accepts, by
// the matching QuantizeXxx (bit-identical to tensor.QuantizeRow for inputs
// without NaNs); it panics for other types.
func Quantize(t tensor.Type, dst []byte, src []float32) {
	switch t {
	case tensor.Q8_0:
		QuantizeQ8_0(dst, src)
	case tensor.Q8_1:
		QuantizeQ8_1(dst, src)
	case tensor.Q8_K:
		QuantizeQ8_K(dst, src)
	case tensor.Q4_0:
		QuantizeQ4_0(dst, src)
	case tensor.Q4_1:
		QuantizeQ4_1(dst, src)
	case tensor.Q5_0:
		QuantizeQ5_0(dst, src)
	case tensor.Q5_1:
		QuantizeQ5_1(dst, src)
	case tensor.IQ4_NL:
		QuantizeIQ4_NL(dst, src)
	default:
		panic(fmt.Sprintf("qkernels.Quantize: no quantizer for %s (want one of %v)", t, typesWith(tensor.KEncode)))
	}
}
